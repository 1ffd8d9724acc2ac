from django.urls import path

from apps.analysis import api

urlpatterns = [
    path("search", api.TextSearch.as_view(), name="search"),
    path("models", api.ModelList.as_view(), name="models"),
    path("figures/search", api.FigureTextSearch.as_view(), name="figure-search"),
    path("analyses", api.AnalysisListCreate.as_view(), name="analysis-list"),
    path("analyses/<uuid:pk>", api.AnalysisDetail.as_view(), name="analysis-detail"),
    path("analyses/<uuid:pk>/rerun", api.AnalysisRerun.as_view(), name="analysis-rerun"),
    path("analyses/<uuid:pk>/image", api.AnalysisImage.as_view(), name="analysis-image"),
    path(
        "analyses/<uuid:pk>/cells/<int:row>/<int:col>",
        api.CellResults.as_view(),
        name="analysis-cell",
    ),
    path("analyses/<uuid:pk>/figures", api.AnalysisFigures.as_view(), name="analysis-figures"),
    path("analyses/<uuid:pk>/heatmaps", api.HeatmapRequest.as_view(), name="analysis-heatmaps"),
    path(
        "analyses/<uuid:pk>/heatmaps/<str:sentence_id>.<str:fmt>",
        api.HeatmapDetail.as_view(),
        name="analysis-heatmap",
    ),
    path(
        "analyses/<uuid:pk>/where",
        api.TextHeatmapRequest.as_view(),
        name="analysis-text-heatmaps",
    ),
    path(
        "analyses/<uuid:pk>/where/<str:digest>.<str:fmt>",
        api.TextHeatmapDetail.as_view(),
        name="analysis-text-heatmap",
    ),
]
