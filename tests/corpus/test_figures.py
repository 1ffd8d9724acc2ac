"""Figure search's backend on small corpora: captions and citations from the Markdown,
`embed_corpus --figures` through the real engine (tiny CLIP), and `search_figures`' guarantees
(exact scores, min(k, matches), filters inside the search, unpublished works never appear)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from PIL import Image

from apps import engine
from apps.corpus import selectors, services
from apps.corpus.importers.figures import FigureText, figure_texts
from apps.corpus.models import FigureEmbedding, WorkImage
from apps.corpus.vectors import FIGURES, get_stored_dimension, store_figure_embeddings
from apps.engine.images import grey_world, load_image

# --- captions and citing paragraphs -------------------------------------------------------

MARKER_TEXT = """# On Deluges

The painter returned to the flood in 1834, as the letters show.

![](_page_3_Picture_1.jpeg)

Fig. 2. John Martin, *The Deluge*, 1834, oil on canvas.

The composition (figs. 1 and 2) sets a tiny ark against the storm.

![](_page_4_Picture_0.jpeg) Figure 3: The Eve of the Deluge.

Nothing refers to figure 30 here, nor to plate 12.

Later the motif of plate 3 returns in the mezzotints.

![](untitled.png)

## Notes

![](last.png)
"""


def test_caption_is_the_block_after_the_image_or_its_own_line():
    texts = figure_texts(MARKER_TEXT)
    assert texts["_page_3_Picture_1.jpeg"].caption == (
        "Fig. 2. John Martin, The Deluge, 1834, oil on canvas."
    )
    assert texts["_page_4_Picture_0.jpeg"].caption == "Figure 3: The Eve of the Deluge."
    # Followed by a heading, or by nothing: no caption.
    assert texts["untitled.png"].caption == ""
    assert texts["last.png"] == FigureText()


def test_citation_is_the_paragraph_naming_the_figure_number():
    texts = figure_texts(MARKER_TEXT)
    # "figs. 1 and 2" names 2; the caption itself does not count.
    assert texts["_page_3_Picture_1.jpeg"].citation.startswith("The composition (figs. 1 and 2)")
    # "figure 30" and "plate 12" do not name 3; "plate 3" does.
    assert texts["_page_4_Picture_0.jpeg"].citation.startswith("Later the motif of plate 3")
    # No number: the first prose block after the figure.
    assert texts["untitled.png"].citation == ""  # only a heading and an image follow


def test_demo_style_plates_take_their_number_from_the_heading():
    markdown = (
        "## Plate 2: A Barn at Dusk\n\n![](W1_fig2.jpeg)\n\n"
        "Ada Vane, A Barn at Dusk, oil on canvas, 1850.\n\n"
        "A red barn stands on the left. The sky is pale.\n\n"
        "## Plate 3: Boats\n\n![](W1_fig3.jpeg)\n\nAda Vane, Boats, oil on canvas, 1851.\n\n"
        "In Plate 3 the boats crowd the harbour.\n"
    )
    texts = figure_texts(markdown)
    assert texts["W1_fig2.jpeg"] == FigureText(
        caption="Ada Vane, A Barn at Dusk, oil on canvas, 1850.",
        citation="A red barn stands on the left. The sky is pale.",
    )
    assert texts["W1_fig3.jpeg"].citation == "In Plate 3 the boats crowd the harbour."


# --- embed_corpus --figures ----------------------------------------------------------------


def _png(seed: int, size: tuple[int, int] = (96, 72)) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    # A comment and EXIF in the source: the thumbnail must carry neither.
    exif = Image.Exif()
    exif[0x010E] = "secret description"
    Image.fromarray(pixels).save(buffer, format="PNG", exif=exif)
    return buffer.getvalue()


@pytest.fixture
def figure_corpus(corpus_dir, media):
    """The small corpus with real images for W100..W104 and W105's fake PNG left unreadable."""
    root, _ = corpus_dir(models=())
    for index in range(5):
        (root / "marker_output" / f"W{100 + index}" / f"fig_{index}.png").write_bytes(
            _png(index, (96 + 16 * index, 72))
        )
    services.import_corpus([root])
    return root


