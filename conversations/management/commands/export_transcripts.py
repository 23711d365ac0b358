"""Write transcripts out as JSON Lines or CSV (conversations/export.py), streamed: the
messages written from ``--since`` to the end of ``--until`` (days in the site's time
zone), by session then seq. Memory stays flat however many messages there are."""

from __future__ import annotations

import sys
from datetime import date, datetime, time, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from conversations import export


def day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def start_of(value: date) -> datetime:
    return timezone.make_aware(datetime.combine(value, time.min))


class Command(BaseCommand):
    help = "Export transcripts (one row a message) as JSON Lines or CSV."

    def add_arguments(self, parser):
        parser.add_argument("--since", type=day, required=True, help="First day, YYYY-MM-DD (inclusive).")
        parser.add_argument("--until", type=day, help="Last day, YYYY-MM-DD (inclusive; default: no end).")
        parser.add_argument("--format", choices=export.FORMATS, default="jsonl", dest="file_format")
        parser.add_argument("--output", help="File to write (default: standard output).")

    def handle(self, *args, since: date, until: date | None, file_format: str, output: str | None, **options):
        if until is not None and until < since:
            raise CommandError("--until is before --since")
        messages = export.messages_between(start_of(since), start_of(until + timedelta(days=1)) if until else None)
        chunks = export.encoded(export.message_rows(messages), file_format)
        if output is None:
            self.write_all(chunks, sys.stdout.buffer)
        else:
            with open(output, "wb") as destination:
                self.write_all(chunks, destination)

    def write_all(self, chunks, destination) -> None:
        for chunk in chunks:
            destination.write(chunk)
        destination.flush()
