from django.urls import path

from apps.iiif import api

urlpatterns = [
    path(
        "analyses/<uuid:pk>/iiif/manifest.json",
        api.AnalysisManifest.as_view(),
        name="analysis-iiif-manifest",
    ),
    path(
        "analyses/<uuid:pk>/iiif/annotations.jsonld",
        api.AnalysisAnnotations.as_view(),
        name="analysis-iiif-annotations",
    ),
]
