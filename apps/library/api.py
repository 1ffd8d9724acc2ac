"""The library endpoints of the REST API (`/api/v1/library/…`, `/works/{id}/citation`).

Thin: serializers read the input, services and selectors do the work. Every item is the
requester's own: another user's ids answer 404, as ids that do not exist do (staff included:
a library is personal).
"""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.analysis.selectors import list_analyses
from apps.analysis.serializers import read_query
from apps.core.errors import NotFoundError
from apps.corpus.models import Work
from apps.library import selectors, services
from apps.library.models import Collection, CollectionEntry, PinnedSentence, SavedAnalysis
from apps.library.serializers import (
    CitationQuerySerializer,
    CitationSerializer,
    CollectionCreateSerializer,
    CollectionDetailSerializer,
    CollectionSerializer,
    CollectionUpdateSerializer,
    EntryCreateSerializer,
    EntryMoveSerializer,
    EntrySerializer,
    PinCreateSerializer,
    PinSerializer,
    PinUpdateSerializer,
    SavedAnalysisCreateSerializer,
    SavedAnalysisDetailSerializer,
    SavedAnalysisQuerySerializer,
    SavedAnalysisSerializer,
    SavedAnalysisUpdateSerializer,
    ShareCreateSerializer,
    ShareLinkCreatedSerializer,
    ShareLinkSerializer,
)

EXPORT_RESPONSES = {
    (200, "application/x-bibtex"): OpenApiTypes.STR,
    (200, "application/x-research-info-systems"): OpenApiTypes.STR,
    (200, "application/vnd.citationstyles.csl+json"): OpenApiTypes.ANY,
}


def _saved(request: Request, pk) -> SavedAnalysis:
    return get_object_or_404(selectors.list_saved_analyses(request.user), pk=pk)


def _collection(request: Request, pk) -> Collection:
    return get_object_or_404(selectors.list_collections(request.user), pk=pk)


def _download(export: services.Export) -> HttpResponse:
    response = HttpResponse(export.text, content_type=export.content_type)
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    return response


def _validated(serializer_class, request: Request) -> dict:
    form = serializer_class(data=request.data)
    form.is_valid(raise_exception=True)
    return form.validated_data


class SavedAnalysisListCreate(generics.ListAPIView):
    """Your saved analyses, most recently changed first (`q` searches names, notes, tags and
    pinned sentences; `tag` and `model` filter); save one of your analyses."""

    serializer_class = SavedAnalysisSerializer

    def get_queryset(self):
        query = read_query(SavedAnalysisQuerySerializer, self.request)
        return selectors.list_saved_analyses(self.request.user, **query)

    @extend_schema(parameters=[SavedAnalysisQuerySerializer])
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=SavedAnalysisCreateSerializer, responses={201: SavedAnalysisDetailSerializer}
    )
    def post(self, request: Request) -> Response:
        data = _validated(SavedAnalysisCreateSerializer, request)
        analysis = get_object_or_404(list_analyses(request.user, own=True), pk=data["analysis"])
        saved = services.save_analysis(
            request.user,
            analysis,
            name=data["name"],
            notes=data["notes"],
            tags=data["tags"],
            cell=data["cell"],
        )
        body = SavedAnalysisDetailSerializer(saved, context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED)


