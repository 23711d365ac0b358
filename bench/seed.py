"""Histories for the benchmark, written straight into the tables (COPY), not through the
API: seeding 150,000 messages over HTTP would take longer than the benchmark itself.

The rows are what the API would have written: consecutive ``seq`` from 1, the
session's ``last_seq`` equal to its message count, alternating user and assistant
messages of realistic length with their token estimates. Call after ``django.setup()``.

Two kinds: ``create_sessions``, the same filler conversation in every session (the turn
and history items), and ``create_conversations``, a shop's visitors asking varied
questions over several weeks, answered with citations and the metadata a real turn
stores (the admin item: search needs words that differ, the insight page days).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from conversations.models import (
    AnswerStatus,
    Channel,
    DailyUsage,
    Feedback,
    Message,
    MessageDraft,
    Rating,
    Role,
    Session,
    latency_of,
    title_from,
    turn_records,
)
from conversations.tokens import estimate_tokens

FILLER = (
    "Our order arrived on Tuesday but the invoice lists a different shipping address, "
    "and the tracking page still says the parcel is in transit. Could you check what happened "
    "and tell me whether I need to do anything before the return window closes?"
)
MESSAGE_COLUMNS = ("session_id", "seq", "role", "content", "metadata", "channel", "token_count", "created_at")


def message_text(index: int) -> tuple[str, str]:
    """The role and text of the ``index``-th message (from 0) of a seeded session."""
    if index % 2 == 0:
        return Role.USER.value, f"Question {index // 2 + 1}: {FILLER[: 60 + index % 120]}"
    return Role.ASSISTANT.value, f"Answer {index // 2 + 1}: {FILLER} {FILLER[: index % 200]}"


def new_sessions(specs: list[dict]) -> list[Session]:
    """Sessions made from field values (``bulk_create`` returns their keys on PostgreSQL)."""
    return Session.objects.bulk_create([Session(**spec) for spec in specs], batch_size=1000)


def copy_messages(rows: Iterable[tuple], columns: tuple[str, ...] = MESSAGE_COLUMNS) -> None:
    """Messages as ``columns`` tuples, in one COPY and one transaction."""
    table = Message._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 0")  # a large COPY outlasts the server's limit
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:  # noqa: S608 - our own table name
            for row in rows:
                copy.write_row(row)


def create_sessions(count: int, size: int, *, label: str) -> list[str]:
    """``count`` sessions holding ``size`` messages each; returns their public ids."""
    now = timezone.now()
    expires_at = now + timedelta(days=30)
    sessions = new_sessions(
        [
            {
                "source": Channel.API,
                "title": f"bench {label} #{n}",
                "last_seq": size,
                "created_at": now,
                "last_activity_at": now,
                "expires_at": expires_at,
            }
            for n in range(count)
        ]
    )
    texts = [message_text(i) for i in range(size)]
    tokens = [estimate_tokens(text) for _, text in texts]
    copy_messages(
        (session.pk, index + 1, role, text, "{}", Channel.API.value, tokens[index], now)
        for session in sessions
        for index, (role, text) in enumerate(texts)
    )
    return [session.public_id for session in sessions]


def history(size: int) -> list[tuple[str, str]]:
    """The same messages ``create_sessions`` writes, for the alternatives' stores."""
    return [message_text(i) for i in range(size)]


# --- A shop's conversations -----------------------------------------------------------

