"""What users would pick instead, driven in-process with the same histories.

* LangChain's ``PostgresChatMessageHistory`` (langchain-postgres) on the same
  PostgreSQL: every turn loads the whole history (``.messages``) and appends.
* The integration guide's Redis approach (shared/reference/session-integration-guide.md,
  "Use Redis for Session Storage"): one JSON list per session under
  ``session:{id}``; saving a message is GET, decode, append, SETEX.

Both run in the benchmark's own process with no HTTP and no framework in front, which
flatters them: our numbers include the whole server.
"""

from __future__ import annotations

import json
import threading
import uuid

import psycopg
import redis

LANGCHAIN_TABLE = "langchain_chat_history"
GUIDE_TTL_SECONDS = 86400


# --- LangChain ------------------------------------------------------------------------


def langchain_connection(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True)


def langchain_setup(dsn: str) -> None:
    from langchain_postgres import PostgresChatMessageHistory

    with langchain_connection(dsn) as connection:
        PostgresChatMessageHistory.create_tables(connection, LANGCHAIN_TABLE)


def langchain_history(connection: psycopg.Connection, session_id: str):
    from langchain_postgres import PostgresChatMessageHistory

    return PostgresChatMessageHistory(LANGCHAIN_TABLE, session_id, sync_connection=connection)


def as_langchain(messages: list[tuple[str, str]]):
    from langchain_core.messages import AIMessage, HumanMessage

    return [HumanMessage(content=text) if role == "user" else AIMessage(content=text) for role, text in messages]


def langchain_seed(dsn: str, messages: list[tuple[str, str]], count: int) -> list[str]:
    """``count`` LangChain sessions holding ``messages``, written through its own API."""
    ids = []
    with langchain_connection(dsn) as connection:
        for _ in range(count):
            session_id = str(uuid.uuid4())
            langchain_history(connection, session_id).add_messages(as_langchain(messages))
            ids.append(session_id)
    return ids


def langchain_load(connection: psycopg.Connection, session_id: str) -> int:
    return len(langchain_history(connection, session_id).messages)


def langchain_turn(connection: psycopg.Connection, session_id: str, query: str) -> int:
    """What a LangChain app does per turn: load the history, then append query and answer."""
    history = langchain_history(connection, session_id)
    context = history.messages
    history.add_messages(as_langchain([("user", query), ("assistant", f"An answer after {len(context)} messages.")]))
    return len(context)


# --- The guide's Redis JSON list ------------------------------------------------------


def guide_key(session_id: str) -> str:
    return f"session:{session_id}"


def guide_seed(client: redis.Redis, messages: list[tuple[str, str]], count: int, *, prefix: str) -> list[str]:
    ids = []
    body = json.dumps([{"role": role, "content": text} for role, text in messages])
    for n in range(count):
        session_id = f"{prefix}-{n}-{uuid.uuid4().hex[:8]}"
        client.setex(guide_key(session_id), GUIDE_TTL_SECONDS, body)
        ids.append(session_id)
    return ids


def guide_load(client: redis.Redis, session_id: str) -> list:
    """The guide's get_session_history."""
    return json.loads(client.get(guide_key(session_id)) or "[]")


def guide_save(client: redis.Redis, session_id: str, message: dict) -> None:
    """The guide's save_to_session, verbatim in substance: read, append, write back."""
    key = guide_key(session_id)
    messages = json.loads(client.get(key) or "[]")
    messages.append(message)
    client.setex(key, GUIDE_TTL_SECONDS, json.dumps(messages))


def guide_turn(client: redis.Redis, session_id: str, query: str) -> int:
    """The guide's chat route: load the history, then save the query and the answer."""
    context = guide_load(client, session_id)
    guide_save(client, session_id, {"role": "user", "content": query})
    guide_save(client, session_id, {"role": "assistant", "content": f"An answer after {len(context)} messages."})
    return len(context)


# --- Concurrent writers ---------------------------------------------------------------


def run_writers(writers: int, per_writer: int, write) -> None:
    """``writers`` threads each calling ``write(writer, index)`` ``per_writer`` times,
    released together so their writes overlap."""
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def work(writer: int) -> None:
        try:
            barrier.wait(timeout=30)
            for index in range(per_writer):
                write(writer, index)
        except BaseException as error:  # reported below, never swallowed
            errors.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    if errors:
        raise errors[0]
