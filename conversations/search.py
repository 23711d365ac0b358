"""Message text search through a full-text index, not a scan of every message.

PostgreSQL answers from a GIN index over ``to_tsvector('english', content)`` (an
expression index: the query repeats the same expression, so the planner can use it),
SQLite from an external-content FTS5 table kept in step by triggers (``porter
unicode61``). Both are created by the migration ``0006_message_search``. Both stem
English words, so "shipping" finds "shipped", and both match every word a staff member
types, anywhere in a message.

What a person types is reduced to words before either database sees it: no character
of it is ever query syntax, so quotes, dashes, stars, ``OR`` or ``NEAR(`` can never make
a search fail, and both databases understand the same thing.
"""

from __future__ import annotations

import re

from django.contrib.postgres.search import SearchQuery, SearchVectorField
from django.db import connection
from django.db.models import F, Func, QuerySet
from django.db.models.expressions import RawSQL

from conversations.models import Message, Session

# The text search configuration of the PostgreSQL index; a query must use the same one.
POSTGRES_CONFIG = "english"
# The SQLite FTS5 table over messages (see the migration).
SQLITE_FTS_TABLE = "conversations_message_fts"
# More terms than this are dropped: each one costs the index a lookup.
MAX_TERMS = 16

WORD = re.compile(r"\w+")


class MessageDocument(Func):
    """``to_tsvector('english', content)``: exactly the indexed expression."""

    template = f"to_tsvector('{POSTGRES_CONFIG}'::regconfig, %(expressions)s)"
    output_field = SearchVectorField()


def search_words(text: str) -> list[str]:
    """The words to match: punctuation, quotes and operators dropped. Phrases are not
    kept: matching words in order needs each candidate's text parsed again on
    PostgreSQL (the index holds no positions it can trust without a recheck), which
    at a million messages costs seconds for common words."""
    return WORD.findall(text)[:MAX_TERMS]


def messages_matching(text: str) -> QuerySet[Message]:
    """Messages holding every word of ``text``, in any form English stemming folds
    together; none when ``text`` has no word."""
    words = search_words(text)
    if not words:
        return Message.objects.none()
    if connection.vendor == "postgresql":
        query = SearchQuery(" ".join(words), search_type="plain", config=POSTGRES_CONFIG)
        return Message.objects.annotate(document=MessageDocument(F("content"))).filter(document=query)
    if connection.vendor == "sqlite":
        # Each word a double-quoted FTS5 string, so none is syntax; together, all must match.
        query = " ".join(f'"{word}"' for word in words)
        # Our own table's name; the query is a parameter.
        sql = f"SELECT rowid FROM {SQLITE_FTS_TABLE} WHERE {SQLITE_FTS_TABLE} MATCH %s"  # noqa: S608
        matching_ids = RawSQL(sql, [query])  # noqa: S611
        return Message.objects.filter(pk__in=matching_ids)
    raise NotImplementedError(f"no message search index on {connection.vendor}")


def sessions_matching(sessions: QuerySet[Session], text: str) -> QuerySet[Session]:
    """Those of ``sessions`` with a message matching ``text`` (``messages_matching``)."""
    return sessions.filter(pk__in=messages_matching(text).values("session_id"))
