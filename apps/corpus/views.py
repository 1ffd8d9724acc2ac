"""The corpus's pages: a work and a figure (each a page of its own, or a panel over the
analysis and search pages when htmx asks for it) and the paragraph around a sentence."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from apps.corpus import selectors


def work_page(request: HttpRequest, work_id: str) -> HttpResponse:
    details = selectors.get_work_details(work_id)
    if details is None:
        raise Http404("There is no such work.")
    template = "corpus/_work_panel.html" if request.htmx else "corpus/work.html"
    return render(request, template, {"details": details, "work": details.work})


def figure_page(request: HttpRequest, figure_id: int) -> HttpResponse:
    """A figure of a published work: the plate, its caption, the paragraph citing it, and its
    work (what a figure search result opens)."""
    figure = selectors.get_published_figure(figure_id)
    if figure is None:
        raise Http404("There is no such figure.")
    template = "corpus/_figure_panel.html" if request.htmx else "corpus/figure.html"
    return render(request, template, {"figure": figure, "work": figure.work})


def sentence_context(request: HttpRequest, sentence_id: str) -> HttpResponse:
    """The paragraph a sentence was split from, with the sentence marked."""
    context = selectors.get_sentence_context(sentence_id, neighbours=3)
    if context is None:
        raise Http404("There is no such sentence.")
    text = context.sentence.text
    paragraph = context.paragraph or ""
    start = paragraph.find(text)
    if start >= 0:
        before, after = paragraph[:start], paragraph[start + len(text) :]
    else:
        before = " ".join(sentence.text for sentence in context.before)
        after = " ".join(sentence.text for sentence in context.after)
    return render(
        request,
        "corpus/_context.html",
        {"before": before.strip(), "sentence": text, "after": after.strip()},
    )
