"""Template filters of the account pages."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

from apps.accounts.services import LAST_USED_RESOLUTION

register = template.Library()


@register.filter
def last_used(moment: datetime | None) -> str:
    """When a token was last used, at the resolution it is recorded with (a minute): Django's
    ``timesince`` alone would say "0 minutes ago" for a token used seconds ago."""
    if moment is None:
        return "Never"
    if timezone.now() - moment < LAST_USED_RESOLUTION:
        return "In the last minute"
    return f"{timesince(moment)} ago"
