from django.apps import AppConfig


class IiifConfig(AppConfig):
    """IIIF in and out. No models of its own: a IIIF source is kept with its analysis
    (`apps.analysis.models.IiifSource`); installed for its templates' tags."""

    name = "apps.iiif"
    verbose_name = "IIIF"
