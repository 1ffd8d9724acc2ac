"""Writes of the demo app: load the demo world into the database.

The demo corpus is generated from code (deterministic by seed) into a folder in the public
ArteFact layout and imported by the regular importer, so `load_demo` exercises exactly the
path a real corpus takes; it is then embedded with both model keys in one encoder pass.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import transaction

from apps import engine
from apps.corpus import services as corpus_services
from apps.corpus.models import Sentence, Work
from apps.demo.corpus import write_corpus
from apps.demo.gallery import write_gallery
from apps.demo.models import GalleryImage
from apps.engine.config import model_keys

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo"


def database_is_empty() -> bool:
    return not Work.objects.exists()


def demo_user_exists() -> bool:
    return get_user_model().objects.filter(username=DEMO_USERNAME).exists()


def ensure_demo_user() -> None:
    user, created = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])


def embed_all_sentences() -> None:
    """Embed every sentence lacking a vector, for every model key, through `embed_corpus`
    (which uses the engine's registry, configured from settings)."""
    call_command("embed_corpus", "--model", "all", "--no-progress")


def register_gallery(folder: Path) -> int:
    items = write_gallery(folder)
    with transaction.atomic():
        GalleryImage.objects.all().delete()
        for position, item in enumerate(items):
            gallery_image = GalleryImage(
                position=position,
                title=item.title,
                artist=item.artist,
                style="painterly" if item.painterly else "plain",
                truth=item.to_json(),
            )
            content = (folder / item.filename).read_bytes()
            gallery_image.image.save(item.filename, ContentFile(content), save=False)
            gallery_image.save()
    return len(items)


def load_demo(seed: int = 0) -> dict[str, float | int]:
    """Import and embed the demo corpus, create the demo user and the gallery.

    The models load first: if one cannot, nothing is imported (a corpus without vectors would
    stop the next `load_demo --if-empty` from ever embedding it).
    """
    started = time.perf_counter()
    registry = engine.get_registry()
    for key in model_keys():
        registry.get(key)
    with tempfile.TemporaryDirectory(prefix="artefact-demo-") as scratch:
        root = Path(scratch)
        counts = write_corpus(root / "corpus", seed=seed)
        corpus_services.import_corpus([root / "corpus"])
        imported = time.perf_counter()
        embed_all_sentences()
        gallery = register_gallery(root / "gallery")
    ensure_demo_user()
    return {
        "works": counts["works"],
        "sentences": Sentence.objects.count(),
        "gallery_images": gallery,
        "import_seconds": round(imported - started, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
