"""Background work of conversations, run by the task queue (the Procfile's worker; at
once, in the caller, in development and tests). Services only enqueue."""

from __future__ import annotations

import logging

from django_tasks import task

logger = logging.getLogger(__name__)


@task()
def notify_handoff(session_pk: int) -> None:
    """Tell the site's team that the visitor of session ``session_pk`` asked for a person.

    Sends nothing yet: it only logs the request; the signed webhook is delivered here.
    """
    logger.info("Session %s is waiting for a person", session_pk)
