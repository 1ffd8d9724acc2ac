"""Storing and serving files: uploads, their derivatives and the corpus's figure images.

Files are stored whole or not at all (`save_files`): a write that fails half-way, the disk
full, removes what it wrote, and a full disk is told to the researcher as such (507 with a
sentence) instead of as a server error.

The content type comes from a short list of image types by the stored name's extension,
never from a guess: a file of any other kind is sent as an attachment of type
``application/octet-stream``, so no browser renders it as a page of this site (an SVG or HTML
file would run its scripts with the site's cookies). ``Content-Disposition`` names the file by
its stored name only, and ``X-Content-Type-Options: nosniff`` (SecurityMiddleware) keeps the
browser from second-guessing the type. A row whose file has gone from storage (a media folder
restored without it, a file removed by hand) answers 404 with a sentence, not a server error.
"""

from __future__ import annotations

import errno
from pathlib import PurePosixPath

from django.core.files.base import ContentFile
from django.db.models.fields.files import FieldFile
from django.http import FileResponse

from apps.core.errors import ApplicationError, NotFoundError

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class StorageFullError(ApplicationError):
    """The media storage has no room (or the account's disk quota is spent)."""

    status = 507


def save_files(*files: tuple[FieldFile, str, bytes]) -> None:
    """Store each `(field, name, content)` as that field's file (the rows are not saved): all
    of them, or none (what was stored before a failure is deleted again).

    Django's storage leaves a partly written file behind when a write fails; it is removed
    here too. Its name is the one the storage would give: callers pass fresh unique names,
    which the storage keeps as they are.
    """
    stored: list[FieldFile] = []
    try:
        for field, name, content in files:
            target = field.field.generate_filename(field.instance, name)
            try:
                field.save(name, ContentFile(content), save=False)
            except OSError:
                if field.storage.exists(target):
                    field.storage.delete(target)
                raise
            stored.append(field)
    except OSError as error:
        for field in stored:
            field.delete(save=False)
        if error.errno in NO_SPACE:
            raise StorageFullError(
                "storage_full",
                "The server has no room to store the file just now, so nothing was stored; "
                "try again later.",
            ) from None
        raise


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
