"""Production settings: `check --deploy` passes with HTTPS behind a proxy, and without
SECRET_KEY the signing key is a random one kept under DATA_ROOT, never one in the source."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BASE_DIR, database_url_for_workers

pytestmark = pytest.mark.django_db


def manage(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """`manage.py` in a process of its own with production-like settings (DEBUG off, no
    SECRET_KEY unless given) against the test database and Redis."""
    from django.conf import settings

    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE")
    }
    environment |= {
        "DJANGO_SETTINGS_MODULE": "artefact_site.settings",
        "DEBUG": "false",
        "DATA_ROOT": str(tmp_path),
        "DATABASE_URL": database_url_for_workers(),
        "REDIS_URL": settings.REDIS_URL,
        "ALLOWED_HOSTS": "artefact.example.org",
        **env,
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_production_settings_pass_check_deploy(tmp_path):
    done = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        tmp_path=tmp_path,
        ARTEFACT_HTTPS="true",
        ARTEFACT_PROXY_COUNT="1",
        EMAIL_HOST="smtp.example.org",  # password-reset mail: the console backend is refused
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (1 silenced)." in done.stdout


@pytest.mark.slow
def test_check_deploy_names_what_plain_http_settings_lack(tmp_path):
    done = manage("check", "--deploy", "--fail-level", "WARNING", tmp_path=tmp_path)

    assert done.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in done.stderr


OLD_DEVELOPMENT_KEY = "artefact-insecure-development-key-set-SECRET_KEY-in-production"
PRINT_KEY = "from django.conf import settings; print(settings.SECRET_KEY)"


def key_of(done: subprocess.CompletedProcess) -> str:
    """The key printed last by `manage.py shell -c PRINT_KEY` (the shell says more first)."""
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


@pytest.mark.slow
def test_without_secret_key_a_random_key_is_made_once_and_kept_private(tmp_path):
    key = key_of(manage("shell", "-c", PRINT_KEY, tmp_path=tmp_path))

    assert key != OLD_DEVELOPMENT_KEY
    assert len(key) >= 50
    key_file = tmp_path / "secret_key"
    assert key_file.read_text() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_of(manage("shell", "-c", PRINT_KEY, tmp_path=tmp_path)) == key
    assert key_of(manage("shell", "-c", PRINT_KEY, tmp_path=tmp_path / "elsewhere")) != key
    given = manage("shell", "-c", PRINT_KEY, tmp_path=tmp_path, SECRET_KEY="k" * 60)
    assert key_of(given) == "k" * 60


def test_a_key_file_without_a_usable_key_is_refused_with_a_sentence(tmp_path):
    from django.core.exceptions import ImproperlyConfigured

    from artefact_site.secret_key import load_or_create_secret_key

    (tmp_path / "secret_key").write_text("short")
    with pytest.raises(ImproperlyConfigured, match="delete it to have one generated"):
        load_or_create_secret_key(tmp_path)
