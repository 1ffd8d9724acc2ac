"""IIIF out through share links, and the viewer pages."""

from django.urls import path

from apps.iiif import views

app_name = "iiif"

urlpatterns = [
    path("shared/<str:token>/iiif/manifest.json", views.shared_manifest, name="shared-manifest"),
    path(
        "shared/<str:token>/iiif/annotations.jsonld",
        views.shared_annotations,
        name="shared-annotations",
    ),
    path("shared/<str:token>/iiif/image", views.shared_image, name="shared-image"),
]
