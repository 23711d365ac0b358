"""One chat turn: the visitor's query, the model's answer, both stored together.

A turn has three steps, and only the first and last touch the database:

1. ``start_turn`` finds or creates the session, answers a repeated request from what is
   stored, and reads the context: a short read, no transaction.
2. The model is asked, with no transaction open and no row locked, for however long it
   takes.
3. ``finish_turn`` writes the user and assistant messages in one short transaction.

If step 2 fails nothing is written, so a retry starts from a clean slate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import IntegrityError, connection, connections, transaction

from conversations.errors import ApiError
from conversations.llm import ModelError, Reply, chat_model
from conversations.models import Message, MessageDraft, Role, Session
from conversations.tokens import estimate_tokens

logger = logging.getLogger(__name__)

# Waiting on the model happens on these threads: never on the event loop, never on the
# thread that runs Django's synchronous code, and not on asgiref's default pool, which
# has only a handful of threads. The pool's size is how many answers one process can
# be waiting for at once; further turns queue until a thread is free.
model_threads = ThreadPoolExecutor(max_workers=settings.CHATBOT_MODEL_CONCURRENCY, thread_name_prefix="model")


@dataclass
class TurnResult:
    session: Session
    user_message: Message
    assistant_message: Message
    replayed: bool = False

    @property
    def answer(self) -> str:
        return self.assistant_message.content

    @property
    def citations(self) -> list:
        return self.assistant_message.metadata.get("citations", [])

    @property
    def offline(self) -> bool:
        return bool(self.assistant_message.metadata.get("offline"))


@dataclass
class Turn:
    session: Session
    query: str
    channel: str
    client_message_id: str | None
    context: list[dict] = field(default_factory=list)
    replay: TurnResult | None = None


def start_turn(*, session_id: str | None, user, query: str, channel: str, client_message_id: str | None) -> Turn:
    """Resolve the session and prepare what the model will see.

    Without ``session_id`` a session is created now, before the model is asked, so an
    error can name it and the client's retry continues the same conversation.
    """
    if session_id is None:
        session = Session.objects.create(source=channel, owner=user if user.is_authenticated else None)
    else:
        session = Session.objects.readable_by(session_id, user)
        if session is None:
            raise ApiError.session_not_found()
    turn = Turn(session=session, query=query, channel=channel, client_message_id=client_message_id)
    if client_message_id:
        turn.replay = stored_turn(session=session, client_message_id=client_message_id, query=query)
    if turn.replay is None:
        turn.context = context_for(session=session, query=query)
    return turn


def context_for(*, session: Session, query: str) -> list[dict]:
    """The messages the model sees: system prompt, the latest history that fits, query.

    Reads at most CHATBOT_CONTEXT_MAX_MESSAGES rows, newest first, through the
    (session, seq) index, so the cost does not grow with the session. Whole messages
    are dropped from the oldest end until the rest fits the token budget, which keeps
    room for the system prompt, the query and the reply.
    """
    system_prompt = settings.CHATBOT_SYSTEM_PROMPT
    budget = (
        settings.CHATBOT_CONTEXT_MAX_TOKENS
        - settings.CHATBOT_REPLY_MAX_TOKENS
        - (estimate_tokens(system_prompt) if system_prompt else 0)
        - estimate_tokens(query)
    )
    history: list[dict] = []
    if settings.CHATBOT_CONTEXT_MAX_MESSAGES and budget > 0:
        newest_first = session.messages.latest_first(settings.CHATBOT_CONTEXT_MAX_MESSAGES)
        for role, content, tokens in newest_first.values_list("role", "content", "token_count"):
            if tokens > budget:
                break
            budget -= tokens
            history.append({"role": role, "content": content})
    history.reverse()
    system = [{"role": Role.SYSTEM.value, "content": system_prompt}] if system_prompt else []
    return [*system, *history, {"role": Role.USER.value, "content": query}]


def stored_turn(*, session: Session, client_message_id: str, query: str) -> TurnResult | None:
    """The turn already stored for this client_message_id, if any."""
    user_message = Message.objects.filter(session=session, client_message_id=client_message_id).first()
    if user_message is None:
        return None
    if user_message.content != query:
        raise ApiError(
            409,
            "client_message_id_reused",
            "This client_message_id was already used for a different message.",
        )
    assistant_message = Message.objects.get(session=session, seq=user_message.seq + 1)
    return TurnResult(session, user_message, assistant_message, replayed=True)


def finish_turn(*, turn: Turn, reply: Reply) -> TurnResult:
    """Store the query and the reply as one consecutive pair, or neither."""
    metadata = {**reply.metadata, "citations": reply.citations}
    drafts = [
        MessageDraft(
            role=Role.USER,
            content=turn.query,
            channel=turn.channel,
            client_message_id=turn.client_message_id,
        ),
        MessageDraft(role=Role.ASSISTANT, content=reply.text, metadata=metadata, channel=turn.channel),
    ]
    try:
        # Transaction begins: the session row is locked by append_messages until commit.
        with transaction.atomic():
            user_message, assistant_message = turn.session.append_messages(drafts)
        # Transaction ends.
    except Session.DoesNotExist:
        raise ApiError.session_not_found() from None  # erased while the model was answering
    except IntegrityError:
        # The same client_message_id won a race against us: answer with its turn.
        replay = turn.client_message_id and stored_turn(
            session=turn.session, client_message_id=turn.client_message_id, query=turn.query
        )
        if not replay:
            raise
        return replay
    return TurnResult(turn.session, user_message, assistant_message)


def release_connection() -> None:
    """Give this thread's pooled database connection back before the model is awaited.

    Django returns it only when the request ends; held through a long answer, each
    waiting visitor would take one of the pool's few connections from everyone else.
    """
    if getattr(connection, "pool", None) is not None and not connection.in_atomic_block:
        connection.close()


async def answer_turn(turn: Turn) -> TurnResult:
    """Ask the model and store the turn, for async views: the model is awaited on
    ``model_threads``, off the event loop and off the thread that holds the database."""
    if turn.replay:
        return turn.replay
    try:
        reply = await sync_to_async(chat_model().complete, thread_sensitive=False, executor=model_threads)(turn.context)
    except ModelError as error:
        raise ApiError.from_model_error(error, session=turn.session) from error
    return await sync_to_async(finish_turn)(turn=turn, reply=reply)


def stream_turn(*, turn: Turn, emit: Callable[[str, object], None]) -> None:
    """Run a prepared turn to the end, emitting ("delta", text), then ("done", result)
    or ("error", ApiError).

    Meant for a thread of its own: it keeps going, and stores the turn, even when the
    client that asked has gone away, so the conversation is whole when it comes back.
    """
    try:
        reply = chat_model().stream(turn.context, on_delta=lambda text: emit("delta", text))
        emit("done", finish_turn(turn=turn, reply=reply))
    except ModelError as error:
        emit("error", ApiError.from_model_error(error, session=turn.session))
    except ApiError as error:
        emit("error", error)
    except Exception:
        logger.exception("Streamed turn failed in session %s", turn.session.short_id)
        emit("error", ApiError.internal())
    finally:
        # Connections belong to threads: this one's would outlive the thread, or never
        # go back to the pool.
        connections.close_all()
