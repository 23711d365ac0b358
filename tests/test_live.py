"""GET /api/session/<id>/events: a session's live feed, over real HTTP on uvicorn.

Every message stored after the resume point arrives once, in seq order, with its seq as
the event id; a reconnect with Last-Event-ID gets what it missed and nothing twice.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from redis import Redis

from conversations import staffing
from conversations.ids import new_public_id
from conversations.models import Session
from tests.http import Feed, get, post_json
from tests.servers import asgi_server, dev_server

pytestmark = pytest.mark.usefixtures("transactional_db")


def eventually(condition, *, attempts: int = 100) -> bool:
    """Whether ``condition`` comes true while the server catches up (a hang-up is seen by
    the server a moment after the client made it)."""
    for _ in range(attempts):
        if condition():
            return True
        time.sleep(0.1)
    return False


def new_session(base_url: str) -> str:
    status, created, _ = post_json(base_url, "/api/session/create", {"source": "widget"})
    assert status == 201, created
    return created["session_id"]


def say(base_url: str, session_id: str, text: str) -> dict:
    status, created, _ = post_json(base_url, f"/api/session/{session_id}/messages", {"message": text})
    assert status == 201, created
    return created["message"]


def opened(base_url: str, path: str, **kwargs) -> Feed:
    """A feed past its opening: the retry line and the first status have been read."""
    feed = Feed(base_url, path, **kwargs)
    assert feed.status == 200
    assert feed.next() == ("retry", 3000, None)
    event, status, _ = feed.next_event()
    assert event == "status"
    assert status == {"handled_by": None, "waiting": False}
    return feed


def test_it_sends_each_new_message_in_seq_order_with_its_seq_as_the_event_id(live_url, fake_llm):
    session_id = new_session(live_url)
    feed = opened(live_url, f"/api/session/{session_id}/events")

    say(live_url, session_id, "first")
    say(live_url, session_id, "second")
    status, turn, _ = post_json(live_url, "/api/chat", {"query": "third", "session_id": session_id})
    assert status == 200, turn

    frames = [feed.next_event(skip=("comment", "typing")) for _ in range(4)]
    feed.close()
    assert [(event, data["seq"], event_id) for event, data, event_id in frames] == [
        ("message", 1, "1"),
        ("message", 2, "2"),
        ("message", 3, "3"),
        ("message", 4, "4"),
    ]
    assert [data["content"] for _, data, _ in frames[:3]] == ["first", "second", "third"]
    assert frames[3][1] == turn["messages"]["assistant"]
    assert feed.headers["Content-Type"].startswith("text/event-stream")


def test_without_a_resume_point_it_starts_after_the_newest_message(live_url):
    session_id = new_session(live_url)
    say(live_url, session_id, "already on the page")
    feed = opened(live_url, f"/api/session/{session_id}/events")

    say(live_url, session_id, "new")

    (message,) = feed.messages(1)
    feed.close()
    assert (message["seq"], message["content"]) == (2, "new")


def test_it_resumes_after_the_seq_given_as_after(live_url):
    session_id = new_session(live_url)
    for text in ("one", "two", "three"):
        say(live_url, session_id, text)

    feed = opened(live_url, f"/api/session/{session_id}/events?after=1")

    assert [m["content"] for m in feed.messages(2)] == ["two", "three"]
    say(live_url, session_id, "four")
    assert [m["seq"] for m in feed.messages(1)] == [4]
    feed.close()


def test_a_reconnect_with_last_event_id_after_the_server_dropped_the_feed_misses_nothing_and_doubles_nothing():
    # One process, so its in-process hub relays (no REDIS_URL).
    env = {"REDIS_URL": "", "CHATBOT_LIVE_HEARTBEAT_SECONDS": "0.5"}
    with asgi_server(env) as first_server:
        session_id = new_session(first_server)
        feed = opened(first_server, f"/api/session/{session_id}/events")
        say(first_server, session_id, "one")
        say(first_server, session_id, "two")
        received = feed.messages(2)
    # The server went away (a deploy): the feed ends where it was.
    with pytest.raises((EOFError, OSError)):
        while True:
            feed.next()
    last_event_id = str(received[-1]["seq"])

    with asgi_server(env) as second_server:
        say(second_server, session_id, "three, while the visitor was away")
        say(second_server, session_id, "four, while the visitor was away")
        feed = opened(second_server, f"/api/session/{session_id}/events", headers={"Last-Event-ID": last_event_id})
        received += feed.messages(2)
        say(second_server, session_id, "five")
        received += feed.messages(1)
        say(second_server, session_id, "six")
        received += feed.messages(1)
        feed.close()

    assert [m["seq"] for m in received] == [1, 2, 3, 4, 5, 6]


def test_last_event_id_wins_over_after(live_url):
    session_id = new_session(live_url)
    for text in ("one", "two", "three"):
        say(live_url, session_id, text)

    feed = opened(live_url, f"/api/session/{session_id}/events?after=0", headers={"Last-Event-ID": "2"})

    assert [m["content"] for m in feed.messages(1)] == ["three"]
    feed.close()


def test_a_turn_being_answered_shows_as_typing_before_its_messages(live_url, fake_llm):
    session_id = new_session(live_url)
    feed = opened(live_url, f"/api/session/{session_id}/events")

    status, turn, _ = post_json(live_url, "/api/chat", {"query": "Anyone there?", "session_id": session_id})
    assert status == 200, turn

    assert feed.next_event() == ("typing", {"author_name": None}, None)
    assert [m["role"] for m in feed.messages(2)] == ["user", "assistant"]
    feed.close()


def test_a_change_of_who_answers_arrives_as_status(live_url, live_hub, django_user_model):
    staff = django_user_model.objects.create_user("ann", first_name="Ann", last_name="Lee", is_staff=True)
    session_id = new_session(live_url)
    feed = opened(live_url, f"/api/session/{session_id}/events")
    session = Session.objects.get(public_id=session_id)

    staffing.ask_for_person(session=session)
    assert feed.next_event() == ("status", {"handled_by": None, "waiting": True}, None)
    staffing.take_over(session=session, staff=staff)
    assert feed.next_event() == ("status", {"handled_by": "Ann Lee", "waiting": False}, None)
    staffing.hand_back(session=session, staff=staff)
    assert feed.next_event() == ("status", {"handled_by": None, "waiting": False}, None)
    feed.close()


def test_a_feed_opened_on_a_taken_over_session_says_who_answers(live_url, live_hub, django_user_model):
    staff = django_user_model.objects.create_user("bo", is_staff=True)
    session_id = new_session(live_url)
    staffing.take_over(session=Session.objects.get(public_id=session_id), staff=staff)

    feed = Feed(live_url, f"/api/session/{session_id}/events")

    assert feed.next()[0] == "retry"
    assert feed.next_event() == ("status", {"handled_by": "bo", "waiting": False}, None)
    feed.close()


def test_a_sessions_channel_is_subscribed_while_a_feed_is_open_and_dropped_when_the_last_closes(live_url, live_redis):
    session_id = new_session(live_url)
    channel = f"chatbot:live:{Session.objects.get(public_id=session_id).pk}"
    redis = Redis.from_url(live_redis.url)

    def subscribers() -> int:
        return dict(redis.pubsub_numsub(channel))[channel.encode()]

    feeds = [opened(live_url, f"/api/session/{session_id}/events") for _ in range(3)]
    assert 1 <= subscribers() <= 2  # one subscriber connection per server process that has a feed
    for feed in feeds:
        feed.close()

    assert eventually(lambda: subscribers() == 0)


def test_an_idle_feed_sends_heartbeats(live_url):
    session_id = new_session(live_url)
    feed = opened(live_url, f"/api/session/{session_id}/events")

    assert feed.next() == ("comment", "ping", None)
    assert feed.next() == ("comment", "ping", None)
    feed.close()


def test_unknown_expired_and_someone_elses_sessions_get_the_same_404(live_url, django_user_model):
    owner = django_user_model.objects.create_user("owner")
    owned = Session.objects.create(owner=owner)
    expired = Session.objects.create()
    Session.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    unknown = new_public_id()

    answers = [get(live_url, f"/api/session/{sid}/events") for sid in (unknown, expired.public_id, owned.public_id)]

    assert {status for status, _ in answers} == {404}
    assert len({body for _, body in answers}) == 1
    assert b'"session_not_found"' in answers[0][1]


def test_a_bad_resume_point_is_a_400(live_url):
    session_id = new_session(live_url)

    status, body = get(live_url, f"/api/session/{session_id}/events?after=soon")

    assert status == 400
    assert b'"invalid"' in body


def test_an_allowed_origin_may_read_the_feed_and_another_may_not(live_url):
    session_id = new_session(live_url)

    allowed = Feed(live_url, f"/api/session/{session_id}/events", headers={"Origin": "http://customer.example"})
    refused = Feed(live_url, f"/api/session/{session_id}/events", headers={"Origin": "http://evil.example"})

    assert allowed.headers["Access-Control-Allow-Origin"] == "http://customer.example"
    assert "Access-Control-Allow-Origin" not in refused.headers
    allowed.close()
    refused.close()


def test_a_script_in_a_message_arrives_as_the_same_text(live_url):
    session_id = new_session(live_url)
    feed = opened(live_url, f"/api/session/{session_id}/events")
    payload = "<img src=x onerror=alert(1)></script><script>alert(2)</script>"

    say(live_url, session_id, payload)

    (message,) = feed.messages(1)
    feed.close()
    assert message["content"] == payload


def test_the_development_server_serves_the_feed_too(tmp_path):
    with dev_server({"CHATBOT_LIVE_HEARTBEAT_SECONDS": "0.5"}, log_path=tmp_path / "runserver.log") as base_url:
        session_id = new_session(base_url)
        feed = opened(base_url, f"/api/session/{session_id}/events")

        say(base_url, session_id, "hello from the same process")

        (message,) = feed.messages(1)
        assert feed.next() == ("comment", "ping", None)
        feed.close()
    assert message["content"] == "hello from the same process"
