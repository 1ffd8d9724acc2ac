"""The library's own pages: the library, collections, and the public pages of share links."""

from django.urls import path

from apps.library import views

app_name = "library"

urlpatterns = [
    path("library/", views.library, name="index"),
    path("library/collections/", views.collection_create, name="collection-create"),
    path("library/collections/<uuid:pk>/", views.collection_page, name="collection"),
    path("library/collections/<uuid:pk>/delete", views.collection_delete, name="collection-delete"),
    path(
        "library/collections/<uuid:pk>/export.<str:fmt>",
        views.collection_export,
        name="collection-export",
    ),
    path("library/collections/<uuid:pk>/shares", views.collection_share, name="collection-share"),
    path(
        "library/collections/<uuid:pk>/entries/<int:entry_id>/move",
        views.entry_move,
        name="entry-move",
    ),
    path(
        "library/collections/<uuid:pk>/entries/<int:entry_id>/remove",
        views.entry_remove,
        name="entry-remove",
    ),
    path("library/saved/<uuid:pk>/", views.saved_edit, name="saved"),
    path("library/saved/<uuid:pk>/unsave", views.saved_unsave, name="saved-unsave"),
    path("library/saved/<uuid:pk>/export.<str:fmt>", views.saved_export, name="saved-export"),
    path("library/saved/<uuid:pk>/shares", views.saved_share, name="saved-share"),
    path("library/shares/<uuid:pk>/revoke", views.share_revoke, name="share-revoke"),
    path("shared/<str:token>/", views.shared, name="shared"),
    path("shared/<str:token>/image", views.shared_image, name="shared-image"),
    path("shared/<str:token>/export.<str:fmt>", views.shared_export, name="shared-export"),
]
