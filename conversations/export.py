"""Transcripts out of the database, as JSON Lines or CSV, streamed.

Messages are read in keyset batches over the ``(session_id, seq)`` index (each batch a
short query that starts where the last one ended: no transaction or cursor held open
across the export, no OFFSET that grows), and each batch is written out before the
next is read, so memory stays flat however many messages there are. A selection of
sessions is taken as its primary keys first (a few bytes a session), then read a slice
of sessions at a time, so the selection's query (filters, a search) runs once.

One row a message: the session's public id, the message's place, role, text, time,
channel and author, with what an answer carries (its ``answer_status``, the URLs it
cited) and the visitor's feedback on it when there is some.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import datetime

from django.db.models import F, Func, IntegerField, Q, QuerySet, Value
from django.db.models.fields.json import KT
from django.db.models.lookups import GreaterThan

from conversations.models import Message, Session

FIELDS = (
    "session_id",
    "seq",
    "role",
    "content",
    "created_at",
    "channel",
    "author_name",
    "answer_status",
    "citations",
    "feedback_rating",
    "feedback_comment",
)
BATCH_SIZE = 2000  # messages a query
SESSIONS_PER_SLICE = 500  # session keys in one ``IN (…)``
FORMATS = ("jsonl", "csv")
CONTENT_TYPES = {"jsonl": "application/x-ndjson; charset=utf-8", "csv": "text/csv; charset=utf-8"}
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def row_tuple(*expressions) -> Func:
    """``(a, b)``: an SQL row value, for keyset comparisons."""
    return Func(*expressions, function="", output_field=IntegerField())


def message_rows(messages: QuerySet[Message], *, batch_size: int = BATCH_SIZE) -> Iterator[dict]:
    """Every message of ``messages`` as an export row, by session then seq, read in
    keyset batches (database)."""
    columns = messages.values_list(
        "session_id",
        "seq",
        "session__public_id",
        "role",
        "content",
        "created_at",
        "channel",
        "author_name",
        "feedback__rating",
        "feedback__comment",
        KT("metadata__answer_status"),
        F("metadata__citations"),
    ).order_by("session_id", "seq")
    after = None
    while True:
        batch = columns
        if after is not None:
            batch = batch.filter(
                GreaterThan(row_tuple(F("session_id"), F("seq")), row_tuple(Value(after[0]), Value(after[1])))
            )
        rows = list(batch[:batch_size])
        for _, seq, public_id, role, content, created_at, channel, author, rating, comment, status, cited in rows:
            yield {
                "session_id": public_id,
                "seq": seq,
                "role": role,
                "content": content,
                "created_at": created_at.isoformat(),
                "channel": channel,
                "author_name": author,
                "answer_status": status,
                "citations": cited_urls(cited),
                "feedback_rating": rating,
                "feedback_comment": comment,
            }
        if len(rows) < batch_size:
            return
        after = rows[-1][:2]


def cited_urls(citations) -> list[str]:
    """The URLs an answer's stored citations point to, in order (an uploaded file has none)."""
    if not isinstance(citations, list):
        return []
    return [url for c in citations if isinstance(c, dict) and isinstance(url := c.get("url"), str) and url]


def session_rows(sessions: QuerySet[Session], *, batch_size: int = BATCH_SIZE) -> Iterator[dict]:
    """Every message of ``sessions`` as export rows, session after session (database)."""
    keys = sorted(sessions.order_by().values_list("pk", flat=True))
    for start in range(0, len(keys), SESSIONS_PER_SLICE):
        sliced = Message.objects.filter(session_id__in=keys[start : start + SESSIONS_PER_SLICE])
        yield from message_rows(sliced, batch_size=batch_size)


def messages_between(since: datetime | None, until: datetime | None) -> QuerySet[Message]:
    """Messages written at or after ``since`` and before ``until`` (either may be open)."""
    window = Q()
    if since is not None:
        window &= Q(created_at__gte=since)
    if until is not None:
        window &= Q(created_at__lt=until)
    return Message.objects.filter(window)


def jsonl_lines(rows: Iterable[dict], *, per_chunk: int = 500) -> Iterator[bytes]:
    """One JSON object a line, UTF-8, a chunk of ``per_chunk`` lines at a time."""
    lines = []
    for row in rows:
        lines.append(json.dumps(row, ensure_ascii=False))
        if len(lines) == per_chunk:
            yield ("\n".join(lines) + "\n").encode()
            lines = []
    if lines:
        yield ("\n".join(lines) + "\n").encode()


def spreadsheet_safe(value):
    """A text cell a spreadsheet would run as a formula gets a quote in front, so it is
    shown as text; numbers and empty cells stay as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_lines(rows: Iterable[dict], *, per_chunk: int = 500) -> Iterator[bytes]:
    """A header and one row a message, UTF-8 with a byte order mark (so spreadsheets
    read it as UTF-8); citations as URLs separated by spaces."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(FIELDS)
    count = 0
    for row in rows:
        row["citations"] = " ".join(row["citations"])
        writer.writerow([spreadsheet_safe(row[name]) for name in FIELDS])
        count += 1
        if count == per_chunk:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
            count = 0
    yield buffer.getvalue().encode()


def encoded(rows: Iterable[dict], file_format: str) -> Iterator[bytes]:
    """``rows`` as ``file_format`` (one of ``FORMATS``), in chunks of bytes."""
    return jsonl_lines(rows) if file_format == "jsonl" else csv_lines(rows)


async def on_database_thread(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """``chunks`` for an ASGI response: each pulled on a database thread that gives its
    connection back after every chunk, so the event loop never waits on a query and the
    response never collects the whole export first (as Django does with a plain
    iterator under ASGI)."""
    from conversations import inflight

    def pull() -> bytes | None:
        return next(chunks, None)

    while (chunk := await inflight.on_database_thread(pull)()) is not None:
        yield chunk
