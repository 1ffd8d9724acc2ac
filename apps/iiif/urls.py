"""IIIF in from the workspace, the viewer pages, and IIIF out through share links."""

from django.urls import path

from apps.iiif import views

app_name = "iiif"

urlpatterns = [
    path("workspace/iiif/", views.import_from_iiif, name="import"),
    path("workspace/iiif/thumbnails/<str:signed>", views.thumbnail, name="thumbnail"),
    path("analyses/<uuid:pk>/viewer/", views.viewer, name="viewer"),
    path("shared/<str:token>/iiif/manifest.json", views.shared_manifest, name="shared-manifest"),
    path(
        "shared/<str:token>/iiif/annotations.jsonld",
        views.shared_annotations,
        name="shared-annotations",
    ),
    path("shared/<str:token>/iiif/image", views.shared_image, name="shared-image"),
    path("shared/<str:token>/iiif/viewer", views.shared_viewer, name="shared-viewer"),
]
