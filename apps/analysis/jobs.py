"""RQ entry points. Thin: each calls a service; failures end in a clear analysis state.

A job whose analysis a researcher deleted meanwhile fails somewhere inside (the row, a file
or a foreign key is gone); it then ends quietly instead of as a failed job.

Workers run `rq.worker.SimpleWorker` (no fork per job), so the engine's model registry loads
each model once per worker process and CUDA state survives from one job to the next.
"""

from __future__ import annotations

import logging

from rq.job import Job

from apps.analysis import selectors, services
from apps.core.errors import ApplicationError

logger = logging.getLogger(__name__)

ABANDONED = "The worker running this analysis stopped before finishing; start the analysis again."
STOPPED = "The worker running this analysis was stopped (cold shutdown); start the analysis again."
DELETED = "Analysis %s was deleted before its job finished; nothing left to do."


def _deleted(analysis_id: str) -> bool:
    """After a job failed: whether only because its analysis is gone (then logged as such)."""
    if selectors.analysis_exists(analysis_id):
        return False
    logger.info(DELETED, analysis_id)
    return True


def run_analysis(analysis_id: str) -> None:
    try:
        services.run_analysis(analysis_id)
    except Exception as error:
        if _deleted(analysis_id):
            return
        services.mark_analysis_failed(analysis_id, f"The analysis failed: {error}")
        raise


def analysis_failed(job: Job, connection, exc_type, exc_value, traceback) -> None:
    """RQ's failure callback; also called for a job abandoned by a dead worker."""
    from rq.exceptions import AbandonedJobError

    analysis_id = job.args[0]
    if exc_type is AbandonedJobError or isinstance(exc_value, AbandonedJobError):
        services.mark_analysis_failed(analysis_id, ABANDONED)
    elif isinstance(exc_value, SystemExit | KeyboardInterrupt):
        # A second SIGTERM or SIGINT (RQ's cold shutdown) raised inside the job: no error of
        # the analysis, and SystemExit's text is empty.
        services.mark_analysis_failed(analysis_id, STOPPED)
    else:
        services.mark_analysis_failed(analysis_id, f"The analysis failed: {exc_value}")


def run_heatmaps(analysis_id: str, model_key: str, sentence_ids: list[str]) -> int:
    try:
        return services.compute_heatmaps(analysis_id, model_key, sentence_ids)
    except Exception:
        if _deleted(analysis_id):
            return 0
        raise


def embed_text_query(model_key: str, text: str) -> dict:
    """A text query's vector for a waiting web request (`services.embed_query`). A refusal is
    returned, not raised, so that the request can show its sentence."""
    try:
        return {"vector": services.compute_query_vector(text, model_key)}
    except ApplicationError as error:
        return {"error": error.code, "detail": error.sentence}


def run_text_heatmap(analysis_id: str, model_key: str, text: str) -> None:
    try:
        services.compute_text_heatmap(analysis_id, model_key, text)
    except Exception:
        if _deleted(analysis_id):
            return
        raise
