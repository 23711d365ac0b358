"""Delete expired sessions and their messages, a batch at a time.

Each batch is its own short transaction, so the purge can run on millions of rows
beside live traffic without holding long locks. Messages go first, then the sessions
they belonged to. A session that came back to life meanwhile (its expiry moved forward)
is left alone, because every batch re-checks the expiry.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand
from django.db import models, transaction
from django.utils import timezone

from conversations.models import Message, Session


class Command(BaseCommand):
    help = "Delete expired chat sessions and all their messages, in batches."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=5000, help="Rows per delete (default 5000).")

    def handle(self, *args, batch_size: int, **options):
        started = time.perf_counter()
        now = timezone.now()
        messages = self.delete_messages_in_batches(Message.objects.filter(session__expires_at__lte=now), batch_size)
        sessions = self.delete_in_batches(Session.objects.filter(expires_at__lte=now), batch_size)
        seconds = time.perf_counter() - started
        self.stdout.write(f"Purged {sessions} expired sessions and {messages} messages in {seconds:.1f} s.")

    def delete_messages_in_batches(self, queryset, batch_size: int) -> int:
        """Messages, a batch a statement. The ORM's cascade would load every message and
        delete it 100 rows at a time because rows (feedback, citations) hang off it; those
        rows hang off nothing, so they go first by message id and the batch goes whole."""
        deleted = 0
        dependents = [relation for relation in Message._meta.related_objects if relation.on_delete is models.CASCADE]
        while ids := list(queryset.values_list("pk", flat=True)[:batch_size]):
            with transaction.atomic():
                for relation in dependents:
                    relation.related_model.objects.filter(**{f"{relation.field.name}__in": ids}).delete()
                deleted += Message.objects.filter(pk__in=ids)._raw_delete(Message.objects.db)
        return deleted

    def delete_in_batches(self, queryset, batch_size: int) -> int:
        deleted = 0
        while ids := list(queryset.values_list("pk", flat=True)[:batch_size]):
            _, per_model = queryset.filter(pk__in=ids).delete()
            deleted += per_model.get(queryset.model._meta.label, 0)
        return deleted
