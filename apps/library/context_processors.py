"""`library_collections` in every template: the signed-in user's collections, for the "Add
to collection" picker on result cards and work pages. Lazy: read only by a page that shows
a picker."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from apps.library.selectors import list_collections


def library(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"library_collections": []}
    return {"library_collections": SimpleLazyObject(lambda: list(list_collections(user)))}
