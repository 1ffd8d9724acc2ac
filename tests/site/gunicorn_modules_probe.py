"""A gunicorn configuration for tests: after every request, each web worker writes which of
the ML libraries it has imported to `$MODULES_PROBE_DIR/<pid>.json`.

Passed to `make run`'s gunicorn through `GUNICORN_CMD_ARGS="--config python:…"`, so the stack
under test is exactly the one `make run` starts.
"""

import json
import os
import sys

ML_MODULES = ("torch", "transformers", "peft", "torchao")


def post_request(worker, req, environ, resp) -> None:
    report = {
        "requests": worker.nr,
        "ml_modules": sorted(name for name in ML_MODULES if name in sys.modules),
    }
    path = os.path.join(os.environ["MODULES_PROBE_DIR"], f"{os.getpid()}.json")
    with open(path + ".tmp", "w") as file:
        json.dump(report, file)
    os.replace(path + ".tmp", path)
