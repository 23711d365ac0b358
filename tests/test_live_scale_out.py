"""Live feeds across instances of the production server (the Procfile's web command),
on PostgreSQL and Redis: a message stored through one instance reaches the feeds open on
another, however many open at once, and an open feed holds no database connection."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from conversations.models import Session
from tests.http import Feed, post_json

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def opened(base_url: str, session: Session) -> Feed:
    feed = Feed(base_url, f"/api/session/{session.public_id}/events", timeout=20)
    assert feed.status == 200
    assert feed.next_event(skip=("comment", "retry"))[0] == "status"
    return feed


def open_at_once(base_url: str, sessions: list[Session]) -> list[Feed]:
    """Open one feed per session, all requests in flight together."""
    with ThreadPoolExecutor(len(sessions)) as pool:
        return list(pool.map(lambda session: opened(base_url, session), sessions))


def test_a_message_stored_through_one_instance_reaches_a_feed_on_another(production_instances):
    a, b = production_instances(2)
    status, started, _ = post_json(a, "/api/chat", {"query": "Hello from the widget", "channel": "widget"})
    assert status == 200, started
    feed = opened(b, Session.objects.get(public_id=started["session_id"]))

    status, turn, _ = post_json(a, "/api/chat", {"query": "Still there?", "session_id": started["session_id"]})
    assert status == 200, turn

    assert feed.next_event() == ("typing", {"author_name": None}, None)
    user, assistant = feed.messages(2)
    feed.close()
    assert (user["seq"], user["content"]) == (3, "Still there?")
    assert assistant == turn["messages"]["assistant"]


def test_many_feeds_opened_at_once_on_a_fresh_instance_all_receive(production_instances):
    writer, fresh = production_instances(2, CHATBOT_RATELIMIT_ENABLE="false")
    sessions = [Session.objects.create(source="widget") for _ in range(24)]

    feeds = open_at_once(fresh, sessions)
    for number, session in enumerate(sessions):
        status, created, _ = post_json(writer, f"/api/session/{session.public_id}/messages", {"message": f"#{number}"})
        assert status == 201, created

    received = [feed.messages(1)[0]["content"] for feed in feeds]
    for feed in feeds:
        feed.close()
    assert received == [f"#{number}" for number in range(len(sessions))]


def test_open_feeds_hold_no_database_connection(production_instances):
    # A pool of three: were each open feed to keep a connection, the fourth could not
    # open. The instance names itself to PostgreSQL, so its connections can be counted.
    (server,) = production_instances(
        1,
        CHATBOT_RATELIMIT_ENABLE="false",
        DATABASE_POOL_MIN_SIZE="1",
        DATABASE_POOL_MAX_SIZE="3",
        PGAPPNAME="live-feeds-instance",
    )
    sessions = [Session.objects.create(source="page") for _ in range(20)]

    feeds = open_at_once(server, sessions)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            ["live-feeds-instance"],
        )
        (server_connections,) = cursor.fetchone()
    for session in sessions:
        status, created, _ = post_json(server, f"/api/session/{session.public_id}/messages", {"message": "hi"})
        assert status == 201, created
    received = [feed.messages(1)[0]["content"] for feed in feeds]
    for feed in feeds:
        feed.close()

    assert 1 <= server_connections <= 3
    assert received == ["hi"] * len(sessions)
