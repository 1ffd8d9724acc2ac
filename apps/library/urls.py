"""The library's own pages: the library, collections, and the public pages of share links."""

from django.urls import path  # noqa: F401  (the pages' routes are added here)

app_name = "library"

urlpatterns: list = []
