"""IIIF out: a finished analysis as a Presentation 3 manifest and as a Web Annotation
collection, checked against the schemas of both specifications; private to its owner, public
through a share link with CORS."""

from __future__ import annotations

import io

import numpy as np
import pytest
from jsonschema import Draft202012Validator
from PIL import Image
from rest_framework.test import APIClient

from apps.analysis.models import Heatmap
from apps.library import services as library_services
from tests.iiif.schemas import ANNOTATION_COLLECTION, MANIFEST
from tests.library.conftest import CELL

pytestmark = pytest.mark.django_db


def valid(document: dict, schema: dict) -> dict:
    errors = sorted(Draft202012Validator(schema).iter_errors(document), key=str)
    assert not errors, [f"{list(error.path)}: {error.message}" for error in errors[:5]]
    return document


def manifest_of(client, analysis) -> dict:
    response = client.get(f"/api/v1/analyses/{analysis.pk}/iiif/manifest.json")
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("application/ld+json")
    return valid(response.json(), MANIFEST)


def comments(manifest: dict) -> list[dict]:
    return manifest["items"][0]["annotations"][0]["items"]


def test_the_manifest_paints_the_stored_image_and_comments_each_result(api, make_analysis):
    analysis = make_analysis(api.user)

    manifest = manifest_of(api, analysis)

    canvas = manifest["items"][0]
    assert (canvas["width"], canvas["height"]) == (analysis.width, analysis.height)
    image = canvas["items"][0]["items"][0]["body"]
    served = api.get(image["id"])
    assert served.status_code == 200
    pixels = Image.open(io.BytesIO(b"".join(served.streaming_content)))
    assert pixels.size == (image["width"], image["height"])
    notes = comments(manifest)
    results = [note for note in notes if "/annotation/result/" in note["id"]]
    assert len(results) == 5
    first = analysis.results.filter(query="image").select_related("sentence__work").first()
    body = results[0]["body"]["value"]
    assert first.sentence.text.split()[0] in body
    assert first.sentence.work.display_title.split()[0] in body
    assert results[0]["target"]["selector"]["value"] == (
        f"xywh=0,0,{analysis.width},{analysis.height}"
    )
    assert results[0]["target"]["source"]["id"] == canvas["id"]
    # The stored ranking of grid cell CELL, on that cell's stored box.
    cells = [note for note in notes if f"/annotation/cell/{CELL[0]}/{CELL[1]}/" in note["id"]]
    assert len(cells) == 3
    assert cells[0]["target"]["selector"]["value"] == "xywh=0,0,1,1"


def test_a_region_analysis_targets_its_crop(api, make_analysis):
    analysis = make_analysis(api.user, crop=[30, 20, 230, 170])

    notes = comments(manifest_of(api, analysis))

    assert notes[0]["target"]["selector"]["value"] == "xywh=30,20,200,150"


def test_a_heatmap_adds_its_strongest_cell(api, make_analysis):
    analysis = make_analysis(api.user, crop=[100, 0, 300, 200])
    values = np.zeros((4, 4), dtype=np.float32)
    values[1, 3] = 1.0  # second row, last column: x 250–300, y 50–100
    sentence = analysis.results.first().sentence
    Heatmap.objects.create(
        analysis=analysis,
        sentence=sentence,
        model_key=analysis.model_key,
        rows=4,
        cols=4,
        values=values.tobytes(),
    )

    notes = comments(manifest_of(api, analysis))

    peak = next(note for note in notes if "/annotation/heatmap/" in note["id"])
    assert peak["target"]["selector"]["value"] == "xywh=250,50,50,50"
    assert "Strongest region" in peak["body"]["value"]


def test_an_unfinished_analysis_has_a_canvas_and_no_comments(api, make_analysis):
    analysis = make_analysis(api.user)
    analysis.status = "running"
    analysis.save()

    manifest = manifest_of(api, analysis)

    assert "annotations" not in manifest["items"][0]


def test_the_annotation_collection_is_web_annotation_json_ld(api, make_analysis):
    analysis = make_analysis(api.user)

    response = api.get(f"/api/v1/analyses/{analysis.pk}/iiif/annotations.jsonld")

    assert response.status_code == 200
    assert response["Content-Type"] == (
        'application/ld+json; profile="http://www.w3.org/ns/anno.jsonld"'
    )
    assert response["Content-Disposition"].startswith("attachment;")
    collection = valid(response.json(), ANNOTATION_COLLECTION)
    manifest = manifest_of(api, analysis)
    assert collection["total"] == len(comments(manifest)) == len(collection["first"]["items"])
    # The same annotations, on the image itself rather than on the canvas.
    for exported, shown in zip(collection["first"]["items"], comments(manifest), strict=True):
        assert exported["body"] == shown["body"]
        assert exported["target"]["selector"] == shown["target"]["selector"]
        assert exported["target"]["source"]["id"].endswith("/image")


