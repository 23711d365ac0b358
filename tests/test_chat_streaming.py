"""Streamed turns (Server-Sent Events) over real HTTP, under the development server's
WSGI handler (pytest-django's live server) and under uvicorn, the production server."""

from __future__ import annotations

import time

import pytest

from conversations.models import Message
from tests.http import EventStream, delete, stream_events

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["wsgi", "asgi"])
def server(request, live_server, fake_llm):
    """Each streaming test runs against both servers."""
    if request.param == "wsgi":
        return live_server.url
    return request.getfixturevalue("uvicorn_url")


def wait_for_messages(count: int, timeout: float = 10.0) -> list[Message]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = list(Message.objects.order_by("seq"))
        if len(messages) >= count:
            return messages
        time.sleep(0.05)
    raise AssertionError(f"expected {count} stored messages, found {Message.objects.count()}")


def test_events_come_in_order_session_deltas_done(server, fake_llm):
    fake_llm.reset(reply="Streaming works fine.", chunk_size=5)

    events = stream_events(server, "/api/chat", {"query": "Stream please", "stream": True})

    names = [name for name, _ in events]
    assert names[0] == "session"
    assert names[-1] == "done"
    assert set(names[1:-1]) == {"delta"}
    assert len(names) - 2 == len("Streaming works fine.") // 5 + 1
    assert "".join(data["text"] for name, data in events if name == "delta") == "Streaming works fine."
    done = events[-1][1]
    assert done["session_id"] == events[0][1]["session_id"]
    assert done["answer"] == "Streaming works fine."
    assert done["messages"]["user"]["seq"] == 1
    assert done["messages"]["assistant"]["seq"] == 2
    stored = list(Message.objects.order_by("seq").values_list("role", "content"))
    assert stored == [("user", "Stream please"), ("assistant", "Streaming works fine.")]


def test_deltas_arrive_before_the_reply_is_complete(server, fake_llm):
    fake_llm.reset(reply="one two three four five six seven eight", chunk_size=4, chunk_delay=0.1)
    stream = EventStream(server, "/api/chat", {"query": "Slowly", "stream": True})
    events = iter(stream)

    assert next(events)[0] == "session"
    name, data = next(events)

    assert (name, data) == ("delta", {"text": "one "})
    assert Message.objects.count() == 0  # nothing is stored until the reply is whole
    rest = list(events)
    stream.connection.close()
    assert rest[-1][0] == "done"
    assert Message.objects.count() == 2


def test_accept_text_event_stream_asks_for_a_stream_too(server, fake_llm):
    stream = EventStream(server, "/api/chat", {"query": "hi"})

    assert stream.status == 200
    assert stream.content_type.startswith("text/event-stream")
    assert [name for name, _ in stream][-1] == "done"


def test_a_stream_cut_by_the_upstream_ends_with_an_error_and_stores_nothing(server, fake_llm):
    fake_llm.reset(reply="This answer will never finish.", chunk_size=4, cut_after_chunks=2)

    events = stream_events(server, "/api/chat", {"query": "Go", "stream": True})

    assert [name for name, _ in events] == ["session", "delta", "delta", "error"]
    error = events[-1][1]
    assert error["success"] is False
    assert error["error"]["code"] == "upstream_incomplete"
    assert error["error"]["retryable"] is True
    assert error["session_id"] == events[0][1]["session_id"]
    assert Message.objects.count() == 0


STREAM_FAILURES = {
    "server error": ({"status": 500}, 0, "upstream_error"),
    "rate limited upstream": ({"status": 429}, 0, "upstream_rate_limited"),
    "no answer in time": ({"delay": 3}, 0, "upstream_timeout"),
    "stalls mid-stream": ({"stall_after_chunks": 2}, 2, "upstream_timeout"),
    "garbage mid-stream": ({"garbage_after_chunks": 2}, 2, "upstream_malformed"),
    "not a stream at all": ({"garbage": True}, 0, "upstream_malformed"),
}


@pytest.mark.parametrize(("behaviour", "deltas", "code"), STREAM_FAILURES.values(), ids=STREAM_FAILURES.keys())
def test_an_upstream_failure_is_an_error_event_and_stores_nothing(server, fake_llm, behaviour, deltas, code):
    fake_llm.reset(reply="An answer that goes wrong.", chunk_size=4, **behaviour)

    events = stream_events(server, "/api/chat", {"query": "Go", "stream": True})

    assert [name for name, _ in events] == ["session", *["delta"] * deltas, "error"]
    error = events[-1][1]
    assert error["error"]["code"] == code
    assert error["error"]["retryable"] is True
    assert error["session_id"] == events[0][1]["session_id"]
    assert Message.objects.count() == 0


def test_a_client_that_hangs_up_mid_stream_still_gets_its_turn_stored(server, fake_llm):
    reply = "A long answer that keeps coming after the visitor has gone to the full page."
    fake_llm.reset(reply=reply, chunk_size=4, chunk_delay=0.05)
    stream = EventStream(server, "/api/chat", {"query": "Tell me everything", "stream": True})
    events = iter(stream)
    session_id = next(events)[1]["session_id"]
    assert next(events)[0] == "delta"

    stream.close()  # the visitor clicked "Open full page"

    user, assistant = wait_for_messages(2)
    assert (user.role, user.content) == ("user", "Tell me everything")
    assert (assistant.role, assistant.content) == ("assistant", reply)
    assert user.session.public_id == session_id


def test_a_repeated_client_message_id_streams_the_stored_turn(server, fake_llm):
    first = stream_events(server, "/api/chat", {"query": "Once", "stream": True, "client_message_id": "c-1"})
    session_id = first[0][1]["session_id"]

    again = stream_events(
        server, "/api/chat", {"query": "Once", "stream": True, "client_message_id": "c-1", "session_id": session_id}
    )

    assert [name for name, _ in again] == ["session", "done"]
    assert again[-1][1]["replayed"] is True
    assert again[-1][1]["messages"] == first[-1][1]["messages"]
    assert len(fake_llm.requests) == 1


def test_an_unknown_session_is_a_plain_json_404_not_a_stream(server, fake_llm):
    stream = EventStream(server, "/api/chat", {"query": "hi", "stream": True, "session_id": "x" * 32})

    assert stream.status == 404
    assert stream.content_type == "application/json"
    stream.connection.close()


def test_a_session_erased_while_its_answer_streams_ends_with_the_common_404(server, fake_llm):
    fake_llm.reset(reply="An answer for a conversation that is about to vanish.", chunk_size=4, chunk_delay=0.05)
    stream = EventStream(server, "/api/chat", {"query": "Hello", "stream": True})
    events = iter(stream)
    session_id = next(events)[1]["session_id"]

    deleted = delete(server, f"/api/sessions/{session_id}/")

    rest = list(events)
    stream.connection.close()
    assert deleted == 204
    assert rest[-1][0] == "error"
    assert rest[-1][1]["error"]["code"] == "session_not_found"
    assert Message.objects.count() == 0
