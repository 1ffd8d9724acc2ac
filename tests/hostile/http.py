"""Requests written by hand, byte for byte, for hostile values that Django's test client would
refuse or tidy on this side: lone surrogates (sent as their ``surrogatepass`` UTF-8 bytes)
and file names with directories, NUL characters or hundreds of characters."""

from __future__ import annotations

import uuid
from urllib.parse import quote


def raw(value: str) -> bytes:
    """`value` as UTF-8 bytes, lone surrogates included."""
    return value.encode("utf-8", "surrogatepass")


def encoded(value: str) -> str:
    """`value` percent-encoded from its UTF-8 bytes."""
    return quote(raw(value), safe="")


def query(**params: str | list[str]) -> str:
    """A query string (or form body) of `params`, a list giving a name several values."""
    return "&".join(
        f"{name}={encoded(value)}"
        for name, values in params.items()
        for value in (values if isinstance(values, list) else [values])
    )


def post_form(client, path: str, **fields: str | list[str]):
    """POST `fields` as ``application/x-www-form-urlencoded``."""
    return client.post(path, query(**fields), content_type="application/x-www-form-urlencoded")


def post_multipart(client, path: str, *, image: tuple[str, bytes], **fields: str):
    """POST `fields` and a file part `image` (its name exactly as given, and its bytes) as
    ``multipart/form-data``."""
    boundary = f"hostile-{uuid.uuid4().hex}"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + raw(value)
        + b"\r\n"
        for name, value in fields.items()
    ]
    filename, data = image
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="'.encode()
        + raw(filename)
        + b'"\r\nContent-Type: application/octet-stream\r\n\r\n'
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    content_type = f"multipart/form-data; boundary={boundary}"
    return client.generic("POST", path, b"".join(parts), content_type=content_type)
