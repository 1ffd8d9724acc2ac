"""The one application error: what went wrong as a stable code, one sentence and a status.

Services raise it; the API's exception handler (`apps.core.api`) turns it into the JSON
envelope `{"error": code, "detail": sentence}` with its status, and portal views show the
sentence beside the form that caused it. Nothing else translates errors.
"""

from __future__ import annotations


class ApplicationError(Exception):
    """A request the application refuses or cannot serve; ``str()`` is the sentence."""

    status = 400

    def __init__(self, code: str, sentence: str, *, status: int | None = None) -> None:
        super().__init__(sentence)
        self.code = code
        if status is not None:
            self.status = status

    @property
    def sentence(self) -> str:
        return str(self)


class NotFoundError(ApplicationError):
    status = 404


class ServiceUnavailableError(ApplicationError):
    """A part the request needs (a model worker, Redis) cannot answer now; worth retrying."""

    status = 503
