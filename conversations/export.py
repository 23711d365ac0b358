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

from django.db.models import F, Func, IntegerField, Q, QuerySet, TextField, Value
from django.db.models.fields.json import KT
from django.db.models.lookups import GreaterThan

from conversations.models import Message, Role, Session

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
to_json = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def row_tuple(*expressions) -> Func:
    """``(a, b)``: an SQL row value, for keyset comparisons."""
    return Func(*expressions, function="", output_field=IntegerField())


class IsoTime(Func):
    """A UTC timestamp as ISO 8601 text, made by the database: parsing it into a
    datetime and formatting it back cost more per row than the rest of the export."""

    output_field = TextField()

    def as_postgresql(self, compiler, connection):
        template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
        return self.as_sql(compiler, connection, template=template)

    def as_sqlite(self, compiler, connection):
        # Stored as UTC "YYYY-MM-DD HH:MM:SS[.ffffff]".
        return self.as_sql(compiler, connection, template="replace(%(expressions)s, ' ', 'T') || '+00:00'")


class CitedUrls(Func):
    """The URLs an answer's stored citations point to, in order, as a JSON array (an
    uploaded file's citation has none; anything that is not a string is skipped). Read
    by the database: the citations' titles and snippets never reach Python, and the
    array arrives as text, decoded only when it holds something."""

    output_field = TextField()

    def as_postgresql(self, compiler, connection):
        template = "jsonb_path_query_array(%(expressions)s, '$.citations[*].url ? (@.type() == \"string\")')"
        return self.as_sql(compiler, connection, template=template)

    def as_sqlite(self, compiler, connection):
        # Paths from the top, so an element that is not an object answers NULL, not an error.
        template = (
            "(SELECT json_group_array(json_extract(%(expressions)s, '$.citations[' || key || '].url')) "
            "FROM json_each(%(expressions)s, '$.citations') "
            "WHERE json_type(%(expressions)s, '$.citations[' || key || '].url') = 'text')"
        )
        return self.as_sql(compiler, connection, template=template)


def message_rows(messages: QuerySet[Message], *, batch_size: int = BATCH_SIZE) -> Iterator[dict]:
    """Every message of ``messages`` as an export row (keys in ``FIELDS`` order), by
    session then seq, read in keyset batches (database)."""
    columns = messages.values_list(
        "session_id",
        "seq",
        "session__public_id",
        "role",
        "content",
        IsoTime("created_at"),
        "channel",
        "author_name",
        "feedback__rating",
        "feedback__comment",
        KT("metadata__answer_status"),
        CitedUrls("metadata"),
    ).order_by("session_id", "seq")
    after = None
    while True:
        batch = columns
        if after is not None:
            batch = batch.filter(
                GreaterThan(row_tuple(F("session_id"), F("seq")), row_tuple(Value(after[0]), Value(after[1])))
            )
        rows = list(batch[:batch_size])
        for _, seq, public_id, role, content, created_at, channel, author, rating, comment, status, urls in rows:
            yield {
                "session_id": public_id,
                "seq": seq,
                "role": role,
                "content": content,
                "created_at": created_at,
                "channel": channel,
                "author_name": author,
                "answer_status": status,
                "citations": json.loads(urls) if role == Role.ASSISTANT and urls != "[]" else [],
                "feedback_rating": rating,
                "feedback_comment": comment,
            }
        if len(rows) < batch_size:
            return
        after = rows[-1][:2]


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
        lines.append(to_json(row))
        if len(lines) == per_chunk:
            yield ("\n".join(lines) + "\n").encode()
            lines = []
    if lines:
        yield ("\n".join(lines) + "\n").encode()


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
        # A text cell a spreadsheet would run as a formula gets a quote in front, so it
        # is shown as text; numbers and empty cells stay as they are.
        cells = row.values()  # in FIELDS order
        writer.writerow(["'" + c if type(c) is str and c.startswith(FORMULA_STARTS) else c for c in cells])
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
