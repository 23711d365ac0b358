"""Chat sessions and their messages.

A ``Session`` is a conversation a visitor can continue from anywhere: its public id is
the capability that grants access, so it is long, random and never chosen by a client.
``Message`` rows are append-only; each carries ``seq``, its place in the session, taken
from a counter on the session row while that row is locked, so concurrent turns can
never interleave or reuse a number.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from conversations import live
from conversations.display import visible
from conversations.ids import is_well_formed, new_public_id, shorten
from conversations.tokens import estimate_tokens

TITLE_MAX_CHARS = 80


def session_expiry_from(moment):
    return moment + timedelta(days=settings.CHATBOT_SESSION_TTL_DAYS)


class Channel(models.TextChoices):
    WIDGET = "widget", "Widget"
    PAGE = "page", "Full page"
    API = "api", "API"


class AnswerStatus(StrEnum):
    """How a turn ended (``chat.finish_turn``); the API's ``answer_status``."""

    ANSWERED = "answered"
    # The knowledge base holds pages, but none of them answers this question.
    NO_ANSWER = "no_answer"
    # Staff have taken the conversation over: the visitor's message was stored, and a
    # person answers it, not the model.
    WITH_STAFF = "with_staff"


class Role(models.TextChoices):
    USER = "user", "User"
    ASSISTANT = "assistant", "Assistant"
    SYSTEM = "system", "System"


class SessionQuerySet(models.QuerySet):
    def active(self):
        return self.filter(expires_at__gt=timezone.now())

    def expired(self):
        return self.filter(expires_at__lte=timezone.now())

    def visible_to(self, user):
        """Sessions ``user`` may list: staff see all, a signed-in user their own.

        Anonymous sessions are reachable only by their id, never by listing.
        """
        if user.is_staff:
            return self
        if user.is_authenticated:
            return self.filter(owner=user)
        return self.none()

    def readable_by(self, public_id: str, user) -> Session | None:
        """The active session ``public_id`` if ``user`` may use it, else None.

        Unknown, expired, malformed and someone else's ids all answer None, so callers
        give one identical "not found" and nothing leaks which ids exist.
        """
        if not is_well_formed(public_id):
            return None
        # handled_by is joined: every reader of a session shows who answers it.
        session = self.active().select_related("handled_by").filter(public_id=public_id).first()
        if session is None or not session.is_accessible_to(user):
            return None
        return session


