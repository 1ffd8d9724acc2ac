"""The demo's example gallery: held-out scenes a visitor can analyse with one click."""

from django.db import models


class GalleryImage(models.Model):
    position = models.PositiveSmallIntegerField(unique=True)
    title = models.CharField(max_length=300)
    artist = models.CharField(max_length=200)
    style = models.CharField(max_length=16, help_text="plain or painterly")
    image = models.ImageField(upload_to="demo/gallery", max_length=300)
    truth = models.JSONField(help_text="The scene's ground truth: objects, kinds, boxes.")

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return self.title
