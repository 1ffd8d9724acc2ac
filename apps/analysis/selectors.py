"""Reads of the analysis app."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.analysis.models import Analysis, AnalysisResult, Heatmap


def analyses_for(user) -> QuerySet[Analysis]:
    """The analyses a user may see: their own, or all of them for staff."""
    queryset = Analysis.objects.prefetch_related("topics", "creators")
    return queryset if user.is_staff else queryset.filter(owner=user)


def ranked_results(analysis: Analysis, query: str, cell: tuple[int, int] | None = None):
    row, col = cell if cell else (None, None)
    return (
        AnalysisResult.objects.filter(analysis=analysis, query=query, cell_row=row, cell_col=col)
        .select_related("sentence__work")
        .order_by("rank")
    )


def heatmap_for(analysis: Analysis, sentence_id: str) -> Heatmap | None:
    return Heatmap.objects.filter(
        analysis=analysis, sentence_id=sentence_id, model_key=analysis.model_key
    ).first()
