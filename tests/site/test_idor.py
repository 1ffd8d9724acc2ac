"""Another researcher's ids, in every address of the site that takes an id: each answers as an
id of nothing would (404, or 405 for a method the address does not take) and changes nothing.

The routes come from the URL configuration itself, so an address added later is tried too;
every id slot is filled with each of the owner's ids of that converter's kind (an analysis, a
saved analysis, a collection, a share link; a pin, a collection entry, an API token)."""

from __future__ import annotations

import itertools
import re

import pytest
from django.test import Client

from apps.accounts.models import ApiToken
from apps.accounts.services import create_api_token
from apps.analysis.models import Analysis
from apps.library import services as library
from apps.library.models import (
    Collection,
    CollectionEntry,
    PinnedSentence,
    SavedAnalysis,
    ShareLink,
)
from tests.conftest import token_client
from tests.corpus.conftest import corpus_dir, imported_corpus, sample  # noqa: F401
from tests.library.conftest import make_analysis, sentence_ids  # noqa: F401
from tests.site.test_hostile_input import CONVERTER, routes

pytestmark = pytest.mark.django_db

NOT_PRIVATE = (
    "admin/",
    "django-rq/",
    "shared/",
    "workspace/examples/",
    "api/v1/work-images/",
    "api/v1/figures/",
)
"""Routes that are staff's alone (the admin and the queue dashboard send anyone else to their
log-in) or whose ids are public by design (share tokens, the example gallery, the corpus's
figures)."""

MODELS = (Analysis, SavedAnalysis, PinnedSentence, Collection, CollectionEntry, ShareLink)


@pytest.fixture
def owners_ids(django_user_model, make_analysis, sentence_ids) -> dict[str, list[str]]:  # noqa: F811
    owner = django_user_model.objects.create_user("owner")
    analysis = make_analysis(owner)
    saved = library.save_analysis(owner, analysis, name="Mine")
    pin, _ = library.pin_sentence(saved, sentence_id=sentence_ids[0])
    collection = library.create_collection(owner, name="Mine too")
    entry, _ = library.add_to_collection(collection, sentence_id=sentence_ids[0])
    share, _key = library.create_share_link(owner, collection=collection)
    token, _ = create_api_token(owner, "owner's script")
    return {
        "uuid": [str(analysis.pk), str(saved.pk), str(collection.pk), str(share.pk)],
        "int": [str(pin.pk), str(entry.pk), str(token.pk)],
        "str": [sentence_ids[0], "bib"],
    }


def fillings(route: str, ids: dict[str, list[str]]) -> list[str]:
    """`route` with its converters filled in every combination of the owner's ids."""
    slots = list(CONVERTER.finditer(route))
    choices = [ids.get(slot["kind"] or "str", ids["str"]) for slot in slots]
    paths = []
    for values in itertools.product(*choices):
        filled = iter(values)
        paths.append("/" + CONVERTER.sub(lambda _match, filled=filled: next(filled), route))
    return paths


def snapshot() -> dict[str, list]:
    """Every row of the models behind the ids, and the owner's API tokens (the intruder's own
    token records when it was last used)."""
    rows = {model.__name__: list(model.objects.order_by("pk").values()) for model in MODELS}
    rows["ApiToken"] = list(ApiToken.objects.filter(user__username="owner").values())
    return rows


def test_no_address_serves_or_changes_another_researchers_things(owners_ids, django_user_model):
    intruder = django_user_model.objects.create_user("intruder")
    api = token_client(intruder)
    pages = Client()
    pages.force_login(intruder)
    before = snapshot()

    tried, leaks = 0, []
    for route in routes():
        if route.startswith(NOT_PRIVATE) or not re.search(r"<(uuid|int):", route):
            continue
        for path in fillings(route, owners_ids):
            client = api if path.startswith("/api/") else pages
            for method in ("get", "post", "patch", "delete"):
                response = getattr(client, method)(path)
                tried += 1
                if response.status_code not in (404, 405):
                    leaks.append((method.upper(), path, response.status_code))

    assert leaks == [], "\n".join(map(str, leaks[:40]))
    assert tried > 500  # every id-taking route, with every id, by every method
    assert snapshot() == before
    # The same addresses do serve their owner: the ids tried are live ones.
    owner = django_user_model.objects.get(username="owner")
    analysis, saved, collection, _share = owners_ids["uuid"]
    mine = token_client(owner)
    assert mine.get(f"/api/v1/analyses/{analysis}").status_code == 200
    assert mine.get(f"/api/v1/library/saved/{saved}").status_code == 200
    assert mine.get(f"/api/v1/library/collections/{collection}").status_code == 200
