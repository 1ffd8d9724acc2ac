from django.urls import path

from apps.library import api

urlpatterns = [
    path("library/saved", api.SavedAnalysisListCreate.as_view(), name="saved-list"),
    path("library/saved/<uuid:pk>", api.SavedAnalysisDetail.as_view(), name="saved-detail"),
    path("library/saved/<uuid:pk>/pins", api.PinListCreate.as_view(), name="saved-pins"),
    path("library/saved/<uuid:pk>/pins/<int:pin_id>", api.PinDetail.as_view(), name="saved-pin"),
    path(
        "library/saved/<uuid:pk>/export.<str:fmt>",
        api.SavedAnalysisExport.as_view(),
        name="saved-export",
    ),
    path("library/collections", api.CollectionListCreate.as_view(), name="collection-list"),
    path(
        "library/collections/<uuid:pk>",
        api.CollectionDetail.as_view(),
        name="collection-detail",
    ),
    path(
        "library/collections/<uuid:pk>/entries",
        api.EntryCreate.as_view(),
        name="collection-entries",
    ),
    path(
        "library/collections/<uuid:pk>/entries/<int:entry_id>",
        api.EntryDetail.as_view(),
        name="collection-entry",
    ),
    path(
        "library/collections/<uuid:pk>/export.<str:fmt>",
        api.CollectionExport.as_view(),
        name="collection-export",
    ),
    path("library/shares", api.ShareLinkListCreate.as_view(), name="share-list"),
    path("library/shares/<uuid:pk>", api.ShareLinkDetail.as_view(), name="share-detail"),
    path("works/<str:work_id>/citation", api.WorkCitation.as_view(), name="work-citation"),
]
