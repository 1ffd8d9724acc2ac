"""A database without pgvector is refused with one sentence, before anything is written."""

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
# The python-svc machine runs a PostgreSQL 15 without pgvector here.
PLAIN_POSTGRES = "postgres://postgres@127.0.0.1:5432/test"


def plain_postgres_or_skip() -> psycopg.Connection:
    try:
        connection = psycopg.connect(PLAIN_POSTGRES, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError:
        pytest.skip(f"no PostgreSQL at {PLAIN_POSTGRES}")
    available = connection.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
    ).fetchone()
    if available:
        connection.close()
        pytest.skip(f"the PostgreSQL at {PLAIN_POSTGRES} has pgvector")
    return connection


def tables(connection: psycopg.Connection) -> set[str]:
    rows = connection.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    ).fetchall()
    return {row[0] for row in rows}


def test_migrate_refuses_a_postgres_without_pgvector_in_one_sentence():
    connection = plain_postgres_or_skip()
    before = tables(connection)

    result = subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "migrate", "--noinput"],
        cwd=BASE_DIR,
        env={**os.environ, "DATABASE_URL": PLAIN_POSTGRES},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "does not have the pgvector extension ('vector')" in result.stderr
    assert "install pgvector 0.7 or newer" in result.stderr
    assert tables(connection) == before
    connection.close()


def test_an_unreachable_database_is_named_in_one_sentence():
    result = subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "migrate", "--noinput"],
        cwd=BASE_DIR,
        env={**os.environ, "DATABASE_URL": "postgres://postgres@127.0.0.1:1/none"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "cannot be reached" in result.stderr