class Session(models.Model):
    public_id = models.CharField(max_length=64, unique=True, default=new_public_id, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="chat_sessions",
    )
    source = models.CharField(max_length=16, choices=Channel.choices, default=Channel.API)
    title = models.CharField(max_length=TITLE_MAX_CHARS, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_activity_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    # The seq of the newest message; bumped under a row lock when messages are added.
    last_seq = models.PositiveIntegerField(default=0, editable=False)
    # The staff member who has taken the conversation over; while set, the bot is silent.
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="handled_sessions",
    )
    # The visitor asked for a person and nobody has taken over since.
    waiting_since = models.DateTimeField(null=True, blank=True, db_index=True)

    objects = SessionQuerySet.as_manager()

    class Meta:
        verbose_name = "chat session"
        ordering = ["-last_activity_at"]
        indexes = [
            models.Index(fields=["expires_at"], name="session_expiry_purge_idx"),
            models.Index(fields=["-last_activity_at"], name="session_recent_activity_idx"),
            # Conversations started per day, on the insight page.
            models.Index(fields=["created_at"], name="session_started_idx"),
            # The admin's sessions list in its own order (SessionAdmin.ordering: waiting
            # visitors first, then the latest activity), so a page is read off this index
            # instead of sorting every session. PostgreSQL's ascending order puts NULLs
            # last, as the list does (SQLite cannot say NULLS LAST in an index).
            models.Index(fields=["waiting_since", "-last_activity_at"], name="session_admin_list_idx"),
        ]

    def __str__(self) -> str:
        return visible(self.title) or f"Session {self.short_id}"

    def save(self, *args, **kwargs):
        if self.expires_at is None:
            self.expires_at = session_expiry_from(self.last_activity_at)
        super().save(*args, **kwargs)

    @property
    def short_id(self) -> str:
        return shorten(self.public_id)

    @property
    def is_with_staff(self) -> bool:
        return self.handled_by_id is not None

    def live_status(self) -> dict:
        """Who answers this conversation, as the messages page and the live feed show it."""
        handler = self.handled_by if self.handled_by_id else None
        return {"handled_by": display_name(handler) if handler else None, "waiting": self.waiting_since is not None}

    def is_accessible_to(self, user) -> bool:
        if self.owner_id is None or user.is_staff:
            return True
        return user.is_authenticated and user.pk == self.owner_id

    def add_message(self, draft: MessageDraft) -> Message:
        with transaction.atomic():
            (message,) = self.append_messages([draft])
        return message

    def append_turn(self, drafts: list[MessageDraft], *, releasing: str | None = None) -> list[Message]:
        """Append a turn's messages and drop the reservation of ``releasing`` (its
        client_message_id), all or nothing, in its own transaction.

        On PostgreSQL this is one statement, which is atomic by itself: it takes the row
        lock, numbers the messages, inserts them and the insight page's records of them
        (``turn_records``) and drops the reservation in a single round trip, where a
        transaction around ``append_messages`` takes five.
        """
        if connection.vendor != "postgresql" or connection.in_atomic_block:
            with transaction.atomic():
                messages = self.append_messages(drafts)
                if releasing:
                    TurnReservation.objects.release(session=self, client_message_id=releasing)
            return messages
        now = timezone.now()
        self.expires_at = session_expiry_from(now)
        self.last_activity_at = now
        messages = self._messages_for(drafts, first_seq=0, now=now)
        rows_sql = ", ".join(["(%s, %s, %s, %s::jsonb, %s, %s, %s, %s::bigint, %s, %s, %s::integer)"] * len(messages))
        params: list = [len(drafts), now, self.expires_at, title_from(drafts), self.pk, self.public_id]
        for offset, message in enumerate(messages, start=1):
            params += [offset, message.role, message.content, json.dumps(message.metadata), message.channel]
            params += [message.client_message_id, message.token_count, message.author_id, message.author_name]
            params += [message.answer_status, message.latency_ms]
        params.append(now)
        sessions, stored, reservations = Session._meta.db_table, Message._meta.db_table, TurnReservation._meta.db_table
        extra_ctes = ""
        if releasing:
            extra_ctes = f", released AS (DELETE FROM {reservations} WHERE session_id = %s AND client_message_id = %s)"  # noqa: S608
            params += [self.pk, releasing]
        extra_ctes += records_sql(messages, params)
        # Table names from the models, every value a parameter.
        sql = (
            f"WITH moved AS (UPDATE {sessions} SET last_seq = last_seq + %s, last_activity_at = %s, "  # noqa: S608
            "expires_at = %s, title = CASE WHEN title = '' THEN %s ELSE title END "
            "WHERE id = %s AND public_id = %s RETURNING id, last_seq, title), "
            "drafts (position, role, content, metadata, channel, client_message_id, token_count, author_id, "
            "author_name, answer_status, latency_ms) "
            f"AS (VALUES {rows_sql}), "
            f"inserted AS (INSERT INTO {stored} "
            "(session_id, seq, role, content, metadata, channel, client_message_id, token_count, author_id, "
            "author_name, answer_status, latency_ms, created_at) "
            f"SELECT moved.id, moved.last_seq - {len(drafts)} + drafts.position, drafts.role, drafts.content, "
            "drafts.metadata, drafts.channel, drafts.client_message_id, drafts.token_count, drafts.author_id, "
            "drafts.author_name, drafts.answer_status, drafts.latency_ms, %s "
            f"FROM moved, drafts RETURNING id, seq){extra_ctes} "
            "SELECT inserted.id, inserted.seq, moved.last_seq, moved.title FROM inserted, moved ORDER BY inserted.seq"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if not rows:
            raise Session.DoesNotExist("The session was deleted, or its id was rotated.")
        self.last_seq, self.title = rows[0][2], rows[0][3]
        for message, (pk, seq, _, _) in zip(messages, rows, strict=True):
            message.pk, message.seq = pk, seq
            live.publish_message(message)
        return messages

    def append_messages(self, drafts: list[MessageDraft]) -> list[Message]:
        """Append messages with consecutive seq numbers; the caller holds a transaction.

        Locks this session's row for the rest of the transaction, so concurrent appends
        to the same session queue up here, and each batch gets an unbroken seq range.
        Moves activity and expiry forward and gives an untitled session its title.

        The row must still have the public id this instance was read with: a writer who
        reached the session by an id that has since been rotated (``rotate_public_id``)
        is refused with ``DoesNotExist``, nothing written, the same as a deleted session.
        """
        now = timezone.now()
        self.expires_at = session_expiry_from(now)
        self.last_activity_at = now
        # One statement takes the row lock, numbers the batch and moves the session on:
        # the RETURNING clause (PostgreSQL, SQLite >= 3.35) saves a SELECT ... FOR UPDATE.
        adapt = connection.ops.adapt_datetimefield_value
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE conversations_session SET last_seq = last_seq + %s, last_activity_at = %s, "
                "expires_at = %s, title = CASE WHEN title = '' THEN %s ELSE title END "
                "WHERE id = %s AND public_id = %s RETURNING last_seq, title",
                [len(drafts), adapt(now), adapt(self.expires_at), title_from(drafts), self.pk, self.public_id],
            )
            row = cursor.fetchone()
        if row is None:
            raise Session.DoesNotExist("The session was deleted, or its id was rotated.")
        self.last_seq, self.title = row
        messages = self._messages_for(drafts, first_seq=self.last_seq - len(drafts), now=now)
        Message.objects.bulk_create(messages)
        for model, rows in records_by_model(messages).items():
            for message, record in rows:
                record.message = message
            model.objects.bulk_create(record for _, record in rows)
        for message in messages:
            live.publish_message(message)  # once the caller's transaction commits
        return messages

    def rotate_public_id(self) -> str:
        """Give the conversation a new public id and revoke the old one; the new id.

        The id is the capability, so this is how a visitor stops sharing a link: from
        the commit on, the old id is as unknown as any other, everywhere at once. One
        ``UPDATE`` on the session row, conditional on the old id: it queues behind a
        turn or message being appended under the row lock (which is then stored and
        read back under the new id), and an append that queues behind it finds the old
        id gone and is refused, nothing written (``append_messages``). Every feed open
        on the session, on any instance, is told to close once this commits
        (``live.publish_revoked``); whoever rotated reconnects on the new id. Raises
        ``DoesNotExist`` if the id was rotated (or the session erased) meanwhile.
        """
        new_id = new_public_id()
        with transaction.atomic():
            if not Session.objects.filter(pk=self.pk, public_id=self.public_id).update(public_id=new_id):
                raise Session.DoesNotExist("The session was deleted, or its id was rotated.")
            live.publish_revoked(self.pk)
        self.public_id = new_id
        return new_id

    def _messages_for(self, drafts: list[MessageDraft], *, first_seq: int, now) -> list[Message]:
        messages = [
            Message(
                session=self,
                seq=first_seq + offset,
                role=draft.role,
                content=draft.content,
                metadata=draft.metadata,
                channel=draft.channel,
                client_message_id=draft.client_message_id,
                token_count=estimate_tokens(draft.content),
                author=draft.author,
                author_name=display_name(draft.author) if draft.author else "",
                answer_status=draft.answer_status,
                latency_ms=latency_of(draft.metadata) if draft.answer_status else None,
                created_at=now,
            )
            for offset, draft in enumerate(drafts, start=1)
        ]
        for message, draft, before in zip(messages, drafts, [None, *drafts[:-1]], strict=True):
            message.records = turn_records(draft, question=before, now=now) if draft.answer_status else []
        return messages


