"""Where e-mail goes: the console by default, an SMTP server named by the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
DESCRIBE_MAILER = """
import json, django
django.setup()
from django.conf import settings
from django.core import mail
mailer = mail.mailers.default
print(json.dumps({
    "backend": type(mailer).__module__,
    "from": settings.DEFAULT_FROM_EMAIL,
    **{name: getattr(mailer, name, None)
       for name in ("host", "port", "username", "password", "use_tls")},
}))
"""


def mailer_with(**env: str) -> dict:
    """The default mailer as the real settings build it in a fresh process with ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("EMAIL_", "DEFAULT_FROM"))}
    result = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", DESCRIBE_MAILER],
        cwd=BASE_DIR,
        env=clean | {"DJANGO_SETTINGS_MODULE": "artefact_site.settings"} | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout)


def test_without_an_smtp_host_mail_is_printed_on_the_console():
    assert mailer_with()["backend"] == "django.core.mail.backends.console"


def test_the_environment_names_the_smtp_server_and_its_login():
    mailer = mailer_with(
        EMAIL_HOST="smtp.example.org",
        EMAIL_PORT="2525",
        EMAIL_HOST_USER="artefact",
        EMAIL_HOST_PASSWORD="s3cret",
        EMAIL_USE_TLS="false",
        DEFAULT_FROM_EMAIL="ArteFact <artefact@example.org>",
    )

    assert mailer == {
        "backend": "django.core.mail.backends.smtp",
        "from": "ArteFact <artefact@example.org>",
        "host": "smtp.example.org",
        "port": 2525,
        "username": "artefact",
        "password": "s3cret",
        "use_tls": False,
    }
