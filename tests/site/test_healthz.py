"""/healthz against the real database, the real Redis and a real RQ worker process, as staff
see it (anonymous callers get only `{"ok": …}`: tests/site/test_hardening.py)."""

import time

import pytest

from apps.analysis.worker import MODELS_KEY, STARTING_KEY_PREFIX, STARTING_TTL_SECONDS


@pytest.fixture
def rq_worker(workers, redis_connection):
    """A real ArteFact worker process (tiny models, preloaded), registered in the test Redis."""
    workers.env["ANALYSIS_PRELOAD_MODELS"] = "true"
    process = workers.start()
    deadline = time.monotonic() + 120
    while not redis_connection.hlen(MODELS_KEY):
        assert process.poll() is None, "the worker exited before publishing its models"
        assert time.monotonic() < deadline, "the worker did not load its models within 120 s"
        time.sleep(0.2)
    return process


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_healthz_reports_database_pgvector_redis_and_worker(admin_client, rq_worker):
    response = admin_client.get("/healthz")

    body = response.json()
    assert response.status_code == 200, body
    assert body["ok"] is True
    assert body["database"]["ok"] is True
    major, minor = (int(part) for part in body["database"]["pgvector"].split(".")[:2])
    assert (major, minor) >= (0, 8)
    assert body["redis"]["ok"] is True
    assert body["workers"] == {"ok": True, "count": 1}
    assert "gpu" in body["redis"]["queues"]
    assert body["models"]["ok"] is True
    assert body["models"]["keys"]["paintingclip"]["adapter_state"] == "loaded"
    assert body["models"]["keys"]["clip"]["adapter_state"] == "none"
    clip = body["models"]["keys"]["clip"]
    assert (clip["text_encoder"], clip["vision_encoder"]) == ("float32", "float32")


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_model_list_says_what_the_workers_loaded(client, rq_worker, django_user_model):
    client.force_login(django_user_model.objects.create_user("reader"))

    response = client.get("/api/v1/models")

    assert response.status_code == 200
    models = {model["key"]: model for model in response.json()}
    assert set(models) == {"clip", "paintingclip"}
    assert models["paintingclip"]["loaded_by_workers"] == 1
    assert models["paintingclip"]["adapter_state"] == "loaded"
    assert models["clip"]["adapter_state"] == "none"
    clip = models["clip"]
    assert (clip["dtype"], clip["text_encoder"], clip["vision_encoder"]) == ("float32",) * 3
    assert models["clip"]["errors"] == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_healthz_names_a_model_that_failed_to_load(
    admin_client, workers, redis_connection, tmp_path
):
    workers.env |= {"ANALYSIS_PRELOAD_MODELS": "true", "CLIP_BASE_MODEL": str(tmp_path / "none")}
    workers.start()
    deadline = time.monotonic() + 120
    while not redis_connection.hlen(MODELS_KEY):
        assert time.monotonic() < deadline, "the worker did not report its models within 120 s"
        time.sleep(0.2)

    response = admin_client.get("/healthz")

    body = response.json()
    assert response.status_code == 503
    assert body["failing"] == ["models"]
    assert body["models"]["error"] == "not loaded: clip"
    assert "CLIP_BASE_MODEL" in body["models"]["keys"]["clip"]["error"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_healthz_says_a_worker_is_starting_until_it_takes_jobs(
    admin_client, workers, redis_connection
):
    """An int8 worker compiles torchao's encoders before RQ registers it: /healthz says so."""
    workers.env |= {
        "ANALYSIS_PRELOAD_MODELS": "true",
        "MODEL_DTYPE": "int8",
        "MODEL_INT8_KERNELS": "torchao",
    }
    process = workers.start()
    seen_errors, announcement_ttls = set(), set()
    deadline = time.monotonic() + 240
    while (body := admin_client.get("/healthz").json())["ok"] is False:
        assert process.poll() is None, "the worker exited while starting"
        assert time.monotonic() < deadline, f"the worker never became ready: {body}"
        if body["workers"].get("starting"):
            seen_errors.add(body["workers"]["error"])
            announcement_ttls |= {
                redis_connection.ttl(key)
                for key in redis_connection.scan_iter(match=STARTING_KEY_PREFIX + "*")
            }
        time.sleep(0.05)

    stages = {error.split("starting (")[1].split(",")[0] for error in seen_errors}
    assert "warming up its models and compiling its int8 encoders" in stages, seen_errors
    assert all(
        error.startswith("no RQ worker serves 'gpu' yet; 1 worker is") for error in seen_errors
    )
    assert all(0 < ttl <= STARTING_TTL_SECONDS for ttl in announcement_ttls - {-2})
    assert "starting" not in body["workers"]
    assert not list(redis_connection.scan_iter(match=STARTING_KEY_PREFIX + "*"))


@pytest.mark.django_db
def test_healthz_is_503_without_a_worker(admin_client, redis_connection):
    response = admin_client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["failing"] == ["workers", "models"]


@pytest.mark.django_db
def test_healthz_is_503_and_names_redis_when_redis_is_down(admin_client, settings, tmp_path):
    dead = f"unix://{tmp_path / 'no-redis.sock'}?db=0"
    settings.RQ_QUEUES = {name: {"URL": dead} for name in settings.RQ_QUEUES}

    response = admin_client.get("/healthz")

    body = response.json()
    assert response.status_code == 503
    assert body["failing"] == ["redis", "workers", "models"]
    assert body["database"]["ok"] is True
    assert body["redis"]["error"]
