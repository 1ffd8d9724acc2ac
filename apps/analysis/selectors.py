"""Reads of the analysis app."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.http import QueryDict
from django.utils import timezone

from apps.analysis.models import (
    Analysis,
    AnalysisEmbedding,
    AnalysisResult,
    ExampleImage,
    Heatmap,
    IiifSource,
)
from apps.core.paths import public_model_source, without_server_paths
from apps.corpus.models import Work, WorkImage
from apps.corpus.selectors import FigureHit, SentenceHit
from apps.engine.config import engine_config, model_keys, model_label

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


def list_analyses(user, *, own: bool = False) -> QuerySet[Analysis]:
    """The analyses a user may see: their own, or all of them for staff (`own`: only their
    own, as their history shows), newest first."""
    queryset = Analysis.objects.prefetch_related("topics", "creators")
    return queryset if user.is_staff and not own else queryset.filter(owner=user)


def get_iiif_source(analysis: Analysis) -> IiifSource | None:
    """The IIIF source of the analysis's image: its own, or for a region cut from an
    analysis of a IIIF image, the parent's (a region's image is the parent's image)."""
    ids = [analysis.pk] + ([analysis.parent_id] if analysis.parent_id else [])
    found = {source.analysis_id: source for source in IiifSource.objects.filter(analysis__in=ids)}
    return next((found[pk] for pk in ids if pk in found), None)


def list_examples() -> QuerySet[ExampleImage]:
    """The example paintings the workspace offers (curated in the admin)."""
    return ExampleImage.objects.all()


def get_lineage(analysis: Analysis) -> dict[str, Analysis | None]:
    """Where undo and redo lead: the analysis a region was cut from, and the newest region
    cut from this one."""
    return {
        "undo": analysis.parent,
        "redo": analysis.regions.order_by("-created_at").first(),
    }


def analysis_stalled(analysis: Analysis) -> bool:
    """Whether a queued or running analysis has not moved for longer than a job may take."""
    since = analysis.started_at or analysis.created_at
    limit = timedelta(seconds=settings.ANALYSIS_JOB_TIMEOUT)
    return analysis.status in (Analysis.Status.QUEUED, Analysis.Status.RUNNING) and (
        timezone.now() - since > limit
    )


@dataclass(frozen=True)
class AnalysisView:
    """What the analysis page shows, read from its query string (see `apps.analysis.views`)."""

    model_key: str
    topic_ids: list[str]
    creator_ids: list[str]
    cell: tuple[int, int] | None = None
    k: int = 25
    group: bool = False
    where: str = ""
    tab: str = "sentences"
    """Which results the page lists: "sentences", or "figures" of the corpus like the image."""

    def differs_from(self, analysis: Analysis) -> bool:
        return (
            self.model_key != analysis.model_key
            or sorted(self.topic_ids) != sorted(t.id for t in analysis.topics.all())
            or sorted(self.creator_ids) != sorted(c.slug for c in analysis.creators.all())
        )

    def initial(self) -> dict:
        return {"model": self.model_key, "topics": self.topic_ids, "creators": self.creator_ids}

    @property
    def filtered(self) -> bool:
        return bool(self.topic_ids or self.creator_ids)


def build_view_query(analysis: Analysis) -> QueryDict:
    """The query string of the analysis page for its current model and filters."""
    query = QueryDict(mutable=True)
    query["model"] = analysis.model_key
    query.setlist("topics", [topic.id for topic in analysis.topics.all()])
    query.setlist("creators", [creator.slug for creator in analysis.creators.all()])
    return query


MAX_NUMBER_DIGITS = 6


def whole_number(text: str) -> int | None:
    """`text` as a whole number when it is one of up to MAX_NUMBER_DIGITS ASCII digits, else
    None. ``str.isdigit`` alone is no test: it accepts '²', which ``int`` refuses, and 5,000
    digits, which ``int`` refuses to convert (a URL or a form field can hold either)."""
    if text.isascii() and text.isdigit() and len(text) <= MAX_NUMBER_DIGITS:
        return int(text)
    return None


