"""The library's actions on other pages: save and pin on an analysis, "Add to collection" on
result cards and work pages, formatted citations."""

from django.urls import path  # noqa: F401  (the actions' routes are added here)

app_name = "library-actions"

urlpatterns: list = []