class SavedAnalysisDetail(APIView):
    """One saved analysis with its pins; change its name, notes, tags or cell; un-save it
    (the analysis stays in your history)."""

    @extend_schema(responses={200: SavedAnalysisDetailSerializer})
    def get(self, request: Request, pk) -> Response:
        saved = _saved(request, pk)
        return Response(SavedAnalysisDetailSerializer(saved, context={"request": request}).data)

    @extend_schema(
        request=SavedAnalysisUpdateSerializer, responses={200: SavedAnalysisDetailSerializer}
    )
    def patch(self, request: Request, pk) -> Response:
        saved = _saved(request, pk)
        services.update_saved_analysis(saved, **_validated(SavedAnalysisUpdateSerializer, request))
        return Response(SavedAnalysisDetailSerializer(saved, context={"request": request}).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk) -> Response:
        services.unsave_analysis(_saved(request, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class PinListCreate(APIView):
    """The sentences pinned from a saved analysis; pin one of its results (again: 200 with
    the existing pin, unchanged)."""

    @extend_schema(responses={200: PinSerializer(many=True)})
    def get(self, request: Request, pk) -> Response:
        return Response(PinSerializer(selectors.list_pins(_saved(request, pk)), many=True).data)

    @extend_schema(request=PinCreateSerializer, responses={201: PinSerializer, 200: PinSerializer})
    def post(self, request: Request, pk) -> Response:
        saved = _saved(request, pk)
        data = _validated(PinCreateSerializer, request)
        pin, created = services.pin_sentence(saved, **data)
        pin = selectors.list_pins(saved).get(pk=pin.pk)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(PinSerializer(pin).data, status=code)


class PinDetail(APIView):
    """Change a pin's annotation, or unpin it."""

    def _pin(self, request: Request, pk, pin_id: int) -> PinnedSentence:
        return get_object_or_404(selectors.list_pins(_saved(request, pk)), pk=pin_id)

    @extend_schema(request=PinUpdateSerializer, responses={200: PinSerializer})
    def patch(self, request: Request, pk, pin_id: int) -> Response:
        pin = self._pin(request, pk, pin_id)
        services.update_pin(pin, **_validated(PinUpdateSerializer, request))
        return Response(PinSerializer(pin).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk, pin_id: int) -> Response:
        services.unpin_sentence(self._pin(request, pk, pin_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SavedAnalysisExport(APIView):
    """The works of the pinned sentences as BibTeX (`.bib`), RIS (`.ris`) or CSL-JSON
    (`.json`), each sentence a quotation note naming the analysis it was pinned from."""

    @extend_schema(responses=EXPORT_RESPONSES)
    def get(self, request: Request, pk, fmt: str) -> HttpResponse:
        saved = _saved(request, pk)
        base_url = request.build_absolute_uri("/")
        return _download(services.export_saved_analysis(saved, fmt, base_url=base_url))


class CollectionListCreate(generics.ListAPIView):
    """Your collections, most recently changed first; create one."""

    serializer_class = CollectionSerializer

    def get_queryset(self):
        return selectors.list_collections(self.request.user)

    @extend_schema(request=CollectionCreateSerializer, responses={201: CollectionDetailSerializer})
    def post(self, request: Request) -> Response:
        data = _validated(CollectionCreateSerializer, request)
        collection = services.create_collection(request.user, **data)
        return Response(CollectionDetailSerializer(collection).data, status=status.HTTP_201_CREATED)


class CollectionDetail(APIView):
    """One collection with its entries in order; rename or describe it; delete it."""

    @extend_schema(responses={200: CollectionDetailSerializer})
    def get(self, request: Request, pk) -> Response:
        return Response(CollectionDetailSerializer(_collection(request, pk)).data)

    @extend_schema(request=CollectionUpdateSerializer, responses={200: CollectionDetailSerializer})
    def patch(self, request: Request, pk) -> Response:
        collection = _collection(request, pk)
        services.update_collection(collection, **_validated(CollectionUpdateSerializer, request))
        return Response(CollectionDetailSerializer(collection).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk) -> Response:
        services.delete_collection(_collection(request, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class EntryCreate(APIView):
    """Add a work (`work_id`) or a sentence (`sentence_id`) at the end: 201 with the new
    entry, or 200 with the existing one when it is in the collection already."""

    @extend_schema(
        request=EntryCreateSerializer, responses={201: EntrySerializer, 200: EntrySerializer}
    )
    def post(self, request: Request, pk) -> Response:
        collection = _collection(request, pk)
        entry, created = services.add_to_collection(
            collection, **_validated(EntryCreateSerializer, request)
        )
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(EntrySerializer(entry).data, status=code)


class EntryDetail(APIView):
    """Move an entry to a position (0 first; the others shift), or remove it."""

    def _entry(self, request: Request, pk, entry_id: int) -> CollectionEntry:
        return get_object_or_404(selectors.list_entries(_collection(request, pk)), pk=entry_id)

    @extend_schema(request=EntryMoveSerializer, responses={200: CollectionDetailSerializer})
    def patch(self, request: Request, pk, entry_id: int) -> Response:
        entry = self._entry(request, pk, entry_id)
        services.move_entry(entry, _validated(EntryMoveSerializer, request)["position"])
        return Response(CollectionDetailSerializer(entry.collection).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk, entry_id: int) -> Response:
        services.remove_entry(self._entry(request, pk, entry_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class CollectionExport(APIView):
    """The collection as BibTeX (`.bib`), RIS (`.ris`) or CSL-JSON (`.json`): each work once,
    in the collection's order, its sentences as quotation notes."""

    @extend_schema(responses=EXPORT_RESPONSES)
    def get(self, request: Request, pk, fmt: str) -> HttpResponse:
        return _download(services.export_collection(_collection(request, pk), fmt))


class ShareLinkListCreate(generics.ListAPIView):
    """Your share links, newest first; create a secret read-only link to a collection or a
    saved analysis (its token is in this answer only)."""

    serializer_class = ShareLinkSerializer

    def get_queryset(self):
        return selectors.list_share_links(self.request.user)

    @extend_schema(request=ShareCreateSerializer, responses={201: ShareLinkCreatedSerializer})
    def post(self, request: Request) -> Response:
        data = _validated(ShareCreateSerializer, request)
        collection = saved = None
        if "collection" in data:
            collection = _collection(request, data["collection"])
        else:
            saved = _saved(request, data["saved_analysis"])
        link, token = services.create_share_link(
            request.user, collection=collection, saved=saved, expires_at=data["expires_at"]
        )
        body = {**ShareLinkSerializer(link).data, "token": token}
        return Response(body, status=status.HTTP_201_CREATED)


class ShareLinkDetail(APIView):
    """Revoke a share link: it opens nothing from now on (it stays listed, as revoked)."""

    @extend_schema(responses={200: ShareLinkSerializer})
    def delete(self, request: Request, pk) -> Response:
        link = get_object_or_404(selectors.list_share_links(request.user), pk=pk)
        return Response(ShareLinkSerializer(services.revoke_share_link(link)).data)


class WorkCitation(APIView):
    """A work's reference formatted in Chicago author-date or APA (CSL styles)."""

    @extend_schema(parameters=[CitationQuerySerializer], responses={200: CitationSerializer})
    def get(self, request: Request, work_id: str) -> Response:
        style = read_query(CitationQuerySerializer, request)["style"]
        work = Work.objects.filter(pk=work_id, published=True).first()
        if work is None:
            raise NotFoundError("not_found", f"There is no work {work_id!r}.")
        citation = services.format_citation(work, style)
        return Response(
            {"work_id": work.id, "style": style, "text": citation.text, "html": citation.html}
        )
