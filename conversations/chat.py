"""One chat turn: the visitor's query, the model's answer, both stored together.

A turn is a pipeline; each step says what it may touch:

1. ``prepare_turn`` (database, and one read of the budgets' counters in Redis): find or
   create the session, reserve the client_message_id so that duplicates never ask the
   model twice, read the context and the knowledge base's figures for the question
   (``knowledge.search.question``). Runs in the request's thread, before the response
   starts. A turn that would ask the model is refused here, leaving nothing written,
   when a daily token budget it draws on is used up (``conversations.spend``). On a
   session that staff have taken over (``conversations.staffing``) it stores the
   visitor's message alone (``store_for_staff``) and the turn ends there: no retrieval,
   no model.
2. ``gather_sources`` (the database, on a database thread; the network only for the
   question's embedding when semantic search is on): the knowledge base's passages for
   the query and the visitor's previous question; nothing at all, and no hop to a
   database thread, when the knowledge base is empty.
3. The model is asked (``conversations.llm``) with those passages numbered in its
   prompt (``conversations.grounding``), awaited on the event loop with no transaction
   open and no connection held, for however long it takes. When the knowledge base
   holds pages but none answers the question, strict mode answers that it could not
   find it, and the model is not asked.
4. ``finish_turn`` (database, and one write to the budgets' counters): the user and
   assistant messages in one short transaction, which also drops the reservation; then
   what the model's answer cost is recorded (``conversations.spend``).

``run_turn`` runs steps 2 to 4 as a coroutine. If the model fails nothing is written
and the reservation is dropped, so a retry starts from a clean slate. The raised errors
are the domain's (``conversations.exceptions``, ``conversations.llm.ModelError``);
``conversations.errors`` alone decides what HTTP makes of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError

from conversations import inflight, spend
from conversations.exceptions import ClientMessageIdReused, OverBudget, SessionNotFound
from conversations.grounding import (
    citations,
    grounded_messages,
    no_answer_reply,
    upstream_citations,
)
from conversations.languages import language_name
from conversations.llm import Reply, chat_model
from conversations.models import AnswerStatus, Message, MessageDraft, Role, Session, TurnReservation
from conversations.tokens import estimate_tokens
from knowledge.search import Query, Retrieval, passages_for, question

logger = logging.getLogger(__name__)

# How often a duplicate answered by another instance looks for the stored turn.
RESERVATION_POLL_SECONDS = 0.2

# Runs a synchronous database step from the turn's coroutine (``inflight`` has two).
Database = Callable[..., Awaitable]


@dataclass
class TurnResult:
    session: Session
    user_message: Message
    # None when staff answer the session: the visitor's message was stored alone.
    assistant_message: Message | None
    replayed: bool = False

    @property
    def answer(self) -> str:
        return self.assistant_message.content if self.assistant_message else ""

    @property
    def citations(self) -> list:
        return self.assistant_message.metadata.get("citations", []) if self.assistant_message else []

    @property
    def offline(self) -> bool:
        return bool(self.assistant_message and self.assistant_message.metadata.get("offline"))

    @property
    def answer_status(self) -> str:
        if self.assistant_message is None:
            return AnswerStatus.WITH_STAFF
        return self.assistant_message.metadata.get("answer_status", AnswerStatus.ANSWERED)

    def as_replay(self) -> TurnResult:
        return TurnResult(self.session, self.user_message, self.assistant_message, replayed=True)


@dataclass
class Turn:
    session: Session
    query: str
    channel: str
    client_message_id: str | None
    # The client's address (``ratelimits.client_ip``): whose daily budget the turn spends.
    address: str = ""
    # The visitor's language (a code of LANGUAGES): the model is told to answer in it.
    language: str | None = None
    context: list[dict] = field(default_factory=list)
    # Already stored: answered from the database, the model is not asked.
    replay: TurnResult | None = None
    # Another request holds this client_message_id's reservation: wait for its turn.
    answered_elsewhere: bool = False
    # The query analysed against the knowledge base; None when it holds nothing.
    question: Query | None = None
    retrieval: Retrieval = field(default_factory=Retrieval)
    # What the model was sent; empty when it was not asked.
    prompt: list[dict] = field(default_factory=list)

    @property
    def owns_reservation(self) -> bool:
        return bool(self.client_message_id) and self.replay is None and not self.answered_elsewhere


def query_digest(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def prepare_turn(
    *,
    session_id: str | None,
    user,
    query: str,
    channel: str,
    client_message_id: str | None,
    address: str,
    language: str | None = None,
) -> Turn:
    """Resolve the session and prepare what the model will see (database, and a read of
    the budgets' counters).

    Without ``session_id`` a session is created now, before the model is asked, so an
    error can name it and the client's retry continues the same conversation. ``address``
    is the client's, whose daily budget the turn spends.
    """
    if session_id is None:
        # Before the session is made, so that a refused turn leaves nothing behind.
        spend.ensure_within_budgets(address=address, session_pk=None)
        session = Session.objects.create(source=channel, owner=user if user.is_authenticated else None)
        history = []  # a new session has none to read
    else:
        session = Session.objects.readable_by(session_id, user)
        history = None  # read below, when the turn is ours to answer
        if session is None:
            raise SessionNotFound
    turn = Turn(
        session=session,
        query=query,
        channel=channel,
        client_message_id=client_message_id,
        address=address,
        language=language,
    )
    if session.is_with_staff:
        turn.replay = store_for_staff(turn)
        return turn
    if client_message_id:
        reserve(turn)
    if turn.owns_reservation or not client_message_id:
        if session_id is not None:  # a new session's turn was checked before it was made
            ensure_within_budgets(turn)
        ground(turn, newest_first=history)
    return turn


def ensure_within_budgets(turn: Turn) -> None:
    """Refuse a turn that is ours to answer once a budget it draws on is used up. Checked
    after the reservation, so that a duplicate of a stored turn is still answered from
    the database; the reservation is dropped again, so the refusal leaves nothing."""
    try:
        spend.ensure_within_budgets(address=turn.address, session_pk=turn.session.pk)
    except OverBudget:
        if turn.owns_reservation:
            release_reservation(turn=turn)
        raise


def store_for_staff(turn: Turn) -> TurnResult:
    """The turn of a session staff have taken over: the visitor's message, stored alone
    (and so published to the live feed, where staff see it) and marked with_staff, so a
    replay of its client_message_id finds it and answers the same."""
    if turn.client_message_id:
        stored = stored_turn(session=turn.session, client_message_id=turn.client_message_id, query=turn.query)
        if stored is not None:
            return stored
    draft = MessageDraft(
        role=Role.USER,
        content=turn.query,
        metadata={"answer_status": AnswerStatus.WITH_STAFF.value},
        channel=turn.channel,
        client_message_id=turn.client_message_id,
        answer_status=AnswerStatus.WITH_STAFF.value,
    )
    try:
        (user_message,) = turn.session.append_turn([draft])
    except Session.DoesNotExist:
        raise SessionNotFound from None  # erased, or its id rotated, since it was read
    except IntegrityError as conflict:
        # A duplicate of this request stored it a moment ago: answer with that one.
        return turn_stored_before(turn, conflict)
    return TurnResult(turn.session, user_message, None)


def turn_stored_before(turn: Turn, conflict: IntegrityError) -> TurnResult:
    """The turn a duplicate of ``turn`` stored first, after our write hit its unique
    client_message_id; an integrity error with no such turn is not ours to explain."""
    replay = turn.client_message_id and stored_turn(
        session=turn.session, client_message_id=turn.client_message_id, query=turn.query
    )
    if not replay:
        raise conflict
    return replay


def ground(turn: Turn, *, newest_first: list[tuple] | None = None) -> None:
    """What a turn that is ours to answer reads before the model: its context, and the
    question as the knowledge base sees it, with the visitor's previous question, so
    that a follow-up ("and how much is it?") finds its subject."""
    turn.context = context_for(
        session=turn.session, query=turn.query, newest_first=newest_first, language=turn.language
    )
    turn.question = question(turn.query, previous=previous_question(turn))


def previous_question(turn: Turn) -> str | None:
    earlier = [m["content"] for m in turn.context[:-1] if m["role"] == Role.USER]
    return earlier[-1] if earlier else None


def reserve(turn: Turn) -> None:
    """Win this client_message_id's one model call, or learn who has it.

    The reservation is taken before the stored turn is looked for: a turn stored by a
    request that finished a moment ago is then seen, never answered a second time.
    """
    digest = query_digest(turn.query)
    owned = TurnReservation.objects.claim(
        session=turn.session, client_message_id=turn.client_message_id, query_digest=digest
    )
    turn.replay = stored_turn(session=turn.session, client_message_id=turn.client_message_id, query=turn.query)
    if turn.replay is not None:
        if owned:
            TurnReservation.objects.release(session=turn.session, client_message_id=turn.client_message_id)
        return
    if not owned:
        held = TurnReservation.objects.held(session=turn.session, client_message_id=turn.client_message_id)
        if held is not None and held.query_digest != digest:
            raise ClientMessageIdReused
        turn.answered_elsewhere = True


def context_for(
    *, session: Session, query: str, newest_first: list[tuple] | None = None, language: str | None = None
) -> list[dict]:
    """The messages the model sees: system prompt, the latest history that fits, query.

    ``newest_first``: the session's latest (role, content, token_count), if known (none,
    for a session just made); else at most CHATBOT_CONTEXT_MAX_MESSAGES rows are read,
    newest first, through the (session, seq) index, so the cost does not grow with the
    session. Whole messages are dropped from the oldest end until the rest fits the
    token budget, which keeps room for the system prompt, the query and the reply.

    The read is its own query: joined to the session's lookup, PostgreSQL's planner took
    the session-only index and filtered a long session row by row.

    ``language``: the visitor's, which the system prompt then tells the model to answer in.
    """
    system_prompt = system_prompt_for(language)
    budget = (
        settings.CHATBOT_CONTEXT_MAX_TOKENS
        - settings.CHATBOT_REPLY_MAX_TOKENS
        - (estimate_tokens(system_prompt) if system_prompt else 0)
        - estimate_tokens(query)
    )
    history: list[dict] = []
    if settings.CHATBOT_CONTEXT_MAX_MESSAGES and budget > 0:
        if newest_first is None:
            latest = session.messages.latest_first(settings.CHATBOT_CONTEXT_MAX_MESSAGES)
            newest_first = latest.values_list("role", "content", "token_count")
        for role, content, tokens in newest_first:
            if tokens > budget:
                break
            budget -= tokens
            history.append({"role": role, "content": content})
    history.reverse()
    system = [{"role": Role.SYSTEM.value, "content": system_prompt}] if system_prompt else []
    return [*system, *history, {"role": Role.USER.value, "content": query}]


def system_prompt_for(language: str | None) -> str:
    """CHATBOT_SYSTEM_PROMPT, and, when the visitor's language is known, the instruction
    to answer in it: the site's pages and the prompt may well be in another language."""
    prompt = settings.CHATBOT_SYSTEM_PROMPT
    if not language:
        return prompt
    instruction = f"Answer in {language_name(language)} (language code {language}), the visitor's language."
    return f"{prompt}\n\n{instruction}" if prompt else instruction