def display_name(user) -> str:
    """How a staff member is named to visitors: their full name, else their username."""
    return user.get_full_name() or user.get_username()


def title_from(drafts: list[MessageDraft]) -> str:
    """The first user message, on one line, cut to fit the title."""
    for draft in drafts:
        if draft.role == Role.USER:
            text = " ".join(draft.content.split())
            if len(text) > TITLE_MAX_CHARS:
                text = text[: TITLE_MAX_CHARS - 1].rstrip() + "…"
            return text
    return ""


def latency_of(metadata: dict) -> int | None:
    """The model's latency as a turn's metadata records it, in whole milliseconds."""
    latency = metadata.get("latency_ms")
    if isinstance(latency, bool) or not isinstance(latency, int | float) or not 0 <= latency < 2**31:
        return None
    return round(latency)


def turn_records(draft: MessageDraft, *, question: MessageDraft | None, now) -> list[models.Model]:
    """What the insight page counts of the message that ends a turn, as rows stored
    with it: the pages its answer cites, each once (two passages of one page are one
    citation of it), and, when the site's pages held no answer, the question."""
    records: list[models.Model] = []
    citations = draft.metadata.get("citations")
    pages: dict[tuple, None] = {}
    for citation in citations if isinstance(citations, list) else []:
        if not isinstance(citation, dict):
            continue
        url = citation.get("url")[: Citation.URL_MAX_CHARS] if isinstance(citation.get("url"), str) else None
        title = str(citation.get("title") or url or "")[: Citation.TITLE_MAX_CHARS]
        if url or title:
            pages[(url or None, title)] = None
    records += [Citation(url=url, title=title, cited_at=now) for url, title in pages]
    if draft.answer_status == AnswerStatus.NO_ANSWER and question is not None and question.role == Role.USER:
        text = question.content[: ContentGap.QUESTION_MAX_CHARS]
        records.append(ContentGap(question=text, normalized=normalized_question(text), asked_at=now))
    return records


