"""The library's services: saving and pinning, collections and their order, share links,
what goes with a deleted user, and the clean-up of unreferenced analysis files."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import ApiToken
from apps.analysis.models import Analysis, Heatmap
from apps.analysis.services import delete_analysis
from apps.core.errors import ApplicationError, NotFoundError
from apps.library import selectors, services
from apps.library.models import (
    Collection,
    CollectionEntry,
    PinnedSentence,
    SavedAnalysis,
    ShareLink,
)
from tests.conftest import token_client
from tests.library.conftest import CELL

pytestmark = pytest.mark.django_db


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("researcher")


def test_saving_keeps_the_cell_and_reopens_the_page_with_model_filters_and_cell(
    user, make_analysis
):
    analysis = make_analysis(user, crop=[10, 10, 200, 150])
    saved = services.save_analysis(
        user, analysis, name="  Saint  Jerome ", tags=["Lion", "lion", " desert "], cell=CELL
    )

    assert (saved.name, saved.tags, saved.cell) == ("Saint Jerome", ["lion", "desert"], CELL)
    url = urlsplit(selectors.saved_analysis_url(saved))
    assert url.path == f"/analyses/{analysis.pk}/"
    assert parse_qs(url.query) == {"model": ["clip"], "cell": ["1,2"]}
    services.update_saved_analysis(saved, cell=None)
    assert "cell" not in selectors.saved_analysis_url(saved)
    assert Analysis.objects.get(pk=analysis.pk).crop == [10, 10, 200, 150]


def test_an_analysis_is_saved_once_and_only_by_its_owner(user, make_analysis, django_user_model):
    analysis = make_analysis(user)
    services.save_analysis(user, analysis, name="First")
    with pytest.raises(ApplicationError) as again:
        services.save_analysis(user, analysis, name="Second")
    assert again.value.code == "already_saved"
    other = django_user_model.objects.create_user("other")
    with pytest.raises(NotFoundError):
        services.save_analysis(other, make_analysis(user), name="Not mine")
    with pytest.raises(ApplicationError) as outside:
        services.save_analysis(user, make_analysis(user), name="x", cell=(7, 0))
    assert outside.value.code == "bad_cell"


def test_pins_come_from_the_results_of_the_image_or_of_a_cell(user, make_analysis, sentence_ids):
    saved = services.save_analysis(user, make_analysis(user), name="Pins")
    pin, created = services.pin_sentence(saved, sentence_id=sentence_ids[0], annotation="mine")
    again, created_again = services.pin_sentence(saved, sentence_id=sentence_ids[0])
    cell_pin, _ = services.pin_sentence(saved, sentence_id=sentence_ids[5], cell=CELL)

    assert (created, created_again, again.pk, again.annotation) == (True, False, pin.pk, "mine")
    assert (pin.cell, cell_pin.cell) == (None, CELL)
    for sentence_id, cell in ((sentence_ids[5], None), (sentence_ids[0], CELL)):
        with pytest.raises(ApplicationError) as refused:
            services.pin_sentence(saved, sentence_id=sentence_id, cell=cell)
        assert refused.value.code == "not_in_results"
    assert list(selectors.list_pins(saved)) == [pin, cell_pin]


def test_search_covers_name_notes_tags_and_pinned_text_and_filters_by_tag_and_model(
    user, make_analysis, sentence_ids
):
    first = services.save_analysis(user, make_analysis(user), name="Lions", tags=["desert"])
    second = services.save_analysis(
        user, make_analysis(user), name="Other", notes="About the SEA light"
    )
    services.pin_sentence(second, sentence_id=sentence_ids[1], annotation="the halo")
    Analysis.objects.filter(pk=second.analysis_id).update(model_key="paintingclip")

    def found(**query) -> set[str]:
        return {saved.name for saved in selectors.list_saved_analyses(user, **query)}

    assert found(q="lion") == {"Lions"}
    assert found(q="sea light") == {"Other"}
    assert found(q="DESERT") == {"Lions"}
    assert found(q="halo") == {"Other"}
    assert found(q="paragraph 1 sentence 2") == {"Other"}  # the pinned sentence's text
    assert found(tag="desert") == {"Lions"}
    assert found(model="paintingclip") == {"Other"}
    assert selectors.list_tags(user) == ["desert"]
    assert first.analysis.saved == first


def test_unsaving_keeps_the_analysis_and_deleting_the_analysis_unsaves_it(
    user, make_analysis, sentence_ids
):
    saved = services.save_analysis(user, make_analysis(user), name="Kept")
    services.pin_sentence(saved, sentence_id=sentence_ids[0])
    services.unsave_analysis(saved)
    assert Analysis.objects.filter(pk=saved.analysis_id).exists()
    assert PinnedSentence.objects.count() == 0

    again = services.save_analysis(user, Analysis.objects.get(pk=saved.analysis_id), name="x")
    delete_analysis(again.analysis)
    assert SavedAnalysis.objects.count() == 0


def _order(collection: Collection) -> list[str]:
    return [e.sentence_id or e.work_id for e in selectors.list_entries(collection)]


def test_collection_entries_appear_once_and_keep_their_order(user, sentence_ids):
    collection = services.create_collection(user, name="Horses", description="For chapter 2")
    for work_id in ("W100", "W101"):
        services.add_to_collection(collection, work_id=work_id)
    entry, created = services.add_to_collection(collection, sentence_id=sentence_ids[0])
    same, created_again = services.add_to_collection(collection, sentence_id=sentence_ids[0])
    _, work_again = services.add_to_collection(collection, work_id="W100")

    assert (created, created_again, same.pk, work_again) == (True, False, entry.pk, False)
    assert entry.work_id == "W100"
    assert _order(collection) == ["W100", "W101", sentence_ids[0]]
    with pytest.raises(IntegrityError), transaction.atomic():
        CollectionEntry.objects.create(collection=collection, position=9, work_id="W101")
    with pytest.raises(NotFoundError):
        services.add_to_collection(collection, work_id="W999")


def test_moving_an_entry_shifts_the_others_and_removing_closes_the_gap(user, sentence_ids):
    collection = services.create_collection(user, name="Order")
    entries = [services.add_to_collection(collection, work_id=f"W10{i}")[0] for i in range(4)]

    services.move_entry(entries[3], 0)
    assert _order(collection) == ["W103", "W100", "W101", "W102"]
    services.move_entry(entries[3], 1)  # one down
    assert _order(collection) == ["W100", "W103", "W101", "W102"]
    services.move_entry(entries[0], 3)
    assert _order(collection) == ["W103", "W101", "W102", "W100"]
    services.remove_entry(CollectionEntry.objects.get(pk=entries[1].pk))
    positions = list(selectors.list_entries(collection).values_list("position", flat=True))
    assert (_order(collection), positions) == (["W103", "W102", "W100"], [0, 1, 2])
    with pytest.raises(ApplicationError) as outside:
        services.move_entry(CollectionEntry.objects.get(pk=entries[0].pk), 3)
    assert outside.value.code == "bad_position"


def test_a_share_token_opens_its_item_until_revoked_or_expired(user, make_analysis):
    collection = services.create_collection(user, name="Shared")
    services.add_to_collection(collection, work_id="W100")
    link, token = services.create_share_link(user, collection=collection)

    item = selectors.get_shared_item(token)
    assert (item.kind, item.title, [e.work_id for e in item.entries]) == (
        "collection",
        "Shared",
        ["W100"],
    )
    assert ShareLink.objects.get(pk=link.pk).digest != token
    assert token not in str(ShareLink.objects.values_list().get(pk=link.pk))
    services.revoke_share_link(link)
    with pytest.raises(NotFoundError):
        selectors.get_shared_item(token)

    saved = services.save_analysis(user, make_analysis(user), name="Seen")
    soon = timezone.now() + timedelta(hours=1)
    expiring, token = services.create_share_link(user, saved=saved, expires_at=soon)
    assert selectors.get_shared_item(token).saved == saved
    ShareLink.objects.filter(pk=expiring.pk).update(expires_at=timezone.now())
    with pytest.raises(NotFoundError):
        selectors.get_shared_item(token)
    with pytest.raises(NotFoundError):
        selectors.get_shared_item("not-a-token")
    with pytest.raises(ApplicationError) as past:
        services.create_share_link(user, saved=saved, expires_at=timezone.now())
    assert past.value.code == "bad_expiry"


@pytest.mark.django_db(transaction=True)  # the files go when the deletion commits
def test_deleting_a_user_deletes_their_library_analyses_files_and_tokens(
    user, make_analysis, sentence_ids, django_user_model
):
    analysis = make_analysis(user)
    files = [Path(f.path) for f in (analysis.image, analysis.thumbnail, analysis.reduced)]
    saved = services.save_analysis(user, analysis, name="Mine")
    services.pin_sentence(saved, sentence_id=sentence_ids[0])
    collection = services.create_collection(user, name="Mine")
    services.add_to_collection(collection, work_id="W100")
    services.create_share_link(user, collection=collection)
    services.create_share_link(user, saved=saved)
    token_client(user)
    keeper = django_user_model.objects.create_user("keeper")
    kept = services.create_collection(keeper, name="Theirs")
    assert all(path.is_file() for path in files)

    user.delete()

    for model in (Analysis, SavedAnalysis, PinnedSentence, CollectionEntry, ShareLink, ApiToken):
        assert model.objects.count() == 0, model.__name__
    assert list(Collection.objects.all()) == [kept]
    assert not any(path.exists() for path in files)


def _age(path: Path, seconds: float = 7200) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_library_cleanup_reports_then_deletes_only_unreferenced_old_files(
    user, make_analysis, media, capsys
):
    analysis = make_analysis(user)
    heatmap = Heatmap.objects.create(
        analysis=analysis, sentence_id=analysis.results.first().sentence_id, model_key="clip",
        rows=1, cols=1, values=b"\0\0\0\0", overlay="heatmaps/2026/01/kept.png",
    )  # fmt: skip
    referenced = [Path(f.path) for f in (analysis.image, analysis.thumbnail, analysis.reduced)]
    referenced.append(media / heatmap.overlay.name)
    orphans = [
        media / "analyses/2020/01/lost.jpg",
        media / "analyses/thumbnails/2020/01/lost.jpg",
        media / "heatmaps/display/2020/01/lost.png",
    ]
    fresh = media / "analyses/2020/02/being-uploaded.jpg"
    elsewhere = media / "corpus/images/figure.png"
    for path in [*orphans, fresh, elsewhere, referenced[-1]]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 1000)
    for path in [*orphans, *referenced, elsewhere]:
        _age(path)

    call_command("library_cleanup")
    report = capsys.readouterr().out
    assert "3 of 8 files under analyses, heatmaps are referenced by no row" in report
    assert "analyses/2020/01/lost.jpg" in report
    assert all(path.exists() for path in orphans)

    call_command("library_cleanup", "--delete")
    assert "deleted 3" in capsys.readouterr().out
    assert not any(path.exists() for path in orphans)
    assert not (media / "analyses/2020/01").exists()
    assert all(path.exists() for path in [*referenced, fresh, elsewhere])
