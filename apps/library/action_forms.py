"""The forms of the library's actions on other pages (see `apps.library.actions`)."""

from __future__ import annotations

from django import forms

from apps.analysis.selectors import parse_cell
from apps.library.forms import SavedAnalysisForm


def _cell(value: str) -> tuple[int, int] | None:
    """`row,col` as the analysis page writes it, or None for the whole image (or crop)."""
    if not value:
        return None
    cell = parse_cell(value)
    if cell is None:
        raise forms.ValidationError("A cell is given as row,column.")
    return cell


class SaveAnalysisForm(SavedAnalysisForm):
    """The library's own form for a saved analysis, with the cell the page shows."""

    cell = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_cell(self) -> tuple[int, int] | None:
        return _cell(self.cleaned_data["cell"])


class PinForm(forms.Form):
    sentence = forms.CharField(max_length=48)
    cell = forms.CharField(required=False)
    action = forms.ChoiceField(choices=[("pin", "Pin"), ("unpin", "Unpin")])

    def clean_cell(self) -> tuple[int, int] | None:
        return _cell(self.cleaned_data["cell"])


class AnnotationForm(forms.Form):
    annotation = forms.CharField(required=False, max_length=5000)


class CollectForm(forms.Form):
    """ "Add to collection": a work or a sentence, into a collection of the user's or a new
    one named here."""

    work = forms.CharField(required=False, max_length=32)
    sentence = forms.CharField(required=False, max_length=48)
    collection = forms.CharField(required=False)
    new_name = forms.CharField(required=False, max_length=200)

    def clean(self) -> dict:
        data = super().clean()
        if bool(data.get("work")) == bool(data.get("sentence")):
            raise forms.ValidationError("Give either a work or a sentence to add.")
        if data.get("collection") in ("", "new") and not data.get("new_name", "").strip():
            raise forms.ValidationError("Name the new collection, or choose one of yours.")
        return data
