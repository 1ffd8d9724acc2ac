"""IIIF on the pages of other apps, without those apps knowing of it: the workspace's IIIF
form (only when IIIF in is on) and an analysis's IIIF source and links."""

from __future__ import annotations

from django import template

from apps.analysis import selectors
from apps.analysis.models import Analysis
from apps.iiif.fetch import iiif_enabled
from apps.iiif.forms import IiifForm

register = template.Library()


@register.inclusion_tag("iiif/_form.html", takes_context=True)
def iiif_form(context: template.Context) -> dict:
    return {
        "form": IiifForm() if iiif_enabled() else None,
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("iiif/_source.html")
def iiif_source(analysis: Analysis) -> dict:
    return {"source": selectors.get_iiif_source(analysis)}


@register.inclusion_tag("iiif/_analysis_links.html")
def iiif_links(analysis: Analysis) -> dict:
    return {"analysis": analysis}
