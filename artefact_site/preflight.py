"""Start-up checks that turn a misconfigured database into one clear sentence.

A PostgreSQL without pgvector otherwise surfaces as a traceback deep inside a migration; the
operator needs to know which extension is missing and how to get it.
"""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import OperationalError

MINIMUM_PGVECTOR = (0, 7)


class PreflightError(RuntimeError):
    """The database cannot serve ArteFact; the message says why and what to do."""


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def check_database(using: str = DEFAULT_DB_ALIAS) -> str:
    """Check that the database answers and offers pgvector ≥ 0.7; return the pgvector version."""
    connection = connections[using]
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
            )
            row = cursor.fetchone()
    except OperationalError as error:
        where = _where(connection)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else "no answer"
        raise PreflightError(
            f"The database at {where} cannot be reached ({reason}); check DATABASE_URL, or unset "
            "it to use the embedded PostgreSQL."
        ) from None
    if row is None:
        raise PreflightError(
            f"The PostgreSQL server at {_where(connection)} does not have the pgvector extension "
            "('vector'); install pgvector 0.7 or newer on that server "
            "(https://github.com/pgvector/pgvector#installation, e.g. the "
            "postgresql-17-pgvector package or the pgvector/pgvector Docker image), "
            "or unset DATABASE_URL to use the embedded PostgreSQL that ships with it."
        )
    version = row[0]
    where = _where(connection)
    if _version_tuple(version) < MINIMUM_PGVECTOR:
        raise PreflightError(
            f"The PostgreSQL server at {where} offers pgvector {version}, but ArteFact "
            "needs 0.7 or newer (halfvec and iterative index scans); upgrade the extension."
        )
    return version


def _where(connection: BaseDatabaseWrapper) -> str:
    settings = connection.settings_dict
    host = settings.get("HOST") or "local socket"
    port = settings.get("PORT") or "5432"
    return f"{host}:{port}/{settings.get('NAME')}"