def stored_turn(*, session: Session, client_message_id: str, query: str) -> TurnResult | None:
    """The turn already stored for this client_message_id, if any."""
    user_message = Message.objects.filter(session=session, client_message_id=client_message_id).first()
    if user_message is None:
        return None
    if user_message.content != query:
        raise ClientMessageIdReused
    if user_message.metadata.get("answer_status") == AnswerStatus.WITH_STAFF:
        return TurnResult(session, user_message, None, replayed=True)
    assistant_message = Message.objects.select_related("feedback").get(session=session, seq=user_message.seq + 1)
    return TurnResult(session, user_message, assistant_message, replayed=True)


async def gather_sources(turn: Turn, *, database: Database) -> Retrieval:
    """The knowledge base's passages for this turn's ``question``.

    With semantic search on, the question's embedding is fetched first (network, no
    connection held); if the embeddings server fails, the turn is answered lexically.
    """
    if turn.question is None:
        return Retrieval(empty=True)
    vector = None
    if settings.CHATBOT_EMBEDDING_MODEL:
        from knowledge.semantic import SemanticError, embed_query  # numpy: only with semantic search on

        previous = previous_question(turn)
        try:
            vector = await embed_query(f"{previous}\n{turn.query}" if previous else turn.query)
        except SemanticError as error:
            logger.warning("Embeddings unavailable, answering from lexical search only: %s", error)
    return await database(passages_for)(query=turn.question, query_vector=vector)