def records_sql(messages: list[Message], params: list) -> str:
    """The CTEs that write the turn's records (``turn_records``) in the statement
    that stores its messages, each joined to its message by position; ``params``
    grows by their values."""
    sql = ""
    for number, (model, rows) in enumerate(records_by_model(messages).items()):
        columns = [f.column for f in model._meta.concrete_fields if not f.primary_key and f.name != "message"]
        values = ", ".join([f"(%s::integer{', %s' * len(columns)})"] * len(rows))
        names = ", ".join(columns)
        sql += (
            f", records_{number} (position, {names}) AS (VALUES {values}), "  # noqa: S608 - values are parameters
            f"written_{number} AS (INSERT INTO {model._meta.db_table} (message_id, {names}) "
            f"SELECT inserted.id, {', '.join(f'records_{number}.{c}' for c in columns)} "
            f"FROM inserted, moved, records_{number} "
            f"WHERE inserted.seq = moved.last_seq - {len(messages)} + records_{number}.position)"
        )
        for message, record in rows:
            params += [messages.index(message) + 1, *(getattr(record, column) for column in columns)]
    return sql


def records_by_model(messages: list[Message]) -> dict[type, list[tuple[Message, models.Model]]]:
    grouped: dict[type, list] = {}
    for message in messages:
        for record in message.records:
            grouped.setdefault(type(record), []).append((message, record))
    return grouped


def normalized_question(question: str) -> str:
    """What makes two questions the same content gap: case, spacing and end punctuation aside."""
    return re.sub(r"\s+", " ", question).strip().rstrip("?!.…").strip().casefold()[: ContentGap.QUESTION_MAX_CHARS]


@dataclass(frozen=True)
class MessageDraft:
    """A message before it has a session and a seq."""

    role: str
    content: str
    metadata: dict = field(default_factory=dict)
    channel: str = Channel.API
    client_message_id: str | None = None
    # The staff member who wrote it; None for the visitor's and the bot's messages.
    author: object = None
    # Set on the message that ends a turn (``AnswerStatus``): the bot's answer, or the
    # visitor's message a person will answer. Its latency, cited pages and unanswered
    # question are then stored beside it for the insight page (``turn_records``).
    answer_status: str | None = None


