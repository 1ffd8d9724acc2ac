"""API tokens in the admin: staff can see who has which token and revoke one (delete it)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from apps.accounts.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Read-only apart from deleting: a key exists only at its creation (profile page or
    ``manage.py create_api_token``), so the admin could not show one it created."""

    list_display = ("name", "user", "prefix", "created", "last_used")
    list_filter = ("created", "last_used")
    search_fields = ("name", "prefix", "user__username", "user__email")
    fields = ("user", "name", "prefix", "created", "last_used")
    readonly_fields = fields
    list_select_related = ("user",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False
