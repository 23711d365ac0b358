"""What kb_ingest and kb_sync share: run each sync, print its report, fail if any failed."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.core.management.base import BaseCommand, CommandError

from knowledge.models import SyncRun, SyncStatus
from knowledge.sync import SyncError, run_report


def report_each(command: BaseCommand, attempts: Iterable[tuple[str, Callable[[], SyncRun]]]) -> None:
    """Run each (label, sync) in turn and print its run's report; a sync refused
    (``SyncError``) or failed counts against the command, which then exits non-zero."""
    tried = failed = 0
    for label, attempt in attempts:
        tried += 1
        try:
            run = attempt()
        except SyncError as error:
            command.stderr.write(f"{label}: {error}")
            failed += 1
            continue
        command.stdout.write(run_report(run))
        failed += run.status == SyncStatus.FAILED
    if failed:
        raise CommandError(f"{failed} of {tried} sources failed")
