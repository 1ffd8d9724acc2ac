from django.apps import AppConfig
from django.conf import settings
from django.core.signals import setting_changed


def _configure_engine(**kwargs) -> None:
    """Hand the model settings to the engine: once at start-up, and again whenever a test
    changes `MODEL_SETTINGS` (torch-free; models load when a worker first needs one)."""
    if kwargs.get("setting", "MODEL_SETTINGS") != "MODEL_SETTINGS":
        return
    from apps.engine.config import configure_engine, specs_from_env

    configure_engine(specs_from_env(settings.MODEL_SETTINGS))


class CoreConfig(AppConfig):
    """What every app shares: the application error, API plumbing, the engine's set-up."""

    name = "apps.core"
    verbose_name = "Core"

    def ready(self) -> None:
        _configure_engine()
        setting_changed.connect(_configure_engine, dispatch_uid="artefact-configure-engine")
