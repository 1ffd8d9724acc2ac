"""`/api/v1/`: every app's endpoints, the OpenAPI schema and its browsable UI."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.core.api import UnknownEndpoint

app_name = "api"

urlpatterns = [
    path("", include("apps.analysis.api_urls")),
    path("", include("apps.corpus.api_urls")),
    path("", include("apps.library.api_urls")),
    path("", include("apps.iiif.api_urls")),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file, which the site's CSP allows.
    path(
        "docs",
        SpectacularSwaggerSplitView.as_view(
            url_name="api:schema", template_name="api/swagger_ui.html"
        ),
        name="docs",
    ),
    # Last: any other path under the API answers the JSON 404, not the site's HTML page.
    re_path(r"^.*$", UnknownEndpoint.as_view(), name="unknown-endpoint"),
]
