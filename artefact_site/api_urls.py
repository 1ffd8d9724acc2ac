"""`/api/v1/`: every app's endpoints, the OpenAPI schema and its browsable UI."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

app_name = "api"

urlpatterns = [
    path("", include("apps.analysis.urls")),
    path("", include("apps.corpus.urls")),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file, which the site's CSP allows.
    path(
        "docs",
        SpectacularSwaggerSplitView.as_view(
            url_name="api:schema", template_name="api/swagger_ui.html"
        ),
        name="docs",
    ),
]
