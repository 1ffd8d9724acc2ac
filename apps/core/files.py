"""Serving stored files: uploads, their derivatives and the corpus's figure images.

The content type comes from a short list of image types by the stored name's extension,
never from a guess: a file of any other kind is sent as an attachment of type
``application/octet-stream``, so no browser renders it as a page of this site (an SVG or HTML
file would run its scripts with the site's cookies). ``Content-Disposition`` names the file by
its stored name only, and ``X-Content-Type-Options: nosniff`` (SecurityMiddleware) keeps the
browser from second-guessing the type. A row whose file has gone from storage (a media folder
restored without it, a file removed by hand) answers 404 with a sentence, not a server error.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from django.db.models.fields.files import FieldFile
from django.http import FileResponse

from apps.core.errors import NotFoundError

IMAGE_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
}
OTHER_TYPE = "application/octet-stream"


def stored_file_response(field: FieldFile) -> FileResponse:
    name = PurePosixPath(field.name or "").name
    content_type = IMAGE_TYPES.get(PurePosixPath(name).suffix.lower())
    try:
        handle = field.open("rb")
    except (FileNotFoundError, ValueError):  # ValueError: the row names no file at all
        raise NotFoundError("file_missing", "The stored file is missing.") from None
    return FileResponse(
        handle,
        content_type=content_type or OTHER_TYPE,
        as_attachment=content_type is None,
        filename=name,
    )
