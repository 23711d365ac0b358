"""Put the demo site (/widget/demo/) in the knowledge base when it is empty.

``./dev.sh serve`` runs this after migrating, so that a new user's first question to
the widget on the demo site ("Which tent is best for two people?") is answered from the
demo's own pages, with their links, by the offline responder. The pages are rendered in
this process, not fetched: the server is not running yet, and a crawl of 127.0.0.1
would need CHATBOT_KB_ALLOW_PRIVATE_HOSTS. They are stored under the URLs the
development server will serve them at, as a sitemap source, so that ``kb_sync`` can
re-read them like any other site's once the server runs (with that setting on).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from knowledge.extract import extract
from knowledge.index import store_document
from knowledge.models import Source, SourceKind, SourceState, SyncRun, SyncStatus
from widget.views import demo_paths


class Command(BaseCommand):
    help = "Ingest the demo site's pages (/widget/demo/) if the knowledge base has no sources yet."

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="where the development server serves this app; the stored pages link there",
        )

    def handle(self, *, base_url: str, **options):
        base_url = base_url.rstrip("/")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise CommandError(f"--base-url must be an http(s) URL such as http://127.0.0.1:8000, not {base_url!r}")
        # Staff who added sources of their own have chosen what the bot answers from.
        # (A knowledge base emptied on purpose gets the demo back on the next serve: the
        # price of a first run that needs no flag.)
        if Source.objects.exists():
            self.stdout.write("The knowledge base has sources already; the demo site is not added.")
            return
        # One transaction: an interrupted first run leaves no half-filled source that
        # would stop the next run from completing it.
        with transaction.atomic():
            source = Source.objects.create(kind=SourceKind.SITEMAP, location=base_url + reverse("widget-demo-sitemap"))
            run = SyncRun.objects.create(source=source)
            client = Client(HTTP_HOST=parts.netloc, secure=parts.scheme == "https")
            for path in demo_paths():
                response = client.get(path)
                if response.status_code != 200:
                    raise CommandError(f"{path} answered {response.status_code}; is {parts.hostname} in ALLOWED_HOSTS?")
                url = base_url + path
                page = extract(response.content, name=url, content_type=response["Content-Type"])
                store_document(source=source, url=url, title=page.title, markdown=page.markdown)
                run.added += 1
            now = timezone.now()
            run.status, run.finished_at = SyncStatus.SUCCEEDED, now
            run.save()
            source.state, source.last_synced_at = SourceState.READY, now
            source.save()
        home = base_url + reverse("widget-demo")
        self.stdout.write(f"Added the demo site to the knowledge base: {run.added} pages from {home}.")
