"""`make run`'s supervisor: serves, and leaves nothing behind however it is stopped."""

import re
import signal
import urllib.request

import pytest

from tests.site.running_stack import processes_using, wait_until

pytestmark = pytest.mark.slow


def test_stack_serves_and_stops_everything_when_the_web_process_is_killed(tmp_path, start_stack):
    stack = start_stack(WEB_CONCURRENCY="2", METRICS_TOKEN="scraper-secret")
    # 200 only with the database, Redis, a worker and its models all up; an anonymous caller
    # learns no more than that.
    assert stack.wait_healthy() == {"ok": True}
    for _ in range(30):
        with urllib.request.urlopen(f"http://127.0.0.1:{stack.port}/", timeout=10) as home:
            assert home.status == 200
    # /metrics adds up what both gunicorn workers served (prometheus-client's multiprocess
    # mode, set up by gunicorn.conf.py), whichever of them answers the scrape.
    scrape = urllib.request.Request(
        f"http://127.0.0.1:{stack.port}/metrics",
        headers={"Authorization": "Bearer scraper-secret"},
    )
    with urllib.request.urlopen(scrape, timeout=10) as metrics:
        text = metrics.read().decode()
    served = re.search(
        r'^artefact_http_request_duration_seconds_count\{method="GET",route="home",status="200"\} '
        r"(\S+)$",
        text,
        re.MULTILINE,
    )
    assert served is not None, text[:2000]
    assert float(served[1]) == 30

    stack.child("gunicorn").kill()

    assert stack.process.wait(timeout=60) == 0
    wait_until(lambda: not processes_using(tmp_path), 30, "every process of the stack to exit")


def test_a_stack_killed_outright_leaves_nothing_and_the_next_run_reuses_the_data(
    tmp_path, start_stack
):
    first = start_stack()
    first.wait_healthy()
    first.process.send_signal(signal.SIGKILL)
    first.process.wait()

    wait_until(lambda: not processes_using(tmp_path), 60, "the watchdog to stop the servers")

    second = start_stack()
    second.wait_healthy()
    second.process.send_signal(signal.SIGINT)

    assert second.process.wait(timeout=60) == 0
    output = second.process.stdout.read()
    assert "Stopped." in output
    assert "ArteFact is running at" in output
    assert "demo login" not in output, "no demo world was loaded, so there is no demo login"
    wait_until(lambda: not processes_using(tmp_path), 30, "every process of the stack to exit")
