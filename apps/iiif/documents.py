"""HTTP responses for IIIF out, shared by the API (owner) and the share links (public)."""

from __future__ import annotations

import json

from django.http import HttpResponse
from django.utils.text import slugify

from apps.analysis.models import Analysis
from apps.iiif import exports


def _json(document: dict, content_type: str) -> HttpResponse:
    return HttpResponse(
        json.dumps(document, ensure_ascii=False, indent=1), content_type=content_type
    )


def manifest_response(analysis: Analysis, links: exports.Links) -> HttpResponse:
    return _json(exports.build_manifest(analysis, links), exports.MANIFEST_CONTENT_TYPE)


def annotations_response(analysis: Analysis, links: exports.Links) -> HttpResponse:
    response = _json(
        exports.build_annotation_collection(analysis, links), exports.ANNOTATION_CONTENT_TYPE
    )
    name = slugify(analysis.original_filename.rsplit(".", 1)[0]) or "analysis"
    response["Content-Disposition"] = f'attachment; filename="{name}-annotations.jsonld"'
    return response


def allow_any_origin(response: HttpResponse) -> HttpResponse:
    """Let viewers on other sites read a public document (a share link's): no credentials
    are involved, the token is in the URL."""
    response["Access-Control-Allow-Origin"] = "*"
    return response
