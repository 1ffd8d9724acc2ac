"""Test-session set-up: the embedded servers run for as long as the suite does."""

import pytest

from artefact_site.embedded import EmbeddedServices

_services = EmbeddedServices()


def pytest_configure(config: pytest.Config) -> None:
    # Workers of pytest-xdist share the controller's servers: one lease per process is fine.
    _services.acquire()


def pytest_unconfigure(config: pytest.Config) -> None:
    _services.release()