class MessageQuerySet(models.QuerySet):
    def latest_first(self, limit: int):
        """The newest ``limit`` messages, newest first: one index range scan."""
        return self.order_by("-seq")[:limit]

    def page_before(self, before_seq: int | None, limit: int) -> tuple[list[Message], bool]:
        """Up to ``limit`` messages older than ``before_seq``, oldest first, and whether
        older ones remain. Keyset paging: constant cost however long the session is."""
        queryset = self if before_seq is None else self.filter(seq__lt=before_seq)
        # Feedback joined: a page shows each answer's, in the same one query.
        rows = list(queryset.select_related("feedback").latest_first(limit + 1))
        has_more = len(rows) > limit
        return rows[:limit][::-1], has_more

    def answers(self):
        """The bot's answers: the assistant messages no staff member wrote, which are
        what a visitor rates (``conversations.feedback``)."""
        return self.filter(role=Role.ASSISTANT, author_name="")


class Message(models.Model):
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveIntegerField()
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.API)
    # Approximate tokens, stored at write time so the context budget never re-counts.
    token_count = models.PositiveIntegerField(default=0)
    # Set by the client; a retried request with the same id must not add a second turn.
    # NULL, not "", when absent: the unique constraint must not treat absent ids as equal.
    client_message_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    # The staff member who wrote it, and their display name as it was then (kept when
    # the account goes). A staff reply is an assistant message with an author. The
    # database default keeps writers that do not name the column working (an instance
    # still on the previous release while this one migrates; the benchmark's COPY).
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="authored_messages"
    )
    author_name = models.CharField(max_length=150, blank=True, default="", db_default="")
    # Copied out of ``metadata`` when a turn is stored, so the insight page aggregates
    # plain indexed columns instead of parsing a million JSON documents: the turn's
    # outcome (answered, no_answer, with_staff) on the message that ends it, NULL on
    # every other message; and the model's latency on the answer.
    answer_status = models.CharField(max_length=16, null=True, blank=True)  # noqa: DJ001
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["session", "seq"]
        constraints = [
            # Also the index behind "latest N" and "the page before seq X".
            models.UniqueConstraint(fields=["session", "seq"], name="message_session_seq_uniq"),
            models.UniqueConstraint(
                fields=["session", "client_message_id"],
                condition=models.Q(client_message_id__isnull=False),
                name="message_session_client_id_uniq",
            ),
        ]
        indexes = [
            # The insight page's turns per day, their outcomes and the median latency,
            # read from this index alone (an index-only scan on PostgreSQL).
            models.Index(
                fields=["created_at", "answer_status", "latency_ms"],
                condition=models.Q(answer_status__isnull=False),
                name="message_turn_outcome_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.role}: {self.content[:40]}"

    def known_feedback(self) -> Feedback | None:
        """The visitor's feedback as it was read with this message, never a query of its
        own: readers of messages join it (``select_related("feedback")``, as
        ``page_before`` does), and a message read without it has just been written, so
        it has none. This keeps a page, a feed and a chat turn at their query counts."""
        if not Message.feedback.is_cached(self):
            return None
        return getattr(self, "feedback", None)


class Citation(models.Model):
    """A page an answer cited, a row per answer and page, written with the answer: the
    insight page counts the pages cited most without reading the answers' metadata."""

    URL_MAX_CHARS = 2000
    TITLE_MAX_CHARS = 300

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="cited_pages")
    url = models.CharField(max_length=URL_MAX_CHARS, null=True, blank=True)  # noqa: DJ001 - None: an uploaded file
    title = models.CharField(max_length=TITLE_MAX_CHARS, blank=True)
    # The answer's created_at, here so a date range is one index range.
    cited_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["cited_at"], name="citation_cited_at_idx")]

    def __str__(self) -> str:
        return self.url or self.title


