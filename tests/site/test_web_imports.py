"""Web processes never import the ML stack, whatever they serve: `make run`'s gunicorn workers
answer a text search, a cell click and a heat-map PNG with torch, transformers, peft and
torchao left to the model worker."""

from __future__ import annotations

import json

import pytest

from tests.analysis.conftest import painting_bytes
from tests.site.gunicorn_modules_probe import ML_MODULES
from tests.site.running_stack import StackClient

pytestmark = pytest.mark.slow


def test_web_workers_serve_search_cells_and_heatmaps_without_the_ml_stack(
    tmp_path,
    start_stack,
):
    probes = tmp_path / "probes"
    probes.mkdir()
    stack = start_stack(
        LOAD_DEMO="true",
        MODULES_PROBE_DIR=str(probes),
        GUNICORN_CMD_ARGS="--config python:tests.site.gunicorn_modules_probe",
    )
    stack.wait_healthy()
    api = StackClient(stack.port, stack.manage("create_api_token", "demo").split()[-1])

    status, hits = api.json("GET", "/api/v1/search?q=a+red+boat+on+the+sea&model=clip&k=5")
    assert status == 200
    assert len(hits) == 5
    analysis = api.upload(painting_bytes(320, 240))
    done = api.wait(
        f"/api/v1/analyses/{analysis['id']}", lambda status, body: body["status"] == "done"
    )
    status, cell = api.json("GET", f"/api/v1/analyses/{analysis['id']}/cells/3/3?k=4")
    assert (status, len(cell)) == (200, 4)
    sentence = done["results"][0]["sentence_id"]
    status, _ = api.json(
        "POST", f"/api/v1/analyses/{analysis['id']}/heatmaps", {"sentence_ids": [sentence]}
    )
    assert status == 202
    heatmap = f"/api/v1/analyses/{analysis['id']}/heatmaps/{sentence}.json"
    api.wait(heatmap, lambda status, body: status == 200)
    status, headers, png = api.request("GET", heatmap.removesuffix(".json") + ".png")
    assert (status, headers["Content-Type"]) == (200, "image/png")
    assert png.startswith(b"\x89PNG")

    reports = [json.loads(path.read_text()) for path in probes.glob("*.json")]
    assert sum(report["requests"] for report in reports) >= 8
    assert [report["ml_modules"] for report in reports] == [[] for _ in reports], ML_MODULES
