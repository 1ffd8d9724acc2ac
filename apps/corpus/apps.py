from django.apps import AppConfig
from django.core import checks


class CorpusConfig(AppConfig):
    name = "apps.corpus"
    verbose_name = "Corpus"

    def ready(self) -> None:
        from apps.corpus.checks import pgvector_available

        checks.register(pgvector_available, checks.Tags.database)
