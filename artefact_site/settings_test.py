"""Settings for the test suite: the same services as development, kept apart from its data.

Tests run against the real PostgreSQL (pytest-django creates ``test_artefact`` on it) and the
real Redis, in a database index of its own so that a running ``make run`` keeps its queues.
"""

from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from artefact_site.settings import *  # noqa: F403
from artefact_site.settings import CACHES, DATA_ROOT, REDIS_URL, RQ_QUEUES

TEST_REDIS_DB = 15


def with_redis_db(url: str, db: int) -> str:
    """The same Redis server with another logical database, for any URL form redis-py takes."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = parse_qs(parts.query)
        query["db"] = [str(db)]
        return f"unix://{parts.path}?{urlencode(query, doseq=True)}"
    return urlunsplit(parts._replace(path=f"/{db}"))


REDIS_URL = with_redis_db(REDIS_URL, TEST_REDIS_DB)
RQ_QUEUES = {name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 120} for name in RQ_QUEUES}
CACHES = {"default": CACHES["default"] | {"LOCATION": REDIS_URL}}
MEDIA_ROOT = DATA_ROOT / "test-media"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = STORAGES | {  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
}
# The suite signs up, logs in and uploads from one address and a few accounts far more often
# than a person would; the tests of the limits (tests/accounts/test_throttling.py,
# tests/analysis/test_quotas.py) set them low themselves.
RATE_LIMITS = dict.fromkeys(RATE_LIMITS, "10000/h")  # noqa: F405
ANALYSIS_UPLOADS_PER_HOUR = 10_000
ANALYSIS_MAX_ACTIVE_JOBS = 10_000