async def ask_model(turn: Turn, on_delta: Callable[[str], None] | None) -> Reply:
    """The answer to a turn whose sources are gathered: the model's, grounded in them,
    or, in strict mode with nothing relevant on the site, that there is no answer."""
    retrieval = turn.retrieval
    if not retrieval.empty and not retrieval.answerable and settings.CHATBOT_KB_MODE == "strict":
        reply = no_answer_reply(turn.language)
        if on_delta is not None:
            on_delta(reply.text)
    else:
        messages = turn.context if retrieval.empty else grounded_messages(turn.context, retrieval.passages)
        model = chat_model()
        turn.prompt = messages
        if on_delta is None:
            reply = await model.complete(messages, sources=retrieval.passages)
        else:
            reply = await model.stream(messages, on_delta, sources=retrieval.passages)
    if retrieval.passages:
        reply.citations = citations(reply.text, retrieval.passages)
    else:
        reply.citations = upstream_citations(reply.citations)
    if not retrieval.empty:
        answerable = retrieval.answerable
        reply.metadata["answer_status"] = AnswerStatus.ANSWERED if answerable else AnswerStatus.NO_ANSWER
    return reply


async def run_turn(turn: Turn, *, database: Database, on_delta: Callable[[str], None] | None = None) -> TurnResult:
    """Steps 2 to 4 of the pipeline for a prepared turn; ``on_delta`` streams the answer.

    ``database`` runs each synchronous database step (on a database thread, or on the
    request's own thread under the development server).
    """
    if turn.replay:
        return turn.replay
    if turn.answered_elsewhere:
        return await answer_of_another_request(turn, database=database, on_delta=on_delta)
    try:
        turn.retrieval = await gather_sources(turn, database=database)
        reply = await ask_model(turn, on_delta)
    except BaseException:
        if turn.owns_reservation:
            await database(release_reservation)(turn=turn)
        raise
    return await database(finish_turn)(turn=turn, reply=reply)


