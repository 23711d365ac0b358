"""Many answers in flight at once, on one worker of the production command (the
Procfile's web line) on PostgreSQL: no cap below the bound, back-pressure at it, one
model call per message however often it is sent, and turns that survive their
request, a crash of their process, and a graceful shutdown."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conversations.models import Message, Session, TurnReservation
from tests.http import EventStream, post_json

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def upstream(fake_llm, **env) -> dict[str, str]:
    """The environment that points a production instance at the fake model."""
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake_llm.base_url, "OPENAI_MAX_RETRIES": "0"} | env
    return {"CHATBOT_RATELIMIT_ENABLE": "false"} | env


def new_session(base_url: str) -> str:
    status, body, _ = post_json(base_url, "/api/session/create", {})
    assert status == 201
    return body["session_id"]


def streamed_turn(base_url: str, body: dict, *, timeout: float = 60.0) -> list[tuple[str, dict]]:
    stream = EventStream(base_url, "/api/chat", {**body, "stream": True}, timeout=timeout)
    try:
        assert stream.status == 200, stream.status
        return list(stream)
    finally:
        stream.connection.close()


def test_one_worker_holds_two_hundred_streamed_answers_open_at_once(production_instances, fake_llm):
    """The fake model answers none until 200 requests are open at the same time, which a
    pool of fewer than 200 threads (the old design had 64) can never reach."""
    (server,) = production_instances(1, **upstream(fake_llm, OPENAI_TIMEOUT="60"))
    visitors = 200
    fake_llm.reset(hold_until_in_flight=visitors, echo=True)
    sessions = [new_session(server) for _ in range(visitors)]

    with ThreadPoolExecutor(visitors) as pool:
        results = list(pool.map(lambda s: streamed_turn(server, {"query": f"q {s}", "session_id": s}), sessions))

    assert fake_llm.max_in_flight >= visitors
    assert [events[-1][0] for events in results] == ["done"] * visitors
    assert Message.objects.filter(session__public_id__in=sessions).count() == 2 * visitors
    for session_id, events in zip(sessions, results, strict=True):
        assert events[-1][1]["answer"] == f"echo: q {session_id}"


def test_past_the_bound_a_turn_is_refused_at_once_with_503_and_nothing_is_written(production_instances, fake_llm):
    (server,) = production_instances(
        1, **upstream(fake_llm, CHATBOT_MAX_TURNS_IN_FLIGHT="2", CHATBOT_BUSY_RETRY_AFTER="3")
    )
    fake_llm.reset(stall_after_chunks=0)  # the two admitted turns wait on the model
    held = [EventStream(server, "/api/chat", {"query": f"held {n}", "stream": True}) for n in range(2)]
    fake_llm.wait_for_requests(2)
    session_id = new_session(server)

    status, body, headers = post_json(server, "/api/chat", {"query": "one too many", "session_id": session_id})

    assert status == 503
    assert headers["Retry-After"] == "3"
    assert body["error"] == {
        "code": "busy",
        "message": "The assistant is busy right now. Nothing was saved; retry in a moment.",
        "retryable": True,
        "retry_after": 3,
    }
    assert len(fake_llm.requests) == 2  # the refused turn never reached the model
    assert not Message.objects.filter(session__public_id=session_id).exists()
    for stream in held:
        stream.close()


def duplicates_at_once(urls: list[str], body: dict) -> list[tuple[int, dict]]:
    go = threading.Barrier(len(urls))

    def send(url):
        go.wait()
        status, answer, _ = post_json(url, "/api/chat", body, timeout=30)
        return status, answer

    with ThreadPoolExecutor(len(urls)) as pool:
        return list(pool.map(send, urls))


@pytest.mark.parametrize("instances", [1, 2], ids=["one instance", "two instances"])
def test_concurrent_duplicates_of_one_message_cause_exactly_one_model_call(production_instances, fake_llm, instances):
    servers = production_instances(instances, **upstream(fake_llm))
    session_id = new_session(servers[0])
    fake_llm.reset(delay=1.0)  # every duplicate arrives while the first is being answered
    body = {"query": "sent five times", "session_id": session_id, "client_message_id": "c-dup-1"}

    answers = duplicates_at_once([servers[n % instances] for n in range(5)], body)

    assert [status for status, _ in answers] == [200] * 5
    assert len(fake_llm.requests) == 1
    assert len({(a["messages"]["user"]["id"], a["messages"]["assistant"]["id"]) for _, a in answers}) == 1
    assert sorted(a["replayed"] for _, a in answers) == [False, True, True, True, True]
    assert Message.objects.filter(session__public_id=session_id).count() == 2
    assert not TurnReservation.objects.exists()


def test_a_streamed_duplicate_waits_for_the_first_and_gets_its_turn_whole(production_instances, fake_llm):
    (server,) = production_instances(1, **upstream(fake_llm))
    session_id = new_session(server)
    fake_llm.reset(chunk_delay=0.05, reply="One answer, written once, in several chunks.")
    body = {"query": "stream me", "session_id": session_id, "client_message_id": "c-dup-2"}
    first = EventStream(server, "/api/chat", {**body, "stream": True})
    fake_llm.wait_for_requests(1)

    second = streamed_turn(server, body)

    first_events = list(first)
    assert len(fake_llm.requests) == 1
    assert [event for event, _ in second] == ["session", "done"]
    assert second[-1][1]["replayed"] is True
    assert second[-1][1]["messages"] == first_events[-1][1]["messages"]


def test_a_duplicate_of_a_turn_whose_process_died_is_answered_once_the_reservation_expires(
    production_instances, fake_llm
):
    a, b = production_instances(2, **upstream(fake_llm, CHATBOT_TURN_RESERVATION_SECONDS="2"))
    session_id = new_session(a)
    fake_llm.reset(stall_after_chunks=1)
    body = {"query": "asked before a crash", "session_id": session_id, "client_message_id": "c-crash-1"}
    doomed = EventStream(a, "/api/chat", {**body, "stream": True})
    fake_llm.wait_for_requests(1)
    production_instances.servers[0].signal(signal.SIGKILL)  # mid-answer
    production_instances.servers[0].process.wait(timeout=10)
    doomed.connection.close()
    assert TurnReservation.objects.filter(session__public_id=session_id).exists()
    fake_llm.reset(reply="Answered after the crash.")

    status, answer, _ = post_json(b, "/api/chat", body, timeout=30)

    assert status == 200, answer
    assert answer["answer"] == "Answered after the crash."
    assert len(fake_llm.requests) == 1  # B asked once, after the dead reservation expired
    assert Message.objects.filter(session__public_id=session_id).count() == 2
    assert not TurnReservation.objects.exists()


@pytest.mark.parametrize("visitor_stays", [True, False], ids=["visitor still reading", "visitor gone"])
def test_a_turn_in_flight_during_a_graceful_shutdown_is_stored(production_instances, fake_llm, visitor_stays):
    (server,) = production_instances(1, **upstream(fake_llm))
    session_id = new_session(server)
    fake_llm.reset(chunk_delay=0.1, reply="Finished although the server was asked to stop.")
    stream = EventStream(server, "/api/chat", {"query": "before SIGTERM", "session_id": session_id, "stream": True})
    fake_llm.wait_for_requests(1)
    if not visitor_stays:
        stream.close()
        time.sleep(0.2)  # let the server notice the hang-up before it is told to stop

    production_instances.servers[0].signal(signal.SIGTERM)
    events = list(stream) if visitor_stays else []
    # uvicorn re-raises the signal once it has shut down gracefully
    assert production_instances.servers[0].process.wait(timeout=30) in (0, -signal.SIGTERM)

    stored = list(Message.objects.filter(session__public_id=session_id).values_list("role", "content"))
    assert stored == [("user", "before SIGTERM"), ("assistant", "Finished although the server was asked to stop.")]
    if visitor_stays:
        assert events[-1][0] == "done"
    assert Session.objects.get(public_id=session_id).last_seq == 2
