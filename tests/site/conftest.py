"""Fixtures of the site's tests: whole stacks started in child processes."""

import contextlib
import signal
import subprocess

import psutil
import pytest

from tests.site.running_stack import RunningStack, processes_using


@pytest.fixture
def start_stack(tmp_path, tiny_models):
    """Starts stacks on tmp_path; whatever a failing test leaves running is stopped after it."""
    started: list[RunningStack] = []

    def start(**extra_env: str) -> RunningStack:
        stack = RunningStack(tmp_path, tiny_models.settings, extra_env)
        started.append(stack)
        return stack

    yield start
    for stack in started:
        if stack.process.poll() is None:
            stack.process.send_signal(signal.SIGINT)
            try:
                stack.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stack.process.kill()
                stack.process.wait()
    for process in processes_using(tmp_path):
        with contextlib.suppress(psutil.Error):
            process.kill()
