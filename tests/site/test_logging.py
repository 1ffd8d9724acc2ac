"""Request ids (`apps.core.middleware.RequestContext`) and the two log formats
(`apps.core.logs`). That a job's worker logs carry them is tested with a real worker in
tests/analysis/test_operations.py."""

from __future__ import annotations

import json
import logging
import re
import sys

import pytest

from apps.core.logs import ContextFilter, JsonFormatter, PlainFormatter, bound_to_job, job_meta

pytestmark = pytest.mark.django_db

HEX_ID = re.compile(r"[0-9a-f]{32}")


def test_a_sane_request_id_is_kept_and_sent_back(client):
    response = client.get("/accounts/login/", HTTP_X_REQUEST_ID="edge-7f3a.42:retry")
    assert response["X-Request-ID"] == "edge-7f3a.42:retry"


@pytest.mark.parametrize(
    "incoming",
    [None, "", "two words", 'quote"d', "line\nbreak", "x" * 129, "-leading-dash", "é"],
)
def test_any_other_request_id_is_replaced_by_a_new_one(client, incoming):
    headers = {} if incoming is None else {"HTTP_X_REQUEST_ID": incoming}
    response = client.get("/accounts/login/", **headers)
    assert HEX_ID.fullmatch(response["X-Request-ID"])


def test_two_requests_without_an_id_get_different_ones(client):
    first = client.get("/accounts/login/")["X-Request-ID"]
    assert client.get("/accounts/login/")["X-Request-ID"] != first


def test_the_log_records_of_a_request_carry_its_id(client, caplog):
    caplog.handler.addFilter(ContextFilter())
    with caplog.at_level(logging.WARNING, logger="django.request"):
        client.get("/no-such-page", HTTP_X_REQUEST_ID="trace-me-1")
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.getMessage() == "Not Found: /no-such-page"
    assert record.request_id == "trace-me-1"

    caplog.clear()
    logging.getLogger("django.request").warning("outside any request")
    assert not hasattr(caplog.records[0], "request_id")


def test_a_job_enqueued_outside_a_request_carries_no_request_id():
    assert job_meta() == {}


def _record(message: str, **extra) -> logging.LogRecord:
    record = logging.LogRecord("apps.analysis", logging.INFO, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    ContextFilter().filter(record)
    return record


def test_json_lines_hold_the_ids_and_keep_a_traceback_in_one_line():
    formatter = JsonFormatter()
    with bound_to_job("job-1", {"request_id": "req-1"}):
        try:
            raise ValueError("bad pixels")
        except ValueError:
            record = _record("Analysis failed")
            record.exc_info = sys.exc_info()
    line = formatter.format(record)
    assert "\n" not in line
    fields = json.loads(line)
    assert fields["level"] == "INFO"
    assert fields["logger"] == "apps.analysis"
    assert fields["message"] == "Analysis failed"
    assert fields["request_id"] == "req-1"
    assert fields["job_id"] == "job-1"
    assert "ValueError: bad pixels" in fields["exc_info"]
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", fields["timestamp"])


def test_without_ids_a_json_line_has_no_id_fields_and_plain_lines_no_brackets():
    record = _record("Worker started")
    assert {"request_id", "job_id"}.isdisjoint(json.loads(JsonFormatter().format(record)))
    assert PlainFormatter("%(name)s: %(message)s").format(record) == "apps.analysis: Worker started"


def test_plain_lines_name_the_ids_after_the_message():
    with bound_to_job("job-2", {"request_id": "req-2"}):
        record = _record("Job ended")
    line = PlainFormatter("%(name)s: %(message)s").format(record)
    assert line == "apps.analysis: Job ended [request_id=req-2 job_id=job-2]"


def test_settings_choose_the_format(settings):
    from apps.core.logs import logging_config

    assert logging_config("json", "INFO")["handlers"]["console"]["formatter"] == "json"
    assert settings.LOGGING["handlers"]["console"]["filters"] == ["context"]
