"""Fixtures shared by the whole suite."""

import django_rq
import pytest


@pytest.fixture
def redis_connection():
    """The test Redis database, emptied before and after the test."""
    connection = django_rq.get_connection("default")
    connection.flushdb()
    yield connection
    connection.flushdb()
