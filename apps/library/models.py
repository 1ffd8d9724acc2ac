"""The researcher's library: saved analyses with pinned sentences, collections, share links.

A saved analysis is a bookmark on an `Analysis` (which keeps the image, crop, model and
filters) plus what the researcher adds: a name, notes, tags, the grid cell they were looking at
and the sentences they pinned. Un-saving removes the bookmark only; the analysis stays in the
history. Collections are ordered lists of works and sentences, each at most once. A share link
is stored as the SHA-256 digest of its token, so a copy of the database opens nothing.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

MAX_NAME = 200
MAX_TAG = 50

_CELL_BOTH_OR_NEITHER = Q(cell_row__isnull=True, cell_col__isnull=True) | Q(
    cell_row__isnull=False, cell_col__isnull=False
)


class SavedAnalysis(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    analysis = models.OneToOneField(
        "analysis.Analysis", on_delete=models.CASCADE, related_name="saved"
    )
    name = models.CharField(max_length=MAX_NAME)
    notes = models.TextField(blank=True)
    tags = models.JSONField(
        default=list, blank=True, help_text=f"Lower-case strings of at most {MAX_TAG} characters."
    )
    cell_row = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The grid cell shown when it was saved (none: the image)."
    )
    cell_col = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-created_at"]
        verbose_name_plural = "saved analyses"
        constraints = [
            models.CheckConstraint(condition=_CELL_BOTH_OR_NEITHER, name="saved_cell_complete")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def cell(self) -> tuple[int, int] | None:
        return None if self.cell_row is None else (self.cell_row, self.cell_col)


class PinnedSentence(models.Model):
    """A sentence from the saved analysis's results, with where it was ranked (the whole image
    or crop when no cell, else that grid cell) and the researcher's annotation."""

    saved = models.ForeignKey(SavedAnalysis, on_delete=models.CASCADE, related_name="pins")
    sentence = models.ForeignKey("corpus.Sentence", on_delete=models.CASCADE, related_name="+")
    cell_row = models.PositiveSmallIntegerField(null=True, blank=True)
    cell_col = models.PositiveSmallIntegerField(null=True, blank=True)
    annotation = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["saved", "created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=_CELL_BOTH_OR_NEITHER, name="pin_cell_complete"),
            models.UniqueConstraint(
                fields=["saved", "sentence", "cell_row", "cell_col"],
                nulls_distinct=False,
                name="pin_once_per_place",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.saved_id}: {self.sentence_id}"

    @property
    def cell(self) -> tuple[int, int] | None:
        return None if self.cell_row is None else (self.cell_row, self.cell_col)


class Collection(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="collections"
    )
    name = models.CharField(max_length=MAX_NAME)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-created_at"]
        indexes = [models.Index(fields=["owner", "-updated_at"], name="collection_owner_recent")]

    def __str__(self) -> str:
        return self.name


class CollectionEntry(models.Model):
    """A work, or a sentence with its work, at a position of a collection (0 first).

    Positions are unique per collection under a deferred constraint, so that a move can shift
    its neighbours inside one transaction."""

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="entries")
    position = models.PositiveIntegerField()
    work = models.ForeignKey("corpus.Work", on_delete=models.CASCADE, related_name="+")
    sentence = models.ForeignKey(
        "corpus.Sentence", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["collection", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["collection", "position"],
                deferrable=models.Deferrable.DEFERRED,
                name="entry_position",
            ),
            models.UniqueConstraint(
                fields=["collection", "work"],
                condition=Q(sentence__isnull=True),
                name="entry_work_once",
            ),
            models.UniqueConstraint(
                fields=["collection", "sentence"],
                condition=Q(sentence__isnull=False),
                name="entry_sentence_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.collection_id} #{self.position}: {self.sentence_id or self.work_id}"


class ShareLink(models.Model):
    """A secret read-only link to one collection or one saved analysis.

    Only the digest of the token is kept (as for API tokens, a fast hash is enough: tokens are
    256 random bits); `prefix`, the token's first characters, tells links apart in a list.
    Revoking keeps the row, so the owner sees what was shared and when it stopped."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="share_links"
    )
    collection = models.ForeignKey(
        Collection, null=True, blank=True, on_delete=models.CASCADE, related_name="share_links"
    )
    saved = models.ForeignKey(
        SavedAnalysis,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="share_links",
    )
    digest = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=16)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(collection__isnull=False, saved__isnull=True)
                | Q(collection__isnull=True, saved__isnull=False),
                name="share_one_target",
            )
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… → {self.collection_id or self.saved_id}"