@pytest.mark.django_db
def test_embed_figures_is_resumable_reports_unreadable_files_and_matches_the_engine(
    figure_corpus, models, capsys
):
    with pytest.raises(CommandError, match=r"1 figure image\(s\).*W105/fig_5.png"):
        call_command("embed_corpus", "--model", "all", "--figures", "--no-progress")
    out, err = capsys.readouterr()
    assert "cannot read figure" in err
    assert "W105/fig_5.png" in err
    assert "figure embeddings[clip]: 5 written" in out
    assert selectors.count_figure_embeddings() == {"clip": 5, "paintingclip": 5}
    assert get_stored_dimension("clip", FIGURES) == models.get("clip").embed_dim

    # Each vector is the whole-image vector of the same picture (same view), white-balanced
    # as an analysis's figure vector is.
    for figure in WorkImage.objects.exclude(work_id="W105"):
        with figure.image.open("rb") as stored:
            picture = grey_world(load_image(stored.read()))
        expected = engine.analyse_image(picture, "paintingclip", view="keep_aspect")
        row = FigureEmbedding.objects.get(model="paintingclip", figure=figure)
        np.testing.assert_allclose(
            np.asarray(row.embedding, np.float32), expected.embedding, atol=2e-3
        )
        thumbnail = Image.open(figure.thumbnail.open("rb"))
        assert thumbnail.format == "JPEG"
        assert max(thumbnail.size) <= 480
        assert not thumbnail.getexif()
        assert "exif" not in thumbnail.info

    # A second run embeds nothing (and names the unreadable file again).
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(xmin::text::bigint) FROM corpus_figureembedding")
        before = cursor.fetchone()[0]
    with pytest.raises(CommandError, match=r"W105/fig_5\.png"):
        call_command("embed_corpus", "--model", "all", "--figures", "--no-progress")
    out, _ = capsys.readouterr()
    assert "figure embeddings[clip]: 0 written" in out
    assert "figure embeddings[paintingclip]: 0 written" in out
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(xmin::text::bigint) FROM corpus_figureembedding")
        assert cursor.fetchone()[0] == before


@pytest.mark.django_db
def test_figures_are_embedded_white_balanced_and_again_after_the_setting_changes(
    figure_corpus, models, settings, capsys
):
    figure = WorkImage.objects.get(work_id="W100")
    # A plate printed with a strong warm cast: balancing it changes what the model sees.
    rng = np.random.default_rng(7)
    pixels = rng.integers(40, 200, (72, 96, 3)).astype(np.float32) * (1.3, 1.0, 0.55)
    cast = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    with figure.image.open("wb") as stored:
        cast.save(stored, format="PNG")
    balanced = engine.analyse_image(grey_world(cast), "clip", view="keep_aspect").embedding
    as_printed = engine.analyse_image(cast, "clip", view="keep_aspect").embedding
    assert float(balanced @ as_printed) < 0.999

    def stored() -> np.ndarray:
        row = FigureEmbedding.objects.get(model="clip", figure=figure)
        return np.asarray(row.embedding, np.float32)

    with pytest.raises(CommandError):  # W105's unreadable file
        call_command("embed_corpus", "--model", "clip", "--figures", "--no-progress")
    np.testing.assert_allclose(stored(), balanced, atol=2e-3)

    settings.FIGURE_WHITE_BALANCE = "none"
    with pytest.raises(CommandError):
        call_command("embed_corpus", "--model", "clip", "--figures", "--again", "--no-progress")
    out, _ = capsys.readouterr()
    assert "figure embeddings: 5 deleted" in out
    assert "figure embeddings[clip]: 5 written" in out
    np.testing.assert_allclose(stored(), as_printed, atol=2e-3)
    assert FigureEmbedding.objects.filter(model="paintingclip").count() == 0  # not asked for

    with pytest.raises(CommandError, match="--again applies to the figures only"):
        call_command("embed_corpus", "--model", "clip", "--again")


def test_grey_world_undoes_a_uniform_cast():
    rng = np.random.default_rng(3)
    pixels = rng.integers(60, 180, (40, 50, 3)).astype(np.float32)
    plain = Image.fromarray(pixels.astype(np.uint8))
    cast = Image.fromarray(np.clip(pixels * (1.2, 1.0, 0.8), 0, 255).astype(np.uint8))
    a = np.asarray(grey_world(plain), np.float32)
    b = np.asarray(grey_world(cast), np.float32)
    assert np.abs(a - b).mean() < 1.5  # the same picture again, up to rounding
    assert np.abs(np.asarray(cast, np.float32) - pixels).mean() > 10


def test_embed_images_batches_equal_one_by_one(models):
    pictures = [Image.open(io.BytesIO(_png(i, (64 + 32 * (i % 2), 64)))) for i in range(5)]
    for view in ("keep_aspect", "centre", "letterbox", "windows"):
        batched = engine.embed_images(pictures, "clip", view=view, batch_size=2)  # [5, D]
        assert batched.shape == (5, models.get("clip").embed_dim)
        for picture, vector in zip(pictures, batched, strict=True):
            single = engine.analyse_image(picture, "clip", view=view).embedding
            np.testing.assert_allclose(vector, single, atol=1e-5)