def test_another_researchers_manifest_is_not_found(api, intruder, make_analysis):
    analysis = make_analysis(api.user)
    for path in ("manifest.json", "annotations.jsonld"):
        response = intruder.get(f"/api/v1/analyses/{analysis.pk}/iiif/{path}")
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
        assert APIClient().get(f"/api/v1/analyses/{analysis.pk}/iiif/{path}").status_code == 401


def test_a_share_link_serves_the_manifest_to_anyone_with_cors(api, make_analysis):
    analysis = make_analysis(api.user)
    saved = library_services.save_analysis(api.user, analysis, name="Shared")
    link, token = library_services.create_share_link(api.user, saved=saved)
    anonymous = APIClient()

    response = anonymous.get(f"/shared/{token}/iiif/manifest.json")

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    manifest = valid(response.json(), MANIFEST)
    assert manifest["id"].endswith(f"/shared/{token}/iiif/manifest.json")
    image = manifest["items"][0]["items"][0]["items"][0]["body"]["id"]
    served = anonymous.get(image)
    assert served.status_code == 200
    assert served["Access-Control-Allow-Origin"] == "*"
    collection = anonymous.get(f"/shared/{token}/iiif/annotations.jsonld")
    assert collection.status_code == 200
    valid(collection.json(), ANNOTATION_COLLECTION)

    library_services.revoke_share_link(link)
    assert anonymous.get(f"/shared/{token}/iiif/manifest.json").status_code == 404
    assert anonymous.get(image).status_code == 404


def test_a_shared_collection_has_no_manifest(api):
    collection = library_services.create_collection(api.user, name="Reading")
    _link, token = library_services.create_share_link(api.user, collection=collection)
    assert APIClient().get(f"/shared/{token}/iiif/manifest.json").status_code == 404


def test_the_schema_refuses_a_broken_manifest(api, make_analysis):
    """The schema is strict enough to catch what a viewer would choke on."""
    manifest = manifest_of(api, make_analysis(api.user))
    broken = dict(manifest, label="not a language map")
    assert list(Draft202012Validator(MANIFEST).iter_errors(broken))
    canvas = dict(manifest["items"][0], width=0)
    assert list(Draft202012Validator(MANIFEST).iter_errors(dict(manifest, items=[canvas])))


def test_an_analysis_from_iiif_carries_its_source_and_terms(api, make_analysis):
    from apps.analysis.models import IiifSource

    analysis = make_analysis(api.user)
    IiifSource.objects.create(
        analysis=analysis,
        manifest_url="https://iiif.example.org/m/manifest.json",
        canvas_id="https://iiif.example.org/m/canvas/1",
        service_id="https://iiif.example.org/iiif/3/b",
        image_url="https://iiif.example.org/iiif/3/b/full/!1000,800/0/default.jpg",
        attribution="Test Gallery, public domain",
        rights="http://creativecommons.org/publicdomain/mark/1.0/",
    )

    manifest = manifest_of(api, analysis)

    assert manifest["requiredStatement"]["value"] == {"en": ["Test Gallery, public domain"]}
    assert manifest["rights"] == "http://creativecommons.org/publicdomain/mark/1.0/"
    assert manifest["seeAlso"][0]["id"] == "https://iiif.example.org/m/manifest.json"


def test_an_exported_manifest_round_trips_through_iiif_in(
    api, make_analysis, iiif_server, redis_connection
):
    """Our manifest, served by a IIIF server, is read back by IIIF in: the same painting,
    pixel for pixel, with its label, canvas and terms."""
    from apps.analysis.models import Analysis, IiifSource
    from apps.iiif import exports
    from tests.iiif.conftest import Route

    original = make_analysis(api.user)
    IiifSource.objects.create(
        analysis=original,
        image_url="https://iiif.example.org/iiif/3/b/full/max/0/default.jpg",
        attribution="Test Gallery, public domain",
        rights="http://creativecommons.org/publicdomain/mark/1.0/",
    )
    links = exports.Links(iiif_server.url("/ours"), iiif_server.url("/ours/image.jpg"))
    manifest = valid(exports.build_manifest(original, links), MANIFEST)
    iiif_server.json("/ours/manifest.json", manifest)
    with original.image.open("rb") as stored:
        iiif_server.routes["/ours/image.jpg"] = Route(stored.read(), content_type="image/jpeg")

    response = api.post(
        "/api/v1/analyses", {"iiif": links.manifest, "model": "clip"}, format="json"
    )

    assert response.status_code == 202, response.content[:400]
    copy = Analysis.objects.exclude(pk=original.pk).get()
    source = IiifSource.objects.get(analysis=copy)
    assert (source.manifest_url, source.canvas_id, source.image_url) == (
        links.manifest,
        links.canvas,
        links.image,
    )
    assert source.label == original.original_filename
    assert (source.attribution, source.rights) == (
        "Test Gallery, public domain",
        "http://creativecommons.org/publicdomain/mark/1.0/",
    )
    with original.image.open("rb") as a, copy.image.open("rb") as b:
        assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
