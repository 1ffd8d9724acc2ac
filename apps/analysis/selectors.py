"""Reads of the analysis app."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet

from apps.analysis.models import Analysis, AnalysisResult, Heatmap
from apps.corpus.selectors import model_keys

MODEL_FIELDS_FROM_WORKERS = (
    "adapter_state",
    "dtype",
    "text_encoder",
    "vision_encoder",
    "int8_kernels",
    "dtype_warning",
    "embedding_dim",
)
"""What the model list takes from the first live worker that loaded a model."""


def analyses_for(user) -> QuerySet[Analysis]:
    """The analyses a user may see: their own, or all of them for staff."""
    queryset = Analysis.objects.prefetch_related("topics", "creators")
    return queryset if user.is_staff else queryset.filter(owner=user)


def analysis_exists(analysis_id: str) -> bool:
    return Analysis.objects.filter(pk=analysis_id).exists()


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


def models_on_workers() -> list[dict]:
    """Each configured model key: its settings, how many live workers loaded it, what the
    first of them reports about it, and the load errors any of them met."""
    import django_rq
    from rq import Worker

    from apps.analysis.worker import published_models

    connection = django_rq.get_connection("default")
    workers = Worker.all(connection=connection)
    published = published_models(connection, [worker.name for worker in workers])
    models = []
    for key in model_keys():
        states = [status[key] for status in published.values() if key in status]
        loaded = [state for state in states if state["loaded"]]
        reported = loaded[0] if loaded else {}
        models.append(
            {
                "key": key,
                "base": settings.MODEL_SETTINGS[f"{key.upper()}_BASE_MODEL"],
                "adapter": settings.MODEL_SETTINGS.get(f"{key.upper()}_ADAPTER") or None,
                "loaded_by_workers": len(loaded),
                **{field: reported.get(field) for field in MODEL_FIELDS_FROM_WORKERS},
                "errors": sorted({state["error"] for state in states if state.get("error")}),
            }
        )
    return models
