from django.urls import path

from apps.analysis import views

app_name = "analysis"

urlpatterns = [
    path("workspace/", views.workspace, name="workspace"),
    path("workspace/examples/<int:pk>", views.example_image, name="example-image"),
    path("analyses/<uuid:pk>/", views.analysis_page, name="page"),
    path("analyses/<uuid:pk>/progress", views.analysis_progress, name="progress"),
    path(
        "analyses/<uuid:pk>/heatmaps/<str:sentence_id>",
        views.heatmap_state,
        name="heatmap-state",
    ),
    path(
        "analyses/<uuid:pk>/where/<str:digest>",
        views.text_heatmap_state,
        name="text-heatmap-state",
    ),
    path("analyses/<uuid:pk>/cancel", views.analysis_cancel, name="cancel"),
    path("analyses/<uuid:pk>/retry", views.analysis_retry, name="retry"),
    path("analyses/<uuid:pk>/region", views.analysis_crop, name="region"),
    path("history/", views.history, name="history"),
    path("search/", views.search, name="search"),
]
