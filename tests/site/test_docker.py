"""The Docker files describe the stack the design card names."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DOCKER_DIR = Path(__file__).resolve().parents[2] / "docker"


def compose() -> dict:
    return yaml.safe_load((DOCKER_DIR / "compose.yaml").read_text())


def test_compose_runs_pgvector_redis_web_and_worker_with_healthchecks():
    services = compose()["services"]

    assert services["db"]["image"] == "pgvector/pgvector:pg17"
    assert services["redis"]["image"].startswith("redis:")
    for name in ("db", "redis", "web"):
        assert "healthcheck" in services[name], name
    assert services["web"]["build"]["dockerfile"] == "docker/Dockerfile"
    assert services["worker"]["image"] == services["web"]["image"]
    assert "rqworker" in services["worker"]["command"]
    assert set(compose()["volumes"]) >= {"pgdata", "redisdata", "media"}


def test_dockerfile_takes_the_base_image_as_a_build_argument():
    dockerfile = (DOCKER_DIR / "Dockerfile").read_text()

    assert "ARG BASE_IMAGE=" in dockerfile
    assert "FROM ${BASE_IMAGE}" in dockerfile


def test_docker_compose_config_accepts_the_file():
    if shutil.which("docker") is None:
        pytest.skip("no docker client on this machine")
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("the docker client has no compose plugin here")

    result = subprocess.run(
        ["docker", "compose", "-f", str(DOCKER_DIR / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={"SECRET_KEY": "test", "PATH": "/usr/bin:/bin"},
    )

    assert result.returncode == 0, result.stderr
