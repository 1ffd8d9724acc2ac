"""Forms of the analysis pages: what the workspace and the analysis page's filter bar read.

They only read and check the shape of the input; the services decide what it means (an
unknown topic, an unreadable image) and their `ApplicationError` is shown on the form.
"""

from __future__ import annotations

from django import forms
from django.conf import settings

from apps.analysis.models import ExampleImage
from apps.corpus import selectors as corpus_selectors
from apps.engine.config import default_model_key, model_keys, model_label

ACCEPTED_TYPES = "image/jpeg,image/png,image/webp,image/tiff,image/gif"


def model_choices() -> list[tuple[str, str]]:
    return [(key, model_label(key)) for key in model_keys()]


class FilterForm(forms.Form):
    """Model and filters: on the workspace before an upload, on an analysis to re-rank it."""

    model = forms.ChoiceField(label="Model")
    topics = forms.MultipleChoiceField(label="Topics", required=False)
    creators = forms.MultipleChoiceField(label="Creators", required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = model_choices()
        self.fields["model"].initial = default_model_key()
        self.topic_counts = corpus_selectors.list_topics_with_counts()
        self.fields["topics"].choices = [(topic.id, topic.name) for topic in self.topic_counts]
        self.creator_counts = corpus_selectors.list_creators_with_counts()
        self.fields["creators"].choices = [
            (creator.slug, creator.name) for creator in self.creator_counts
        ]


class UploadForm(FilterForm):
    image = forms.FileField(
        label="Painting",
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": ACCEPTED_TYPES}),
    )
    example = forms.ModelChoiceField(
        queryset=ExampleImage.objects.all(), required=False, widget=forms.HiddenInput
    )

    def clean(self) -> dict:
        data = super().clean()
        if not data.get("image") and not data.get("example"):
            raise forms.ValidationError("Choose a painting to upload, or pick an example.")
        if len(self.files.getlist(self.add_prefix("image"))) > 1:
            self.add_error("image", "Choose one painting at a time.")
        upload = data.get("image")
        if upload is not None and upload.size > settings.ANALYSIS_MAX_UPLOAD_BYTES:
            limit = settings.ANALYSIS_MAX_UPLOAD_BYTES / 1_000_000
            self.add_error("image", f"The file is larger than the {limit:.0f} MB limit.")
        return data


class CropForm(forms.Form):
    """A region in original-image pixels, as Cropper.js reports it."""

    left = forms.FloatField(min_value=0)
    top = forms.FloatField(min_value=0)
    right = forms.FloatField(min_value=0)
    bottom = forms.FloatField(min_value=0)

    def box(self) -> list[float]:
        return [self.cleaned_data[name] for name in ("left", "top", "right", "bottom")]


class TextQueryForm(FilterForm):
    q = forms.CharField(label="Text", max_length=1000)
