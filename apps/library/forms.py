"""Forms of the library's own pages (see `apps.library.views`).

They read and check the shape of the input only; the services decide the rest (a name too
long, too many tags, an expiry in the past) and their `ApplicationError` is shown on the form.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.utils import timezone

from apps.analysis.forms import model_choices
from apps.library.models import MAX_NAME


def split_tags(text: str) -> list[str]:
    return [tag.strip() for tag in text.split(",") if tag.strip()]


class LibrarySearchForm(forms.Form):
    """The library's search box and filters, read from the query string."""

    q = forms.CharField(
        label="Search your saved analyses",
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "class": "form-control",
                "placeholder": "Name, notes, tags, pins",
            }
        ),
    )
    tag = forms.ChoiceField(
        label="Tag", required=False, widget=forms.Select(attrs={"class": "form-select"})
    )
    model = forms.ChoiceField(
        label="Model", required=False, widget=forms.Select(attrs={"class": "form-select"})
    )

    def __init__(self, *args, tags: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tag"].choices = [("", "Any tag"), *((tag, tag) for tag in tags)]
        self.fields["model"].choices = [("", "Any model"), *model_choices()]

    def criteria(self) -> dict[str, str]:
        """The valid criteria, none where the query string held nonsense (a typed URL)."""
        if not self.is_valid():
            return {"q": "", "tag": "", "model": ""}
        return {name: self.cleaned_data[name] or "" for name in ("q", "tag", "model")}


class SavedAnalysisForm(forms.Form):
    name = forms.CharField(label="Name", max_length=MAX_NAME)
    notes = forms.CharField(label="Notes", required=False, widget=forms.Textarea(attrs={"rows": 4}))
    tags = forms.CharField(
        label="Tags", required=False, help_text="Separated by commas, e.g. lion, desert."
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.widget.attrs["class"] = "form-control"

    def clean_tags(self) -> list[str]:
        return split_tags(self.cleaned_data["tags"])


class CollectionForm(forms.Form):
    name = forms.CharField(label="Name", max_length=MAX_NAME)
    description = forms.CharField(
        label="Description", required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.widget.attrs["class"] = "form-control"


class ShareForm(forms.Form):
    expires = forms.DateField(
        label="Expires after",
        required=False,
        help_text="Optional: the link stops working at the end of that day.",
        widget=forms.DateInput(attrs={"type": "date", "class": "form-control"}),
    )

    def expires_at(self) -> datetime | None:
        """The end of the chosen day in the site's time zone, or None (no expiry)."""
        day = self.cleaned_data.get("expires")
        if day is None:
            return None
        return datetime.combine(
            day + timedelta(days=1), time.min, tzinfo=timezone.get_current_timezone()
        )


class MoveForm(forms.Form):
    direction = forms.ChoiceField(choices=[("up", "Move up"), ("down", "Move down")])

    @property
    def step(self) -> int:
        return -1 if self.cleaned_data["direction"] == "up" else 1
