"""Curation of the workspace's example gallery in the Django admin. A new picture goes through
the upload checks and is stored like an upload (metadata-free, with a thumbnail), by the
service the demo loader uses too."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from apps.analysis import services
from apps.analysis.models import ExampleImage
from apps.analysis.uploads import FORMAT_NAMES, InvalidImage, validate_image


class ExampleImageForm(forms.ModelForm):
    picture = forms.FileField(
        required=False,
        help_text=f"{FORMAT_NAMES}; checked and stored like a researcher's upload.",
    )

    class Meta:
        model = ExampleImage
        fields = ["position", "title", "artist", "credit"]

    def clean_picture(self):
        picture = self.cleaned_data.get("picture")
        if picture is None:
            if self.instance.pk is None:
                raise forms.ValidationError("Choose the painting's image file.")
            return None
        data = picture.read()
        try:
            validate_image(
                data,
                max_bytes=settings.ANALYSIS_MAX_UPLOAD_BYTES,
                max_pixels=settings.ANALYSIS_MAX_PIXELS,
                preview_size=services.THUMBNAIL_SIZE,
            )
        except InvalidImage as error:
            raise forms.ValidationError(error.sentence) from None
        return data


@admin.register(ExampleImage)
class ExampleImageAdmin(admin.ModelAdmin):
    form = ExampleImageForm
    list_display = ["position", "title", "artist", "size", "preview"]
    list_display_links = ["title"]
    ordering = ["position"]
    search_fields = ["title", "artist"]
    readonly_fields = ["preview", "size"]

    @admin.display(description="Size")
    def size(self, example: ExampleImage) -> str:
        return f"{example.width} × {example.height} px" if example.pk else "—"

    @admin.display(description="Thumbnail")
    def preview(self, example: ExampleImage) -> str:
        if not example.thumbnail:
            return "—"
        url = reverse("analysis:example-image", kwargs={"pk": example.pk})
        return format_html('<img src="{}" alt="" height="60">', url)

    def save_model(self, request: HttpRequest, example: ExampleImage, form, change: bool) -> None:
        if form.cleaned_data.get("picture"):
            services.set_example_picture(example, form.cleaned_data["picture"])
        super().save_model(request, example, form, change)
