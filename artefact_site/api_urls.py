"""`/api/v1/`: every app's endpoints, the OpenAPI schema and its browsable UI."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

app_name = "api"

urlpatterns = [
    path("", include("apps.analysis.urls")),
    path("", include("apps.corpus.urls")),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]