PRODUCTS = (
    "tent", "two-person tent", "family tent", "tunnel tent", "sleeping bag", "down sleeping bag", "sleeping mat",
    "pillow", "backpack", "daypack", "rain jacket", "softshell", "fleece", "base layer", "hiking boots",
    "trail shoes", "sandals", "gaiters", "camping stove", "gas canister", "cookset", "headlamp", "lantern",
    "water filter", "bottle", "trekking poles", "hammock", "tarp", "cooler box", "camping chair", "table",
    "first aid kit", "compass", "GPS watch", "binoculars", "bivy bag", "dry bag", "knife", "gloves", "beanie",
)  # fmt: skip
TOPICS = (
    ("shipping", "shipped", "ships"), ("delivery", "delivered", "delivering"), ("return", "returned", "returning"),
    ("refund", "refunded", "refunding"), ("exchange", "exchanged", "exchanging"), ("warranty", "repaired", "repair"),
    ("invoice", "invoiced", "billing"), ("discount", "reduced", "discounting"), ("size", "sized", "sizing"),
    ("stock", "restocked", "restocking"), ("order", "ordered", "ordering"), ("payment", "paid", "paying"),
    ("tracking", "tracked", "tracking"), ("rental", "rented", "renting"), ("cleaning", "cleaned", "washing"),
)  # fmt: skip
PLACES = (
    "Norway", "Sweden", "Finland", "Denmark", "Zürich", "Geneva", "Vienna", "Munich", "Berlin", "Hamburg", "Lyon",
    "Paris", "Madrid", "Seville", "Lisbon", "Porto", "Dublin", "Edinburgh", "Rotterdam", "Antwerp", "Kraków",
    "Prague", "Ljubljana", "Milan", "the Alps", "the Dolomites", "Scotland", "Iceland", "Lapland", "the Pyrenees",
)  # fmt: skip
QUESTIONS = (
    "Do you ship the {product} to {place}?",
    "How long does {topic} take for a {product} to {place}?",
    "My {product} was {past} last week but the zip broke, what now?",
    "Is the {product} waterproof enough for {place} in autumn?",
    "Can I get a {topic} on the {product} if I keep it within 30 days?",
    "Which {product} would you recommend for a week in {place}?",
    "I {past} the wrong {product}, can I swap it for a bigger one?",
    "What does {topic} cost for a {product} and a {product2}?",
    "Where is my invoice for the {product}, order #{order}?",
    "Does the {product} come with a {topic} card?",
    "How heavy is the {product}, and does it pack small?",
    "Are you {verb} the {product} again before summer?",
    "Order #{order} still says {topic} pending, can you check?",
)
ANSWERS = (
    "Yes, we ship the {product} to {place}; {topic} usually takes three to five working days [1].",
    "The {product} is covered by our two-year warranty, and a broken zip is repaired free of charge [1].",
    "For {place} in autumn I would take the {product} with a taped seam; it stays dry in steady rain [1][2].",
    "You can return the {product} within 30 days for a refund, as long as it is unused [1].",
    "The {product} weighs about 1.4 kg and packs to the size of a loaf of bread [2].",
    "Your invoice is attached to the confirmation email; you can also download it from your account [1].",
    "We expect the {product} back in stock in about two weeks; you can ask to be notified [1].",
    "An exchange for a bigger {product} is free: start it from your order page and we send a label [1][2].",
    "{topic_title} for a {product} and a {product2} together costs 4.90, and is free over 50 euros [1].",
    "Order #{order} left our warehouse yesterday; the carrier's page updates overnight [1].",
)
NO_ANSWER = "I could not find that on our pages. Please contact our support team, who will gladly help."
PAGES = (
    ("Shipping", "https://shop.example/help/shipping"), ("Returns", "https://shop.example/help/returns"),
    ("Warranty", "https://shop.example/help/warranty"), ("Sizes", "https://shop.example/help/sizes"),
    ("Payment", "https://shop.example/help/payment"), ("Tents", "https://shop.example/tents"),
    ("Sleeping bags", "https://shop.example/sleeping-bags"), ("Jackets", "https://shop.example/jackets"),
)  # fmt: skip
THEMES = {"product": PRODUCTS, "topic": TOPICS, "place": PLACES}
SOURCES = (Channel.WIDGET, Channel.WIDGET, Channel.PAGE, Channel.API)