def parse_cell(text: str) -> tuple[int, int] | None:
    """`row,col` as the analysis page writes it, or None where `text` is not that."""
    parts = text.split(",")
    numbers = [whole_number(part) for part in parts]
    if len(numbers) != 2 or None in numbers:
        return None
    return numbers[0], numbers[1]


def read_view(params: Mapping, analysis: Analysis) -> AnalysisView:
    """The page state in `params`, with the analysis's own model and filters where the query
    string names none; malformed values are ignored rather than refused (a URL is typed)."""
    model_key = params.get("model") or analysis.model_key
    if model_key not in model_keys():
        model_key = analysis.model_key
    if "model" in params:
        topics, creators = params.getlist("topics"), params.getlist("creators")
    else:
        topics = [topic.id for topic in analysis.topics.all()]
        creators = [creator.slug for creator in analysis.creators.all()]
    k = whole_number(params.get("k", ""))
    return AnalysisView(
        model_key=model_key,
        topic_ids=[t for t in topics if t],
        creator_ids=[c for c in creators if c],
        cell=parse_cell(params.get("cell", "")),
        k=k if k is not None and 1 <= k <= 100 else settings.ANALYSIS_RESULTS,
        group=params.get("group") == "work",
        where=params.get("where", "").strip()[: Heatmap.MAX_TEXT_CHARS],
        tab=read_tab(params),
    )


RESULT_TABS = ("sentences", "figures")


def read_tab(params: Mapping) -> str:
    """The results tab a page's query string asks for (`tab=`); sentences unless it names
    another one."""
    tab = params.get("tab", "")
    return tab if tab in RESULT_TABS else RESULT_TABS[0]


@dataclass
class Card:
    """A result card: one ranked sentence with what the page shows of its work."""

    rank: int
    score: float
    sentence_id: str
    text: str
    work: Work

    @property
    def score_percent(self) -> int:
        return max(0, min(100, round(self.score * 100)))


@dataclass
class CardGroup:
    work: Work
    cards: list[Card] = field(default_factory=list)


def build_cards(hits: Sequence[SentenceHit], works: Mapping[str, Work]) -> list[Card]:
    return [
        Card(hit.rank, hit.score, hit.sentence_id, hit.text, works[hit.work_id]) for hit in hits
    ]


@dataclass
class FigureCard:
    """A figure result: one ranked plate of the corpus, with its work loaded."""

    rank: int
    score: float
    figure: WorkImage


def build_figure_cards(
    hits: Sequence[FigureHit], figures: Mapping[int, WorkImage]
) -> list[FigureCard]:
    """Cards of the hits whose figure is in `figures` (a work unpublished since the search is
    left out)."""
    return [
        FigureCard(hit.rank, hit.score, figures[hit.figure_id])
        for hit in hits
        if hit.figure_id in figures
    ]


def group_cards(cards: Sequence[Card]) -> list[CardGroup]:
    """Cards by work, works in the order of their best sentence."""
    groups: dict[str, CardGroup] = {}
    for card in cards:
        groups.setdefault(card.work.id, CardGroup(card.work)).cards.append(card)
    return list(groups.values())


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


def get_text_heatmap(analysis: Analysis, digest: str) -> Heatmap | None:
    """A free-text heat map of the analysis's current model, by its digest."""
    return Heatmap.objects.filter(
        analysis=analysis, text_digest=digest, sentence=None, model_key=analysis.model_key
    ).first()


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
    models = []
    for key in specs:
        states = [status[key] for status in published.values() if key in status]
        loaded = [state for state in states if state["loaded"]]
        reported = loaded[0] if loaded else {}
        models.append(
            {
                "key": key,
                "label": model_label(key),
                "base": public_model_source(specs[key].base),
                "adapter": public_model_source(specs[key].adapter),
                "loaded_by_workers": len(loaded),
                **{field: reported.get(field) for field in MODEL_FIELDS_FROM_WORKERS},
                "errors": sorted(
                    {without_server_paths(state["error"]) for state in states if state.get("error")}
                ),
            }
        )
    return models
