"""Put pages and files into the knowledge base: ``manage.py kb_ingest SOURCE...``.

A SOURCE is a file or a directory (HTML, Markdown, plain text, PDF), a page URL, or a
sitemap URL (a sitemap index, or ``.xml.gz``, too). Each becomes a source the admin
lists; running the command again on it is its re-sync (a directory read again loses the
documents of files no longer in it). Each run's report is printed.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from knowledge.management.runs import report_each
from knowledge.models import Source, SourceKind
from knowledge.sync import directory_files, files_store, source_for_location, source_sync


class Command(BaseCommand):
    help = "Ingest files, directories, page URLs or sitemap URLs into the knowledge base."

    def add_arguments(self, parser):
        parser.add_argument("sources", nargs="+", metavar="SOURCE", help="A file, directory, page URL or sitemap URL.")

    def handle(self, *args, sources: list[str], **options):
        report_each(self, ((location, partial(self.ingest, location)) for location in sources))

    def ingest(self, location: str):
        if location.startswith(("http://", "https://")):
            return source_sync(source=source_for_location(location))
        path = Path(location).resolve()
        if not path.exists():
            raise CommandError(f"{location}: no such file or directory, and not an http(s) URL")
        source, _ = Source.objects.get_or_create(kind=SourceKind.FILES, location=str(path))
        return files_store(source=source, files=directory_files(path), complete=True)
