"""`GET /metrics`: who may read it, and that its numbers move. Job durations and search
latency, which need a worker and a corpus, are tested in tests/analysis/test_operations.py."""

from __future__ import annotations

import django_rq
import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import token_client

pytestmark = pytest.mark.django_db

TOKEN = "scrape-me-0123456789abcdef"


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of an exposition, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: dict, name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def scrape(client, settings):
    settings.METRICS_TOKEN = TOKEN

    def scrape() -> dict:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain")
        return samples(response.content.decode())

    return scrape


def test_anyone_but_staff_or_the_scraper_gets_the_sites_404(client, django_user_model, settings):
    settings.METRICS_TOKEN = TOKEN
    researcher = django_user_model.objects.create_user("researcher", password="x-long-pass-1")
    refused = [
        client.get("/metrics"),
        client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token"),
        client.get("/metrics", HTTP_AUTHORIZATION=f"Token {TOKEN}"),
        token_client(researcher).get("/metrics"),
    ]
    client.force_login(researcher)
    refused.append(client.get("/metrics"))
    for response in refused:
        assert response.status_code == 404
        assert b"artefact_" not in response.content


def test_no_token_setting_lets_no_bearer_in(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_staff_read_it_by_session_or_api_token(client, django_user_model):
    curator = django_user_model.objects.create_user("curator", is_staff=True)
    assert token_client(curator).get("/metrics").status_code == 200
    client.force_login(curator)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"artefact_redis_up 1.0" in response.content


def test_requests_are_counted_by_url_name_method_and_status(client, scrape):
    name = "artefact_http_request_duration_seconds_count"
    before = scrape()
    for _ in range(3):
        assert client.get("/accounts/login/").status_code == 200
    client.get("/works/W-none/")  # a resolved URL: counted under its name, not its path
    client.get("/no-such-page")
    client.generic("BREW", "/accounts/login/")
    after = scrape()

    def moved(**labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved(route="accounts:login", method="GET", status="200") == 3
    assert moved(route="corpus:work", method="GET", status="302") == 1
    assert moved(route="<unresolved>", method="GET", status="404") == 1
    assert moved(route="accounts:login", method="other", status="405") == 1
    assert (
        value(
            after,
            "artefact_http_request_duration_seconds_sum",
            route="accounts:login",
            method="GET",
            status="200",
        )
        > 0
    )


def test_queue_depths_are_read_from_redis(scrape, redis_connection):
    queue = django_rq.get_queue(settings.RQ_GPU_QUEUE, commit_mode="auto")
    for _ in range(2):
        queue.enqueue("builtins.print")
    scraped = scrape()
    assert value(scraped, "artefact_rq_jobs", queue=settings.RQ_GPU_QUEUE, state="queued") == 2
    assert value(scraped, "artefact_rq_jobs", queue="default", state="queued") == 0
    assert value(scraped, "artefact_rq_workers", queue=settings.RQ_GPU_QUEUE) == 0