async def answer_of_another_request(turn: Turn, *, database: Database, on_delta) -> TurnResult:
    """Wait for the request that holds this turn's reservation, here or on another
    instance, and answer with the turn it stores; if it failed or its process died,
    take the reservation over and ask the model once ourselves."""
    key = (turn.session.pk, turn.client_message_id)
    while True:
        local = inflight.answering(key)
        if local is not None:
            try:
                return (await asyncio.shield(local)).as_replay()
            except Exception:  # noqa: S110 - its failure is its own; ours is decided below
                pass
        else:
            await asyncio.sleep(RESERVATION_POLL_SECONDS)
        await database(reconsider)(turn=turn)
        if turn.replay:
            return turn.replay
        if turn.owns_reservation:
            return await inflight.answer_once(key, run_turn(turn, database=database, on_delta=on_delta))


def reconsider(*, turn: Turn) -> None:
    """Look again at a reservation held elsewhere: stored, still held, or ours now;
    unless the id this turn came by has been rotated away meanwhile."""
    if not Session.objects.filter(pk=turn.session.pk, public_id=turn.session.public_id).exists():
        raise SessionNotFound
    turn.answered_elsewhere = False
    reserve(turn)
    if turn.owns_reservation:
        ensure_within_budgets(turn)
        ground(turn)


def release_reservation(*, turn: Turn) -> None:
    TurnReservation.objects.release(session=turn.session, client_message_id=turn.client_message_id)


def finish_turn(*, turn: Turn, reply: Reply) -> TurnResult:
    """Store the query and the reply as one consecutive pair, or neither; then, right
    after that transaction, record what asking the model cost."""
    metadata = {**reply.metadata, "citations": reply.citations}
    drafts = [
        MessageDraft(
            role=Role.USER,
            content=turn.query,
            channel=turn.channel,
            client_message_id=turn.client_message_id,
        ),
        MessageDraft(
            role=Role.ASSISTANT,
            content=reply.text,
            metadata=metadata,
            channel=turn.channel,
            answer_status=str(reply.metadata.get("answer_status", AnswerStatus.ANSWERED)),
        ),
    ]
    try:
        # One transaction (one statement on PostgreSQL), which locks the session row.
        user_message, assistant_message = turn.session.append_turn(
            drafts, releasing=turn.client_message_id if turn.owns_reservation else None
        )
    except Session.DoesNotExist:
        # Erased, or its id rotated, while the model was answering. On SQLite the
        # reservation's release rolled back with the messages: drop it, so a retry of this
        # client_message_id does not wait for it to expire.
        if turn.owns_reservation:
            release_reservation(turn=turn)
        raise SessionNotFound from None
    except IntegrityError as conflict:
        # The same client_message_id won a race against us (its reservation had expired
        # and been taken over): answer with its turn. Ours cost tokens all the same.
        result = turn_stored_before(turn, conflict)
    else:
        result = TurnResult(turn.session, user_message, assistant_message)
    record_spend(turn, reply)
    return result


def record_spend(turn: Turn, reply: Reply) -> None:
    """Count the tokens of a reply a paid model wrote: not strict mode's no-answer (no
    model was asked), nor the offline responder's (it costs nothing)."""
    if turn.prompt and not reply.metadata.get("offline"):
        usage = spend.reply_usage(prompt=turn.prompt, reply=reply)
        spend.record_spend(address=turn.address, session=turn.session, usage=usage)
