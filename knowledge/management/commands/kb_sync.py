"""Re-sync the knowledge base's page and sitemap sources: ``manage.py kb_sync [--source ID]``.

Unchanged pages cost a conditional GET; changed ones are replaced; pages gone from the
sitemap or answering 404/410 are removed. Run it on a schedule (daily, say). Uploaded
files are not fetched; ``kb_ingest DIRECTORY`` re-reads a directory.
"""

from __future__ import annotations

from functools import partial

from django.core.management.base import BaseCommand, CommandError

from knowledge.management.runs import report_each
from knowledge.models import Source, SourceKind
from knowledge.sync import source_sync


class Command(BaseCommand):
    help = "Re-sync every page and sitemap source of the knowledge base, or one."

    def add_arguments(self, parser):
        parser.add_argument("--source", type=int, metavar="ID", help="Only this source (its id in the admin).")

    def handle(self, *args, source: int | None, **options):
        sources = Source.objects.exclude(kind=SourceKind.FILES).order_by("pk")
        if source is not None:
            sources = Source.objects.filter(pk=source)
            if not sources.exists():
                raise CommandError(f"No source with id {source}")
        report_each(self, ((each.location, partial(source_sync, source=each)) for each in sources))
