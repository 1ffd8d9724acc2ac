"""Serving stored files: a row whose file has gone from storage (a media folder restored
without it, a file removed by hand) answers 404 with a sentence, not a server error."""

from __future__ import annotations

from django.db.models.fields.files import FieldFile
from django.http import FileResponse

from apps.core.errors import NotFoundError


def stored_file_response(field: FieldFile, **kwargs) -> FileResponse:
    try:
        return FileResponse(field.open("rb"), **kwargs)
    except (FileNotFoundError, ValueError):  # ValueError: the row names no file at all
        raise NotFoundError("file_missing", "The stored file is missing.") from None
