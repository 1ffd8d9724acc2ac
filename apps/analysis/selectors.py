"""Reads of the analysis app."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.analysis.models import Analysis, AnalysisEmbedding, AnalysisResult, Heatmap
from apps.engine.config import MODEL_TABLE, engine_config

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


def list_analyses(user) -> QuerySet[Analysis]:
    """The analyses a user may see: their own, or all of them for staff."""
    queryset = Analysis.objects.prefetch_related("topics", "creators")
    return queryset if user.is_staff else queryset.filter(owner=user)


def analysis_exists(analysis_id: str) -> bool:
    return Analysis.objects.filter(pk=analysis_id).exists()


def list_results(analysis: Analysis, query: str, cell: tuple[int, int] | None = None):
    row, col = cell if cell else (None, None)
    return (
        AnalysisResult.objects.filter(analysis=analysis, query=query, cell_row=row, cell_col=col)
        .select_related("sentence__work")
        .order_by("rank")
    )


def get_embedding(analysis: Analysis) -> AnalysisEmbedding | None:
    """The vectors (and grid) of the analysis's current model, once its job has stored them."""
    return analysis.embeddings.filter(model_key=analysis.model_key).first()


def get_heatmap(analysis: Analysis, sentence_id: str) -> Heatmap | None:
    return Heatmap.objects.filter(
        analysis=analysis, sentence_id=sentence_id, model_key=analysis.model_key
    ).first()


def list_models() -> list[dict]:
    """Each configured model key: its settings, how many live workers loaded it, what the
    first of them reports about it, and the load errors any of them met."""
    import django_rq
    from rq import Worker

    from apps.analysis.worker import published_models

    connection = django_rq.get_connection("default")
    workers = Worker.all(connection=connection)
    published = published_models(connection, [worker.name for worker in workers])
    specs = {spec.key: spec for spec in engine_config().specs}
    labels = {entry.key: entry.label for entry in MODEL_TABLE}
    models = []
    for key in specs:
        states = [status[key] for status in published.values() if key in status]
        loaded = [state for state in states if state["loaded"]]
        reported = loaded[0] if loaded else {}
        models.append(
            {
                "key": key,
                "label": labels.get(key, key),
                "base": specs[key].base,
                "adapter": specs[key].adapter,
                "loaded_by_workers": len(loaded),
                **{field: reported.get(field) for field in MODEL_FIELDS_FROM_WORKERS},
                "errors": sorted({state["error"] for state in states if state.get("error")}),
            }
        )
    return models
