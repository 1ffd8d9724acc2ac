"""Starting the site does not import the ML stack: web processes and management commands that
never embed anything should not pay for torch, transformers and peft (seconds at start)."""

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
ML_MODULES = ("torch", "transformers", "peft", "torchao")

PROBE = f"""
import sys
import django
django.setup()
from django.core.management import call_command
call_command("check")  # resolves the whole URL configuration: every view, API and health check
import artefact_site.wsgi
print(sorted(name for name in {ML_MODULES!r} if name in sys.modules))
"""


def test_urls_views_and_checks_load_without_the_ml_stack():
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "artefact_site.settings_test"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


TORCH_FREE_PROBE = f"""
import io, sys
import numpy as np
from PIL import Image
from apps import engine
from apps.engine import config, images, overlay
buffer = io.BytesIO()
Image.new("RGB", (64, 48), (200, 10, 10)).save(buffer, format="PNG")
picture = engine.load_image(buffer.getvalue())
png = engine.render_overlay(picture, np.random.default_rng(0).random((7, 7)))
assert png.startswith(b"\\x89PNG")
assert engine.model_keys() == ["clip", "paintingclip"]
print(sorted(name for name in {ML_MODULES!r} if name in sys.modules))
"""


def test_image_loading_geometry_overlays_and_configuration_need_no_torch():
    result = subprocess.run(
        [sys.executable, "-c", TORCH_FREE_PROBE],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
