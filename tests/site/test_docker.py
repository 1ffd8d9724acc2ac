"""The Docker files describe the stack the design card names."""

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from apps.engine.config import specs_from_env

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
    assert "model_worker" in services["worker"]["command"]
    # A stopped worker may finish its job (ANALYSIS_JOB_TIMEOUT, 300 s) before Docker kills it.
    assert services["worker"]["stop_grace_period"] == "5m"
    assert set(compose()["volumes"]) >= {"pgdata", "redisdata", "media"}


class RecordingEnvironment(dict):
    """An empty environment that notes every variable asked of it."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, name: str, default: str | None = None) -> str | None:
        self.asked.add(name)
        return default

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("specs_from_env should ask for its variables by name")


def test_compose_passes_every_model_setting_through_unset_when_the_shell_has_none():
    environment = RecordingEnvironment()
    specs_from_env(environment)
    app_environment = compose()["x-app"]["environment"]

    assert {"MODEL_DTYPE", "PAINTINGCLIP_ADAPTER"} <= environment.asked
    for name in sorted(environment.asked):
        # A key with no value: the shell's value, or none at all. `${NAME:-}` would set an
        # empty string, and an empty adapter setting means "no adapter".
        assert name in app_environment, name
        assert app_environment[name] is None, name


def test_dockerfile_takes_the_base_image_as_a_build_argument():
    dockerfile = (DOCKER_DIR / "Dockerfile").read_text()

    assert "ARG BASE_IMAGE=" in dockerfile
    assert "FROM ${BASE_IMAGE}" in dockerfile


def test_image_has_the_cpp_compiler_that_int8_compiles_with():
    dockerfile = (DOCKER_DIR / "Dockerfile").read_text()

    assert "apt-get install -y --no-install-recommends g++" in dockerfile


def test_the_image_build_writes_no_signing_key_into_the_image():
    """Without SECRET_KEY the settings make one under DATA_ROOT; run at build time, that key
    would ship inside the image to everyone who pulls it."""
    dockerfile = (DOCKER_DIR / "Dockerfile").read_text()
    build_step = dockerfile[dockerfile.index("RUN useradd") :].split("\nUSER")[0]

    assert "SECRET_KEY=unused-at-build" in build_step
    assert "test ! -e /data/secret_key" in build_step


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