class ContentGap(models.Model):
    """A question the site's pages held no answer to, beside the no-answer reply and
    written with it: the insight page counts the questions asked most from here, without
    pairing a million messages with the ones before them."""

    QUESTION_MAX_CHARS = 500

    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="content_gap")
    question = models.CharField(max_length=QUESTION_MAX_CHARS)  # the visitor's words
    normalized = models.CharField(max_length=QUESTION_MAX_CHARS)  # normalized_question(): what is counted
    asked_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["asked_at"], name="content_gap_asked_idx")]

    def __str__(self) -> str:
        return self.question


class Rating(models.IntegerChoices):
    HELPFUL = 1, "Helpful"
    NOT_HELPFUL = -1, "Not helpful"


class Feedback(models.Model):
    """A visitor's verdict on one assistant message: one row a message, changed in
    place when the visitor changes their mind."""

    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="feedback")
    rating = models.SmallIntegerField(choices=Rating.choices)
    comment = models.TextField(blank=True, max_length=1000)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "feedback"
        indexes = [models.Index(fields=["updated_at"], name="feedback_updated_idx")]

    def __str__(self) -> str:
        return f"{self.get_rating_display()} on message {self.message_id}"


class DailyUsage(models.Model):
    """Model tokens spent, a row per session and day: what spend limits and the insight
    page read back. Kept when the session is purged, so a month's cost stays whole."""

    day = models.DateField()
    session = models.ForeignKey(Session, null=True, blank=True, on_delete=models.SET_NULL, related_name="usage")
    turns = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name_plural = "daily usage"
        constraints = [models.UniqueConstraint(fields=["session", "day"], name="usage_session_day_uniq")]
        indexes = [models.Index(fields=["day"], name="usage_day_idx")]

    def __str__(self) -> str:
        return f"{self.day}: {self.prompt_tokens + self.completion_tokens} tokens"


class TurnReservationQuerySet(models.QuerySet):
    def claim(self, *, session: Session, client_message_id: str, query_digest: str) -> bool:
        """Reserve ``client_message_id`` in ``session`` for one model call; True if ours.

        The insert is one statement that either makes the row or finds one already
        there, so of any number of concurrent requests, on any number of instances,
        exactly one wins. A reservation past its expiry belongs to a process that died
        mid-answer, and is taken over by the same rule (one ``UPDATE`` wins).
        """
        now = timezone.now()
        expires_at = now + timedelta(seconds=settings.CHATBOT_TURN_RESERVATION_SECONDS)
        adapt = connection.ops.adapt_datetimefield_value
        table = TurnReservation._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (session_id, client_message_id, query_digest, expires_at) "  # noqa: S608
                "VALUES (%s, %s, %s, %s) ON CONFLICT (session_id, client_message_id) DO NOTHING RETURNING id",
                [session.pk, client_message_id, query_digest, adapt(expires_at)],
            )
            if cursor.fetchone():
                return True
            cursor.execute(
                f"UPDATE {table} SET expires_at = %s "  # noqa: S608
                "WHERE session_id = %s AND client_message_id = %s AND query_digest = %s AND expires_at <= %s "
                "RETURNING id",
                [adapt(expires_at), session.pk, client_message_id, query_digest, adapt(now)],
            )
            return cursor.fetchone() is not None

    def held(self, *, session: Session, client_message_id: str) -> TurnReservation | None:
        return self.filter(session=session, client_message_id=client_message_id).first()

    def release(self, *, session: Session, client_message_id: str) -> None:
        self.filter(session=session, client_message_id=client_message_id).delete()


class TurnReservation(models.Model):
    """A turn being answered now, keyed by its client_message_id.

    Exists from the moment a request wins the right to ask the model until the turn is
    stored (deleted in the same transaction) or has failed (deleted then); duplicates
    that find it wait for the stored turn instead of asking the model again.
    """

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="turn_reservations")
    client_message_id = models.CharField(max_length=64)
    # sha256 of the query: a duplicate with other words is a conflict, not a wait.
    query_digest = models.CharField(max_length=64)
    expires_at = models.DateTimeField()

    objects = TurnReservationQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "client_message_id"], name="turn_reservation_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.client_message_id} in {self.session_id}"
