"""`manage.py load_demo`: the demo world through the regular importer and embedder."""

from __future__ import annotations

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.test import RequestFactory

from apps.analysis.models import ExampleImage
from apps.corpus.models import Sentence, SentenceEmbedding, Work

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_load_demo_imports_embeds_and_registers_the_gallery(models, media, capsys):
    call_command("load_demo", "--if-empty")

    sentences = Sentence.objects.count()
    assert 30 <= Work.objects.count() <= 60
    assert 3000 <= sentences <= 6000
    for key in ("clip", "paintingclip"):
        assert SentenceEmbedding.objects.filter(model=key).count() == sentences
    assert all("[Demo]" in title for title in Work.objects.values_list("title", flat=True))
    assert all(
        doi.startswith("10.5555") or "10.5555/" in doi
        for doi in Work.objects.values_list("doi", flat=True)
    )
    examples = ExampleImage.objects.all()
    assert examples.count() == 12
    assert all((media / example.thumbnail.name).is_file() for example in examples)
    log_in = RequestFactory().post("/accounts/login/")  # django-axes counts per request
    assert authenticate(log_in, username="demo", password="demo") is not None
    assert "Log in as demo / demo" in capsys.readouterr().out

    call_command("load_demo", "--if-empty")

    assert Sentence.objects.count() == sentences
    assert "was not loaded" in capsys.readouterr().out
