"""The database connection lost under a running site: the server ends it (as a restart, a
failover or an idle-connection reaper does), and the worker and the services carry on.

`pg_terminate_backend` ends a connection from the server's side exactly as a shutdown does,
without stopping the test suite's shared server; `tests/site/test_faults.py` restarts a whole
server under a running stack."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import OperationalError, connection

from apps.analysis import services
from apps.analysis.models import Analysis
from apps.core.db import retry_on_lost_connection
from tests.analysis.conftest import upload

pytestmark = pytest.mark.django_db(transaction=True)


def end_connections(*, keep_own: bool) -> int:
    """End the test database's connections from the server's side; how many were ended."""
    settings = connection.settings_dict
    own = None
    if keep_own:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            own = cursor.fetchone()[0]
    with psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        dbname="postgres",
        autocommit=True,
    ) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid() AND pid IS DISTINCT FROM %s",
            (settings["NAME"], own),
        ).fetchall()
    return len(rows)


def wait_for_status(analysis_id: str, timeout: float = 120) -> Analysis:
    deadline = time.monotonic() + timeout
    while True:
        analysis = Analysis.objects.get(pk=analysis_id)
        if analysis.status in (Analysis.Status.DONE, Analysis.Status.FAILED):
            return analysis
        assert time.monotonic() < deadline, f"analysis still {analysis.status}"
        time.sleep(0.2)


def test_a_write_on_a_connection_the_server_ended_is_made_on_a_new_one(api, models, media):
    analysis_id = upload(api).json()["id"]
    assert end_connections(keep_own=False) >= 1

    services.mark_analysis_failed(analysis_id, "The worker's note.")

    analysis = Analysis.objects.get(pk=analysis_id)
    assert (analysis.status, analysis.error) == (Analysis.Status.FAILED, "The worker's note.")


def test_a_query_that_fails_on_a_working_connection_is_not_repeated():
    """A statement timeout is an OperationalError too, but the connection still works: it is
    the query that failed, and repeating it would only fail again, slower."""
    calls = []

    @retry_on_lost_connection
    def slow_query() -> None:
        calls.append(1)
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 10")
            try:
                cursor.execute("SELECT pg_sleep(1)")
            finally:
                cursor.execute("SET statement_timeout = 0")

    with pytest.raises(OperationalError, match="statement timeout"):
        slow_query()
    assert calls == [1]


def test_a_worker_whose_connection_the_server_ended_runs_its_next_job(api, models, corpus, workers):
    """The worker keeps its connection between jobs; without a check before each job the
    next one failed on the dead connection, and so did the callback meant to record that,
    leaving the analysis queued for ever."""
    workers.start()
    first = wait_for_status(upload(api).json()["id"])
    assert first.status == Analysis.Status.DONE, first.error

    assert end_connections(keep_own=True) >= 1

    second = wait_for_status(upload(api).json()["id"])
    assert second.status == Analysis.Status.DONE, second.error
    assert second.results.exists()
