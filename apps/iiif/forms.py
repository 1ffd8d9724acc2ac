"""The workspace's IIIF form: an address on a IIIF server, the canvas of a manifest, a model.

The address is read as text, not as a `URLField`: what is not a IIIF address we may fetch
(another scheme, a host off the allow-list) is refused by `apps.iiif.fetch` with the sentence
that says why, the same one the API gives.
"""

from __future__ import annotations

from django import forms

from apps.analysis.forms import model_choices
from apps.engine.config import default_model_key


class IiifForm(forms.Form):
    url = forms.CharField(
        label="IIIF address",
        max_length=2000,
        help_text="A manifest, an info.json or an image request of a IIIF server.",
        widget=forms.URLInput(attrs={"placeholder": "https://…/manifest.json"}),
    )
    canvas = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)
    model = forms.ChoiceField(label="Model")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = model_choices()
        self.fields["model"].initial = default_model_key()
