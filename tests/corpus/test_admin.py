"""The admin pages load, and publishing from them reaches search."""

from __future__ import annotations

import numpy as np
import pytest
from django.urls import reverse

from apps.corpus import selectors
from apps.corpus.models import Sentence, SentenceEmbedding, Work

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_with_corpus(admin_client, imported_corpus):
    return admin_client


@pytest.mark.parametrize("model", ["work", "sentence", "creator", "topic"])
def test_changelists_load_and_search(admin_client_with_corpus, model):
    url = reverse(f"admin:corpus_{model}_changelist")
    assert admin_client_with_corpus.get(url).status_code == 200
    assert admin_client_with_corpus.get(url, {"q": "W100"}).status_code == 200


def test_filters_and_change_pages_load(admin_client_with_corpus):
    client = admin_client_with_corpus
    works = reverse("admin:corpus_work_changelist")
    response = client.get(works, {"topics__id__exact": "T3"})
    assert response.status_code == 200
    assert list(response.context["cl"].queryset.values_list("id", flat=True)) == ["W100"]
    assert client.get(reverse("admin:corpus_work_change", args=["W100"])).status_code == 200
    assert (
        client.get(reverse("admin:corpus_creator_change", args=["anna_artist"])).status_code == 200
    )
    assert client.get(reverse("admin:corpus_topic_change", args=["T1"])).status_code == 200


def test_sentence_page_shows_paragraph_and_neighbours(admin_client_with_corpus):
    url = reverse("admin:corpus_sentence_change", args=["W100_s0002"])
    page = admin_client_with_corpus.get(url).content.decode()
    assert "Work 0 paragraph 1 sentence 1 discusses colour." in page  # neighbour before
    assert "Work 0 paragraph 1 sentence 3 discusses colour." in page  # neighbour after
    assert "<em>Paragraph:</em>" in page


def _searchable(work_id: str) -> set[bool]:
    return set(
        SentenceEmbedding.objects.filter(work_id=work_id).values_list("searchable", flat=True)
    )


def test_bulk_actions_publish_and_unpublish(admin_client_with_corpus):
    client = admin_client_with_corpus
    works = reverse("admin:corpus_work_changelist")
    response = client.post(
        works, {"action": "unpublish_works", "_selected_action": ["W100", "W101"]}, follow=True
    )
    assert response.status_code == 200
    assert "2 works unpublished." in response.content.decode()
    assert set(Work.objects.filter(published=False).values_list("id", flat=True)) == {
        "W100",
        "W101",
    }
    assert _searchable("W100") == {False}
    hits = selectors.search_sentences(np.ones(8), "clip", k=100)
    assert {h.work_id for h in hits} == {"W102", "W103", "W104", "W105"}

    client.post(works, {"action": "publish_works", "_selected_action": ["W100"]})
    assert _searchable("W100") == {True}

    sentences = reverse("admin:corpus_sentence_changelist")
    client.post(sentences, {"action": "unpublish_sentences", "_selected_action": ["W102_s0001"]})
    assert not Sentence.objects.get(id="W102_s0001").published
    assert SentenceEmbedding.objects.get(sentence_id="W102_s0001").searchable is False
    assert Work.objects.get(id="W102").published_sentence_count == 5
    client.post(sentences, {"action": "publish_sentences", "_selected_action": ["W102_s0001"]})
    assert SentenceEmbedding.objects.get(sentence_id="W102_s0001").searchable is True


def test_unticking_published_on_the_change_form_goes_through_the_service(
    admin_client_with_corpus,
):
    url = reverse("admin:corpus_work_change", args=["W103"])
    form = admin_client_with_corpus.get(url).context["adminform"].form
    data = {
        name: value
        for name, value in form.initial.items()
        if name not in {"published", "creators", "topics"} and value is not None
    }
    data |= {"title": "Edited title", "creators": ["anna_artist"], "topics": ["T2"]}
    data |= {
        "images-TOTAL_FORMS": "1",
        "images-INITIAL_FORMS": "1",
        "images-MIN_NUM_FORMS": "0",
        "images-MAX_NUM_FORMS": "1000",
        "images-0-id": str(Work.objects.get(id="W103").images.get().id),
        "images-0-work": "W103",
    }
    response = admin_client_with_corpus.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    work = Work.objects.get(id="W103")
    assert work.title == "Edited title"
    assert not work.published
    assert _searchable("W103") == {False}
