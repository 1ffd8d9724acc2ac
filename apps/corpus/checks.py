"""Database checks, run by `migrate` (and `check --database default`) before anything else."""

from django.core.checks import Error


def pgvector_available(app_configs, databases=None, **kwargs) -> list[Error]:
    from artefact_site.preflight import PreflightError, check_database

    errors = []
    for alias in databases or ():
        try:
            check_database(alias)
        except PreflightError as error:
            errors.append(Error(str(error), id="corpus.E001"))
    return errors