# --- search_figures --------------------------------------------------------------------------


@pytest.fixture
def figure_vectors(imported_corpus) -> dict[int, np.ndarray]:
    """Random 8-d vectors (as stored, half precision) for every figure of the small corpus,
    plus three more figures per work so that filters have more than k matches."""
    figures = list(WorkImage.objects.all())
    for figure in figures[:]:
        for extra in range(3):
            figures.append(
                WorkImage.objects.create(
                    work_id=figure.work_id,
                    name=f"extra_{extra}.png",
                    position=10 + extra,
                    image=figure.image.name,
                )
            )
    vectors = np.random.default_rng(3).standard_normal((len(figures), 8)).astype(np.float32)
    store_figure_embeddings("clip", [f.pk for f in figures], vectors)
    stored = vectors.astype(np.float16).astype(np.float32)
    return {figure.pk: stored[i] for i, figure in enumerate(figures)}


def _exact(vectors: dict[int, np.ndarray], query: np.ndarray, ids: set[int]) -> list[int]:
    scores = {
        pk: float(v @ query / np.linalg.norm(v) / np.linalg.norm(query))
        for pk, v in vectors.items()
        if pk in ids
    }
    return sorted(scores, key=lambda pk: (-scores[pk], pk))


@pytest.mark.django_db
@pytest.mark.parametrize("exact_limit", [20_000, 0], ids=["exact", "hnsw"])
@pytest.mark.parametrize(
    ("filters", "works"),
    [
        ({}, {"W100", "W101", "W102", "W103", "W104", "W105"}),
        ({"topics": ["T1"]}, {"W100", "W102", "W104"}),
        ({"creators": ["bruno_painter"]}, {"W101", "W104"}),
        ({"topics": ["T2"], "creators": ["bruno_painter"]}, {"W101"}),
    ],
)
def test_search_figures_returns_min_k_matches_ranked_exactly(
    figure_vectors, monkeypatch, filters, works, exact_limit
):
    monkeypatch.setattr(selectors, "EXACT_SEARCH_MAX_ROWS", exact_limit)
    matching = set(WorkImage.objects.filter(work_id__in=works).values_list("pk", flat=True))
    rng = np.random.default_rng(7)
    for k in (3, 6, 40):
        query = rng.standard_normal(8).astype(np.float32)
        hits = selectors.search_figures(query, "clip", k=k, **filters)
        truth = _exact(figure_vectors, query, matching)[:k]
        assert len(hits) == min(k, len(matching))
        assert [hit.figure_id for hit in hits] == truth
        assert [hit.rank for hit in hits] == list(range(1, len(hits) + 1))
        assert {hit.work_id for hit in hits} <= works
        best = figure_vectors[truth[0]]
        expected = float(best @ query / np.linalg.norm(best) / np.linalg.norm(query))
        assert hits[0].score == pytest.approx(expected, abs=1e-4)


@pytest.mark.django_db
def test_figures_of_unpublished_works_never_appear(figure_vectors):
    query = figure_vectors[WorkImage.objects.filter(work_id="W102").first().pk]
    assert selectors.search_figures(query, "clip", k=1)[0].work_id == "W102"
    services.set_works_published(["W102"], False)
    for filters in ({}, {"works": ["W102"]}, {"topics": ["T1"]}):
        hits = selectors.search_figures(query, "clip", k=40, **filters)
        assert "W102" not in {hit.work_id for hit in hits}
    assert selectors.search_figures(query, "clip", k=40, works=["W102"]) == []
    assert len(selectors.search_figures(query, "clip", k=40)) == 20  # 24 less W102's 4
    assert selectors.get_published_figure(selectors.search_figures(query, "clip")[0].figure_id)
    services.set_works_published(["W102"], True)
    assert selectors.search_figures(query, "clip", k=1)[0].work_id == "W102"


@pytest.mark.django_db
def test_figure_vectors_have_their_own_partial_index(figure_vectors):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'corpus_figureembedding'"
            " AND indexname LIKE 'corpus_figure_hnsw%'"
        )
        ((name, definition),) = cursor.fetchall()
    assert name == "corpus_figure_hnsw_clip_8"
    assert "halfvec(8)" in definition
    assert "'clip'" in definition
    with pytest.raises(ValueError, match="8"):
        store_figure_embeddings("clip", [next(iter(figure_vectors))], np.ones((1, 4)))
    with pytest.raises(ValueError, match="unknown model key"):
        selectors.search_figures(np.ones(8), "nope")
