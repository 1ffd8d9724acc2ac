"""API plumbing every app shares: the error envelope and the catch-all 404 (the throttles
are in `apps.core.throttling`).

Errors are always ``{"error": code, "detail": sentence}`` so that clients can branch on a
stable code and show the sentence to people.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, RequestDataTooBig, TooManyFieldsSent
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler

from apps.core.errors import ApplicationError


class _Translated(exceptions.APIException):
    def __init__(self, code: str, sentence: str, status_code: int) -> None:
        super().__init__(detail=sentence, code=code)
        self.status_code = status_code


def error_sentence(detail: object) -> str:
    """One readable sentence from DRF's nested validation details (a list field's errors
    come keyed by the index of the item at fault)."""
    if isinstance(detail, dict):
        parts = []
        for field, value in detail.items():
            text = error_sentence(value)
            if field == "non_field_errors":
                parts.append(text)
            elif isinstance(field, int):
                parts.append(f"item {field + 1}: {text}")
            else:
                parts.append(f"{field}: {text}")
        return " ".join(parts)
    if isinstance(detail, list):
        return " ".join(error_sentence(item) for item in detail)
    return str(detail)


def _code(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    if isinstance(codes, str):
        return codes
    if isinstance(exc, exceptions.ValidationError):
        return "invalid"
    return exc.default_code


def _as_api_exception(exc: Exception) -> Exception:
    if isinstance(exc, ApplicationError):
        return _Translated(exc.code, exc.sentence, exc.status)
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, PermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, RequestDataTooBig):
        return _Translated(
            "request_too_large",
            "The request body is larger than this server accepts.",
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, TooManyFieldsSent):
        return _Translated(
            "too_many_fields", "The request has more form fields than this server accepts.", 400
        )
    return exc


def handle_exception(exc: Exception, context: dict) -> Response | None:
    """DRF's exception handler: every refusal becomes the envelope."""
    exc = _as_api_exception(exc)
    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    sentence = error_sentence(exc.detail).strip()
    if not sentence.endswith((".", "?", "!")):
        sentence += "."
    response.data = {"error": _code(exc), "detail": sentence}
    return response


class UnknownEndpoint(APIView):
    """Any path under the API that names no endpoint: a JSON 404, whoever asks."""

    authentication_classes: list = []
    permission_classes: list = []
    schema = None

    def _not_found(self, request: Request, *args, **kwargs) -> Response:
        raise exceptions.NotFound(f"There is no API endpoint {request.path!r}.")

    get = post = put = patch = delete = head = options = _not_found
