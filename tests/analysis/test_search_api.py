"""`GET /api/v1/search`: sentences nearest to a text under a model's text tower, the text
embedded by a real model worker process (the web process never loads a model)."""

from __future__ import annotations

import pytest

from apps.corpus.models import Sentence, Work

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def worker(workers):
    """One model worker listening on the priority queue for the whole test."""
    workers.start_listening()
    return workers


def search(api, **params):
    return api.get("/api/v1/search", params)


def test_a_sentence_s_own_text_finds_it_at_the_top(api, corpus, worker):
    sentence = Sentence.objects.get(id=corpus[7])

    response = search(api, q=sentence.text, model="clip", k=10)

    assert response.status_code == 200, response.json()
    hits = response.json()
    assert len(hits) == 10
    assert [hit["score"] for hit in hits] == sorted((hit["score"] for hit in hits), reverse=True)
    # The test corpus's sentences differ by a digit or two, which the tiny model may not
    # tell apart: the sentence is among those tied at the top, at the cosine of itself.
    own = next(hit for hit in hits if hit["sentence_id"] == sentence.id)
    assert own["score"] > 0.99
    assert own["score"] >= hits[0]["score"] - 1e-3
    assert own["work"]["id"] == sentence.work_id
    assert own["text"] == sentence.text


def test_filters_restrict_the_hits_to_matching_works(api, corpus, worker):
    in_t1 = set(Work.objects.filter(topics__id="T1").values_list("id", flat=True))
    text = Sentence.objects.exclude(work_id__in=in_t1).first().text

    hits = search(api, q=text, model="paintingclip", topics="T1").json()

    assert hits
    assert {hit["work"]["id"] for hit in hits} <= in_t1


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"q": "   "}, "empty_query"),
        ({"q": "a harbour", "model": "nope"}, "unknown_model"),
        ({"q": "a harbour", "topics": "T404"}, "unknown_topic"),
    ],
)
def test_bad_queries_are_refused_with_a_sentence(api, corpus, params, code):
    response = search(api, **params)

    assert response.status_code == 400
    assert response.json()["error"] == code
    assert response.json()["detail"].endswith(".")


def test_a_model_that_cannot_load_answers_503(api, corpus, tiny_models, workers):
    workers.env["CLIP_BASE_MODEL"] = "/nowhere/clip"
    workers.start_listening()

    response = search(api, q="a harbour", model="clip")

    assert response.status_code == 503
    assert response.json()["error"] == "model_unavailable"
    detail = response.json()["detail"]
    # It names the setting to fix, and no folder of the server.
    assert "CLIP_BASE_MODEL" in detail
    assert "/nowhere" not in detail


def test_no_worker_answers_503_at_once(api, corpus, redis_connection):
    response = search(api, q="a harbour", model="clip")

    assert response.status_code == 503
    assert response.json()["error"] == "model_unavailable"
    assert "No model worker" in response.json()["detail"]


def test_a_busy_worker_answers_503_busy_after_the_timeout(api, corpus, worker, settings):
    """A worker held by a long job cannot take the query: the request gives up after the
    timeout with `busy` instead of hanging, and its job expires unstarted."""
    import django_rq

    settings.ANALYSIS_TEXT_QUERY_TIMEOUT = 1
    queue = django_rq.get_queue(settings.RQ_PRIORITY_QUEUE, commit_mode="auto")
    queue.enqueue("time.sleep", 8)  # now, not when the test transaction commits (never)

    response = search(api, q="a harbour", model="clip")

    assert response.status_code == 503
    assert response.json()["error"] == "busy"
    assert "within 1 s" in response.json()["detail"]


def test_the_same_query_is_embedded_once(api, corpus, worker, settings):
    first = search(api, q="a harbour at dusk", model="clip")
    worker.stop()  # killed: nothing embeds now, so only the cache can answer
    settings.ANALYSIS_TEXT_QUERY_TIMEOUT = 1

    again = search(api, q="a harbour at dusk", model="clip")
    other = search(api, q="a harbour at dawn", model="clip")

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert other.status_code == 503
