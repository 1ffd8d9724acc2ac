"""Database writes that outlive a lost connection.

A web request starts with a checked connection (``CONN_HEALTH_CHECKS``), but a model worker
holds one connection for hours: a PostgreSQL restart, a failover or an idle-connection reaper
in between leaves it dead, and without help the next query of the next job fails, and so does
the failure callback meant to record that failure, leaving the analysis queued forever. Jobs
therefore start from a connection Django has checked (the model worker closes old connections
around each job, as Django does around each request), and retry their
writes (`retry_on_lost_connection`) while the server comes back, which costs seconds instead of
the minutes of model work a failed job would throw away.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable

from django.db import InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)

RETRY_WAITS = (0.5, 1, 2, 4, 8)
"""Seconds to wait before each new attempt: about a quarter of a minute in all, what a
restart of PostgreSQL takes."""


def _lost(error: Exception) -> bool:
    """Whether `error` means the connection is gone, rather than a bad query: psycopg raises
    OperationalError for both, but only a lost connection leaves it closed."""
    if isinstance(error, InterfaceError):
        return True
    return connection.connection is None or connection.connection.closed


def retry_on_lost_connection[**P, R](function: Callable[P, R]) -> Callable[P, R]:
    """Run `function` again, on a new connection, while the database connection is lost.

    Only for a unit that is safe to repeat: a single write or one whole transaction (nothing
    of an interrupted transaction was committed). Inside an outer transaction a retry could not
    bring the transaction's earlier work back, so there the error is raised at once.
    """

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        for wait in (*RETRY_WAITS, None):
            try:
                return function(*args, **kwargs)
            except (OperationalError, InterfaceError) as error:
                if wait is None or connection.in_atomic_block or not _lost(error):
                    raise
                logger.warning(
                    "The database connection was lost (%s); trying %s again in %s s.",
                    type(error).__name__,
                    function.__qualname__,
                    wait,
                )
                connection.close()
                time.sleep(wait)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    return wrapper
