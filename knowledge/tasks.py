"""Background work of the knowledge base, run by the task queue (the Procfile's worker;
at once, in the caller, in development and tests). Views and the admin only enqueue."""

from __future__ import annotations

import logging

from django_tasks import task

from knowledge.models import Source
from knowledge.sync import RUN_COUNTS, SyncError, source_sync

logger = logging.getLogger(__name__)


@task()
def sync_source(source_id: int) -> dict[str, int] | None:
    """Re-sync one page or sitemap source; returns the run's counts. A source deleted or
    already syncing by the time the worker gets to it is skipped, not an error."""
    source = Source.objects.filter(pk=source_id).first()
    if source is None:
        return None
    try:
        run = source_sync(source=source)
    except SyncError as error:
        logger.info("sync of source %s skipped: %s", source_id, error)
        return None
    return {name: getattr(run, name) for name in ("requests", *RUN_COUNTS)}
