"""A real import process killed half-way (SIGKILL) and started again ends with the same rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from apps.corpus import services
from apps.corpus.models import Creator, Paragraph, Sentence, SentenceEmbedding, Topic, Work
from tests.corpus.conftest import REPO_ROOT, snapshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _database_url() -> str:
    """The test database, for a child process (which would otherwise use the dev one)."""
    db = connection.settings_dict
    host = quote(db["HOST"] or "", safe="")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


def _count(sql: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def _kill_when(root: Path, progress_sql: str, total: int) -> int:
    """Run import_corpus in a child; SIGKILL it once `progress_sql` is past 0 and below total."""
    child = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "import_corpus",
            "--source",
            str(root),
            "--no-progress",
            "--batch-size",
            "1",
            "--chunk-rows",
            "20",
        ],
        cwd=REPO_ROOT,
        env=os.environ | {"DATABASE_URL": _database_url()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            done = _count(progress_sql)
            if 0 < done < total:
                child.send_signal(signal.SIGKILL)
                child.wait()
                return done
            if child.poll() is not None:
                pytest.fail(f"the import ended before it could be killed: {child.stderr.read()}")
            time.sleep(0.005)
        pytest.fail("the import made no progress in time")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    raise AssertionError("unreachable")


def _empty_corpus() -> None:
    for model in (SentenceEmbedding, Sentence, Paragraph, Work, Creator, Topic):
        model.objects.all().delete()


def test_an_import_killed_twice_resumes_to_the_rows_of_a_clean_run(corpus_dir):
    root, _ = corpus_dir(works=150)
    works_total, vectors_total = 150, 900

    killed_at = _kill_when(
        root, "SELECT count(*) FROM corpus_work WHERE text_digest <> ''", works_total
    )
    # Each committed batch is one whole work: never a work with half its sentences.
    assert _count("SELECT count(*) FROM corpus_sentence") == 6 * _count(
        "SELECT count(*) FROM corpus_work WHERE text_digest <> ''"
    )
    assert killed_at < works_total

    _kill_when(root, "SELECT count(*) FROM corpus_sentenceembedding", vectors_total)
    assert _count("SELECT count(*) FROM corpus_sentenceembedding") < vectors_total

    summary = services.import_corpus([root])
    assert summary.embeddings == {"clip": vectors_total}
    resumed = snapshot()

    _empty_corpus()
    services.import_corpus([root])
    assert snapshot() == resumed
