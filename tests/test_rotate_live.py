"""Rotating a session's id over real HTTP: the live feeds open on the old id end at once,
on this instance and every other, and a rotation racing turns and writes loses nothing
and puts nothing where it does not belong (PostgreSQL, for its row locks)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from conversations.models import Message, Session, TurnReservation
from tests.http import Feed, post_json
from tests.servers import asgi_server, dev_server

pytestmark = pytest.mark.django_db(transaction=True)


def opened(base_url: str, session_id: str) -> Feed:
    """A feed on ``session_id`` past its opening status."""
    feed = Feed(base_url, f"/api/session/{session_id}/events", timeout=20)
    assert feed.status == 200
    assert feed.next_event(skip=("comment", "retry"))[0] == "status"
    return feed


def ended(feed: Feed) -> bool:
    """Whether the server ends the feed (heartbeats until then are read past); a feed
    left open fails by its read timeout instead."""
    try:
        while True:
            event, data, _ = feed.next()
            assert event == "comment", (event, data)  # nothing else reaches a revoked feed
    except EOFError:
        return True
    finally:
        feed.connection.close()


def rotate(base_url: str, session_id: str) -> str:
    status, body, _ = post_json(base_url, f"/api/session/{session_id}/rotate", {})
    assert status == 200, body
    return body["session_id"]


@pytest.fixture(params=["uvicorn", "runserver"])
def one_process(request, tmp_path):
    """A single server process without Redis, so its in-process hub relays: uvicorn
    (feeds on the event loop) and the development server (feeds on threads)."""
    env = {"REDIS_URL": "", "CHATBOT_LIVE_HEARTBEAT_SECONDS": "0.5"}
    if request.param == "uvicorn":
        with asgi_server(env) as base_url:
            yield base_url
    else:
        with dev_server(env, log_path=tmp_path / "runserver.log") as base_url:
            yield base_url


def test_rotating_ends_every_feed_open_on_the_old_id_in_one_process(one_process):
    old_id = Session.objects.create(source="page").public_id
    feeds = [opened(one_process, old_id) for _ in range(2)]

    new_id = rotate(one_process, old_id)

    assert all(ended(feed) for feed in feeds)
    assert Feed(one_process, f"/api/session/{old_id}/events").status == 404
    feed = opened(one_process, new_id)
    status, created, _ = post_json(one_process, f"/api/session/{new_id}/messages", {"message": "on the new id"})
    assert status == 201, created
    assert feed.messages(1)[0]["content"] == "on the new id"
    feed.close()


def test_a_rotation_by_another_instance_ends_the_feeds_on_this_one(live_url, live_hub):
    # live_url is two uvicorn workers on Redis; the rotation is made here, in the test's
    # own process, which publishes through the same Redis as another instance would.
    session = Session.objects.create(source="widget")
    old_id = session.public_id
    feeds = [opened(live_url, old_id) for _ in range(4)]

    new_id = session.rotate_public_id()

    assert all(ended(feed) for feed in feeds)
    assert Feed(live_url, f"/api/session/{old_id}/events").status == 404
    opened(live_url, new_id).close()


@pytest.mark.postgres
@pytest.mark.redis
def test_a_rotation_through_one_production_instance_ends_the_feeds_on_both(production_instances):
    a, b = production_instances(2)
    old_id = Session.objects.create(source="page").public_id
    feeds = [opened(a, old_id), opened(b, old_id)]

    new_id = rotate(a, old_id)

    assert all(ended(feed) for feed in feeds)
    assert Feed(b, f"/api/session/{old_id}/events").status == 404
    opened(b, new_id).close()


def transcript(session: Session) -> list[Message]:
    return list(Message.objects.filter(session=session).order_by("seq"))


def test_turns_in_flight_when_the_link_is_revoked_store_nothing_and_never_learn_the_new_id(uvicorn_url, fake_llm):
    fake_llm.reset(echo=True)
    status, first, _ = post_json(uvicorn_url, "/api/chat", {"query": "before"})
    assert status == 200, first
    old_id = first["session_id"]
    fake_llm.reset(echo=True, delay=1.0)  # the model is still writing when the link is revoked
    queries = [f"in flight {number}" for number in range(3)]

    with ThreadPoolExecutor(len(queries)) as pool:
        answers = pool.map(
            lambda q: post_json(
                uvicorn_url, "/api/chat", {"query": q, "session_id": old_id, "client_message_id": f"c-{q[-1]}"}
            ),
            queries,
        )
        fake_llm.wait_for_requests(len(queries))  # each turn has read the session by the old id
        new_id = rotate(uvicorn_url, old_id)
        answers = list(answers)

    assert [(status, body["error"]["code"]) for status, body, _ in answers] == [(404, "session_not_found")] * 3
    assert all(new_id not in str(body) for _, body, _ in answers)
    session = Session.objects.get(public_id=new_id)
    assert [(m.seq, m.content) for m in transcript(session)] == [(1, "before"), (2, "echo: before")]
    assert not TurnReservation.objects.exists()  # a retry on the new id asks the model at once


def test_writes_and_turns_racing_a_rotation_are_each_stored_whole_or_refused_whole(on_postgres, uvicorn_url, fake_llm):
    fake_llm.reset(echo=True, delay=0.01)
    old_id = Session.objects.create(source="widget").public_id
    writers, writes_each = 6, 5
    go = threading.Barrier(writers + 1)

    def writer(number: int) -> list[tuple[str, int, dict]]:
        go.wait()
        results = []
        for write in range(writes_each):
            text = f"writer {number} write {write}"
            if number % 2:
                status, body, _ = post_json(uvicorn_url, "/api/chat", {"query": text, "session_id": old_id})
            else:
                status, body, _ = post_json(uvicorn_url, f"/api/session/{old_id}/messages", {"message": text})
            results.append((text, status, body))
        return results

    def rotator() -> str:
        go.wait()
        fake_llm.wait_for_requests(2)  # while turns are being answered
        return rotate(uvicorn_url, old_id)

    with ThreadPoolExecutor(writers + 1) as pool:
        rotation = pool.submit(rotator)
        results = [result for batch in pool.map(writer, range(writers)) for result in batch]
        new_id = rotation.result()

    session = Session.objects.get(public_id=new_id)
    messages = transcript(session)
    stored = {m.content for m in messages if m.role == "user"}
    assert [m.seq for m in messages] == list(range(1, len(messages) + 1))
    for text, status, body in results:
        assert status in (200, 201, 404), (text, status, body)
        assert new_id not in str(body)  # an old-id request never learns the new id
        assert (text in stored) == (status != 404), (text, status)
    assert {status for _, status, _ in results} >= {404} and {200, 201} & {status for _, status, _ in results}
    by_seq = {m.seq: m for m in messages}
    for m in messages:  # each stored turn's answer follows its question
        if m.role == "assistant":
            assert by_seq[m.seq - 1].role == "user"
            assert m.content == f"echo: {by_seq[m.seq - 1].content}"
    assert session.last_seq == len(messages)
