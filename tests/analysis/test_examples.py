"""The workspace's example gallery: curated in the admin through the upload checks, served as
thumbnails, analysed with one click, and carried over from the demo app's old table."""

from __future__ import annotations

import io

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from PIL import Image, PngImagePlugin

from apps.analysis import services
from apps.analysis.models import ExampleImage
from tests.analysis.conftest import painting_bytes


def png_with_text(width: int = 640, height: int = 400) -> bytes:
    """A PNG carrying a text chunk, which the stored copy must drop."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "taken at the owner's house")
    buffer = io.BytesIO()
    Image.open(io.BytesIO(painting_bytes(width, height, "PNG"))).save(
        buffer, format="PNG", pnginfo=info
    )
    return buffer.getvalue()


def picture(data: bytes, name: str) -> ContentFile:
    upload = ContentFile(data)
    upload.name = name
    return upload


@pytest.mark.django_db
def test_an_admin_adds_an_example_and_a_researcher_analyses_it(admin_client, media, client):
    add = reverse("admin:analysis_exampleimage_add")
    form = {"position": 0, "title": "Wheat Field", "artist": "A. Painter", "credit": "CC0"}

    refused = admin_client.post(add, {**form, "picture": picture(b"<svg/>", "field.svg")})
    assert refused.status_code == 200
    assert "SVG and other markup files are not accepted" in refused.content.decode()
    missing = admin_client.post(add, form)
    assert "Choose the painting" in missing.content.decode()
    assert not ExampleImage.objects.exists()

    added = admin_client.post(add, {**form, "picture": picture(png_with_text(), "field.png")})
    assert added.status_code == 302
    example = ExampleImage.objects.get()
    assert (example.width, example.height) == (640, 400)
    with example.image.open("rb") as stored:
        assert "Comment" not in Image.open(stored).info
    with example.thumbnail.open("rb") as stored:
        assert max(Image.open(stored).size) == services.THUMBNAIL_SIZE[0]
    assert admin_client.get(reverse("admin:analysis_exampleimage_changelist")).status_code == 200

    # The workspace shows the thumbnail; picking it analyses the full picture.
    workspace = admin_client.get(reverse("analysis:workspace"))
    assert "Wheat Field" in workspace.content.decode()
    thumbnail = admin_client.get(reverse("analysis:example-image", kwargs={"pk": example.pk}))
    assert thumbnail["Content-Type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(b"".join(thumbnail.streaming_content))).size) == 480
    analysis = services.create_analysis_from_upload(
        owner=workspace.wsgi_request.user,
        example=example,
        model_key="clip",
    )
    assert (analysis.width, analysis.height, analysis.original_filename) == (
        640,
        400,
        "Wheat Field.png",
    )


@pytest.mark.django_db
def test_a_new_picture_replaces_the_old_files(
    admin_client, media, django_capture_on_commit_callbacks
):
    example = services.create_example_image(title="Old", data=painting_bytes(300, 200, "JPEG"))
    old_image, old_thumbnail = example.image.name, example.thumbnail.name
    change = reverse("admin:analysis_exampleimage_change", kwargs={"object_id": example.pk})
    with django_capture_on_commit_callbacks(execute=True):  # django-cleanup deletes on commit
        response = admin_client.post(
            change,
            {"position": 0, "title": "New", "picture": picture(png_with_text(200, 300), "new.png")},
        )
    assert response.status_code == 302
    example.refresh_from_db()
    assert (example.title, example.width, example.height) == ("New", 200, 300)
    assert example.image.name != old_image
    assert not (media / old_image).exists()
    assert not (media / old_thumbnail).exists()
    # Kept without a new picture: only the text changes.
    admin_client.post(change, {"position": 0, "title": "Newer"})
    example.refresh_from_db()
    assert example.title == "Newer"
    assert (media / example.image.name).exists()


@pytest.mark.django_db(transaction=True)
def test_the_demo_apps_gallery_rows_become_examples(media):
    executor = MigrationExecutor(connection)
    before = [("analysis", "0005_text_heatmaps"), ("demo", "0001_initial")]
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    gallery_image = old_apps.get_model("demo", "GalleryImage")
    row = gallery_image(
        position=3, title="The White Bird", artist="Demo", style="plain", truth={"objects": []}
    )
    row.image.save("bird.png", ContentFile(painting_bytes(302, 415, "PNG")), save=False)
    row.save()
    gone = gallery_image(position=4, title="Lost", artist="", style="plain", truth={})
    gone.image.name = "demo/gallery/never-written.png"
    gone.save()

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    (example,) = ExampleImage.objects.all()  # the row whose file was gone is left behind
    assert (example.position, example.title, example.width, example.height) == (
        3,
        "The White Bird",
        302,
        415,
    )
    assert example.image.name == row.image.name
    with example.thumbnail.open("rb") as stored:
        assert Image.open(stored).format == "JPEG"
