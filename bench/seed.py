"""Histories for the benchmark, written straight into the tables (COPY), not through the
API: seeding 150,000 messages over HTTP would take longer than the benchmark itself.

The rows are what the API would have written: consecutive ``seq`` from 1, the
session's ``last_seq`` equal to its message count, alternating user and assistant
messages of realistic length with their token estimates. Call after ``django.setup()``.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from conversations.models import Channel, Message, Role, Session
from conversations.tokens import estimate_tokens

FILLER = (
    "Our order arrived on Tuesday but the invoice lists a different shipping address, "
    "and the tracking page still says the parcel is in transit. Could you check what happened "
    "and tell me whether I need to do anything before the return window closes?"
)


def message_text(index: int) -> tuple[str, str]:
    """The role and text of the ``index``-th message (from 0) of a seeded session."""
    if index % 2 == 0:
        return Role.USER.value, f"Question {index // 2 + 1}: {FILLER[: 60 + index % 120]}"
    return Role.ASSISTANT.value, f"Answer {index // 2 + 1}: {FILLER} {FILLER[: index % 200]}"


def create_sessions(count: int, size: int, *, label: str) -> list[str]:
    """``count`` sessions holding ``size`` messages each; returns their public ids."""
    now = timezone.now()
    sessions = Session.objects.bulk_create(
        [
            Session(
                source=Channel.API,
                title=f"bench {label} #{n}",
                last_seq=size,
                created_at=now,
                last_activity_at=now,
                expires_at=now + timedelta(days=30),
            )
            for n in range(count)
        ],
        batch_size=1000,
    )
    # bulk_create returns primary keys on PostgreSQL.
    texts = [message_text(i) for i in range(size)]
    tokens = [estimate_tokens(text) for _, text in texts]
    table = Message._meta.db_table
    columns = "session_id, seq, role, content, metadata, channel, token_count, created_at"
    with transaction.atomic(), connection.cursor() as cursor:
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # noqa: S608 - our own table name
            for session in sessions:
                for index, (role, text) in enumerate(texts):
                    copy.write_row((session.pk, index + 1, role, text, "{}", Channel.API.value, tokens[index], now))
    return [session.public_id for session in sessions]


def history(size: int) -> list[tuple[str, str]]:
    """The same messages ``create_sessions`` writes, for the alternatives' stores."""
    return [message_text(i) for i in range(size)]
