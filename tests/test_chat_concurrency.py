"""Turns on the same session at once (widget and full page open together, a double
click), through the production server over real HTTP. Run on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conversations.models import Message, Session
from tests.http import post_json
from tests.servers import asgi_server

pytestmark = pytest.mark.django_db(transaction=True)

CLIENTS = 10
TURNS_EACH = 3


def test_concurrent_turns_on_one_session_stay_in_contiguous_pairs_and_lose_nothing(uvicorn_url, fake_llm):
    fake_llm.reset(echo=True, delay=0.02)
    status, first, _ = post_json(uvicorn_url, "/api/chat", {"query": "start"})
    assert status == 200
    session_id = first["session_id"]
    go = threading.Barrier(CLIENTS)

    def client(number: int) -> list[int]:
        go.wait()
        statuses = []
        for turn in range(TURNS_EACH):
            status, body, _ = post_json(
                uvicorn_url, "/api/chat", {"query": f"client {number} turn {turn}", "session_id": session_id}
            )
            statuses.append(status)
        return statuses

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = [s for result in pool.map(client, range(CLIENTS)) for s in result]

    assert statuses == [200] * CLIENTS * TURNS_EACH
    messages = list(Message.objects.filter(session__public_id=session_id).order_by("seq"))
    expected_count = 2 * (1 + CLIENTS * TURNS_EACH)
    assert [m.seq for m in messages] == list(range(1, expected_count + 1))
    for user, assistant in zip(messages[::2], messages[1::2], strict=True):
        assert user.role == "user"
        assert assistant.role == "assistant"
        assert assistant.content == f"echo: {user.content}"  # each answer right after its question
    queries = {m.content for m in messages[::2]}
    assert queries == {"start"} | {f"client {n} turn {t}" for n in range(CLIENTS) for t in range(TURNS_EACH)}
    assert Session.objects.get(public_id=session_id).last_seq == expected_count


def test_no_lock_is_held_while_the_model_thinks(uvicorn_url, fake_llm):
    status, first, _ = post_json(uvicorn_url, "/api/chat", {"query": "start"})
    session_id = first["session_id"]
    fake_llm.reset(delay=1.0)
    finished: list[str] = []

    def slow_turn():
        post_json(uvicorn_url, "/api/chat", {"query": "slow", "session_id": session_id})
        finished.append("turn")

    turn = threading.Thread(target=slow_turn)
    turn.start()
    deadline = time.monotonic() + 10
    while not fake_llm.requests:  # then the turn is waiting on the model
        assert time.monotonic() < deadline, "the turn never reached the model"
        threading.Event().wait(0.01)
    status, _, _ = post_json(uvicorn_url, f"/api/session/{session_id}/messages", {"message": "meanwhile"})
    finished.append("write")
    turn.join()

    assert status == 201
    assert finished == ["write", "turn"]
    contents = list(
        Message.objects.filter(session__public_id=session_id).order_by("seq").values_list("content", flat=True)
    )
    assert contents[2] == "meanwhile"
    assert contents[3] == "slow"


def test_a_double_click_with_one_client_message_id_asks_the_model_once_and_stores_one_turn(uvicorn_url, fake_llm):
    """The second click arrives while the first is being answered (the slow model sees to
    it): it waits for the first's turn instead of asking the model again."""
    fake_llm.reset(delay=1.0)
    _, first, _ = post_json(uvicorn_url, "/api/chat", {"query": "start"})
    session_id = first["session_id"]
    body = {"query": "clicked twice", "session_id": session_id, "client_message_id": "dbl-1"}
    go = threading.Barrier(2)

    def click():
        go.wait()
        return post_json(uvicorn_url, "/api/chat", body)

    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda _: click(), range(2)))

    assert [status for status, _, _ in responses] == [200, 200]
    assert len(fake_llm.requests) == 2  # "start", then one of the two clicks
    assert responses[0][1]["messages"] == responses[1][1]["messages"]
    assert sorted(response["replayed"] for _, response, _ in responses) == [False, True]
    assert Message.objects.filter(session__public_id=session_id).count() == 4


def test_many_visitors_can_wait_on_the_model_at_once(uvicorn_url, fake_llm):
    """Waiting on the model must not be capped by a small thread pool: 16 slow answers
    are all in progress together (the server runs two processes). The fake answers none
    until all 16 are open, so this counts rather than relies on timing."""
    visitors = 16
    fake_llm.reset(hold_until_in_flight=visitors)
    go = threading.Barrier(visitors)

    def visit(number):
        go.wait()
        return post_json(uvicorn_url, "/api/chat", {"query": f"visitor {number}"})[0]

    with ThreadPoolExecutor(visitors) as pool:
        statuses = list(pool.map(visit, range(visitors)))

    assert statuses == [200] * visitors
    assert fake_llm.max_in_flight == visitors


def test_visitors_waiting_on_the_model_hold_no_database_connection(on_postgres, transactional_db, fake_llm):
    """Eight answers at once through one process whose pool has two connections; the
    fake answers none until all eight are open."""
    fake_llm.reset(hold_until_in_flight=8)
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake_llm.base_url, "OPENAI_MAX_RETRIES": "0"}
    env |= {"DATABASE_POOL_MIN_SIZE": "1", "DATABASE_POOL_MAX_SIZE": "2", "DATABASE_POOL_TIMEOUT": "0.5"}
    visitors = 8
    go = threading.Barrier(visitors)
    with asgi_server(env) as server:

        def visit(number):
            go.wait()
            return post_json(server, "/api/chat", {"query": f"visitor {number}"})[0]

        with ThreadPoolExecutor(visitors) as pool:
            statuses = list(pool.map(visit, range(visitors)))

    assert statuses == [200] * visitors
    assert fake_llm.max_in_flight == visitors