@dataclass(frozen=True)
class SeededMessage:
    """One message of a seeded conversation, as ``chat.finish_turn`` drafts it."""

    role: str
    content: str
    metadata: dict = field(default_factory=dict)
    answer_status: str | None = None  # on the answer that ends a turn

    def draft(self, channel: str) -> MessageDraft:
        return MessageDraft(
            role=self.role,
            content=self.content,
            metadata=self.metadata,
            channel=channel,
            answer_status=self.answer_status,
        )


def conversation(rng: random.Random, size: int) -> list[SeededMessage]:
    """``size`` messages of one visitor's conversation. A visitor keeps to one product,
    topic and place for most turns, as people do. Answers carry what ``finish_turn``
    stores: the model's metadata (usage, latency), the citations and the turn's outcome;
    a no-answer is strict mode's, which asks no model (no usage, no latency)."""
    messages = []
    theme = {"product": rng.choice(PRODUCTS), "topic": rng.choice(TOPICS), "place": rng.choice(PLACES)}
    order = rng.randint(10000, 99999)
    for turn in range(size // 2):
        if turn and rng.random() < 0.3:  # on to another product, topic or place
            key = rng.choice(tuple(theme))
            theme[key] = rng.choice(THEMES[key])
        topic = theme["topic"]
        words = {
            "product": theme["product"],
            "product2": rng.choice(PRODUCTS),
            "place": theme["place"],
            "topic": topic[0],
            "topic_title": topic[0].capitalize(),
            "past": topic[1],
            "verb": topic[2],
            "order": order,
        }
        question = rng.choice(QUESTIONS).format(**words)
        if turn:
            question = rng.choice(("Thanks. ", "OK, and ", "Also: ", "")) + question
        messages.append(SeededMessage(Role.USER.value, question))
        if rng.random() < 0.85:
            text = " ".join(rng.choice(ANSWERS).format(**words) for _ in range(rng.randint(1, 3)))
            metadata = {
                "provider": "openai",
                "model": "gpt-4o-mini",
                "usage": {"prompt_tokens": rng.randint(600, 2400), "completion_tokens": rng.randint(40, 220)},
                "finish_reason": "stop",
                "latency_ms": round(rng.uniform(400, 2600), 1),
                "citations": [
                    {"id": n, "title": title, "url": url, "heading": "", "snippet": question[:120]}
                    for n, (title, url) in enumerate(rng.sample(PAGES, 2), start=1)
                ],
                "answer_status": AnswerStatus.ANSWERED.value,
            }
            messages.append(SeededMessage(Role.ASSISTANT.value, text, metadata, AnswerStatus.ANSWERED.value))
        else:
            metadata = {
                "provider": "knowledge",
                "finish_reason": "no_answer",
                "citations": [],
                "answer_status": AnswerStatus.NO_ANSWER.value,
            }
            messages.append(SeededMessage(Role.ASSISTANT.value, NO_ANSWER, metadata, AnswerStatus.NO_ANSWER.value))
    return messages


def create_conversations(count: int, size: int, *, days: int, seed: int = 12, chunk: int = 2000) -> int:
    """``count`` sessions of ``size`` messages each, started evenly over the last ``days``
    days, a message every 40 s. Every row a real turn writes is here: the turn's outcome
    and latency in their columns, the cited pages and unanswered questions from
    ``models.turn_records`` itself, each day's tokens per session in ``DailyUsage``
    (``spend.record_daily_usage``'s UTC day), feedback on one answer in 20. Returns the
    messages made. Written ``chunk`` sessions at a time, so memory does not grow with
    ``count``."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible data set, not a secret
    now = timezone.now()
    step = (days * 86400 - size * 40) / count
    for first in range(0, count, chunk):
        starts = [now - timedelta(days=days, seconds=-step * n) for n in range(first, min(count, first + chunk))]
        chats = [conversation(rng, size) for _ in starts]
        sessions = new_sessions(
            [
                {
                    "source": rng.choice(SOURCES),
                    "title": title_from([chat[0].draft(Channel.API)]),
                    "last_seq": size,
                    "created_at": start,
                    "last_activity_at": start + timedelta(seconds=40 * (size - 1)),
                    "expires_at": start + timedelta(days=31),
                }
                for chat, start in zip(chats, starts, strict=True)
            ]
        )
        drafts = {
            session.pk: ([message.draft(session.source) for message in chat], start)
            for session, chat, start in zip(sessions, chats, starts, strict=True)
        }
        copy_messages(
            (
                (
                    pk,
                    index + 1,
                    draft.role,
                    draft.content,
                    json.dumps(draft.metadata),
                    draft.channel,
                    estimate_tokens(draft.content),
                    start + timedelta(seconds=40 * index),
                    draft.answer_status,
                    latency_of(draft.metadata) if draft.answer_status else None,
                )
                for pk, (chat, start) in drafts.items()
                for index, draft in enumerate(chat)
            ),
            columns=(*MESSAGE_COLUMNS, "answer_status", "latency_ms"),
        )
        copy_turn_records(drafts)
    rate_answers()
    record_usage()
    return count * size


def copy_turn_records(drafts: dict[int, tuple[list[MessageDraft], datetime]]) -> None:
    """The rows ``models.turn_records`` makes for each turn-ending message of these
    sessions ({session key: (drafts, first message's time)}), written with COPY."""
    ends = Message.objects.filter(session__in=drafts, answer_status__isnull=False).values_list("pk", "session", "seq")
    rows: dict[type, list[tuple]] = {}
    for pk, session_pk, seq in ends.order_by():
        chat, start = drafts[session_pk]
        draft, question = chat[seq - 1], chat[seq - 2] if seq > 1 else None
        for record in turn_records(draft, question=question, now=start + timedelta(seconds=40 * (seq - 1))):
            columns = [f.column for f in type(record)._meta.concrete_fields if not f.primary_key]
            record.message_id = pk
            rows.setdefault(type(record), []).append(tuple(getattr(record, column) for column in columns))
    with transaction.atomic(), connection.cursor() as cursor:
        for model, values in rows.items():
            columns = ", ".join(f.column for f in model._meta.concrete_fields if not f.primary_key)
            with cursor.copy(f"COPY {model._meta.db_table} ({columns}) FROM STDIN") as copy:  # noqa: S608 - our tables
                for row in values:
                    copy.write_row(row)


def rate_answers() -> None:
    """Feedback on every 20th answer, two thirds helpful, written a minute after it."""
    feedback, messages = Feedback._meta.db_table, Message._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 0")
        cursor.execute(
            f"INSERT INTO {feedback} (message_id, rating, comment, created_at, updated_at) "  # noqa: S608 - our tables
            "SELECT id, CASE WHEN id %% 3 = 0 THEN %s ELSE %s END, '', created_at + interval '1 minute', "
            f"created_at + interval '1 minute' FROM {messages} WHERE role = %s AND id %% 20 = 0",
            [Rating.NOT_HELPFUL.value, Rating.HELPFUL.value, Role.ASSISTANT.value],
        )


def record_usage() -> None:
    """Each session's turns and tokens per UTC day, from the answers a model wrote (its
    reported usage), as ``spend.record_daily_usage`` counts them; strict mode's
    no-answer asked no model and counts nothing."""
    usage, messages = DailyUsage._meta.db_table, Message._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 0")
        cursor.execute(
            f"INSERT INTO {usage} (day, session_id, turns, prompt_tokens, completion_tokens) "  # noqa: S608
            "SELECT (created_at AT TIME ZONE 'UTC')::date, session_id, count(*), "
            "sum((metadata->'usage'->>'prompt_tokens')::bigint), "
            f"sum((metadata->'usage'->>'completion_tokens')::bigint) FROM {messages} "
            "WHERE answer_status IS NOT NULL AND metadata -> 'usage' IS NOT NULL GROUP BY 1, 2",
        )
