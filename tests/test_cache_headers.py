"""Every answer that carries a transcript or a session says ``Cache-Control: private,
no-store``: a CDN told to cache everything must not keep conversations by URL."""

from __future__ import annotations

import pytest

from conversations.models import MessageDraft, Role, Session
from tests.http import EventStream

pytestmark = pytest.mark.django_db

NO_STORE = "private, no-store"


@pytest.fixture
def session():
    session = Session.objects.create(source="widget")
    session.add_message(MessageDraft(role=Role.USER, content="Do you ship to Norway?"))
    return session


def test_creating_a_session(api):
    assert api.post("/api/session/create", {}, format="json")["Cache-Control"] == NO_STORE
    assert api.post("/api/sessions/", {}, format="json")["Cache-Control"] == NO_STORE


def test_reading_and_writing_messages(api, session):
    for url in [f"/api/session/{session.public_id}/messages", f"/api/sessions/{session.public_id}/messages/"]:
        assert api.get(url)["Cache-Control"] == NO_STORE
        assert api.get(url + "?before=2&limit=1")["Cache-Control"] == NO_STORE
        assert api.post(url, {"message": "hi"}, format="json")["Cache-Control"] == NO_STORE


def test_a_session_as_a_resource(staff_api, session):
    url = f"/api/sessions/{session.public_id}/"

    assert staff_api.get("/api/sessions/")["Cache-Control"] == NO_STORE
    assert staff_api.get(url)["Cache-Control"] == NO_STORE
    assert staff_api.patch(url, {"title": "Norway"}, format="json")["Cache-Control"] == NO_STORE
    assert staff_api.delete(url)["Cache-Control"] == NO_STORE


def test_a_chat_turn(api, session):
    body = {"query": "And Sweden?", "session_id": session.public_id}
    assert api.post("/api/chat", body, format="json")["Cache-Control"] == NO_STORE
    assert (
        api.post(f"/api/chat?session={session.public_id}", {"query": "hi"}, format="json")["Cache-Control"] == NO_STORE
    )


def test_the_full_page_with_a_session(client, session):
    assert client.get(f"/chat?session={session.public_id}")["Cache-Control"] == NO_STORE
    assert client.get("/chat")["Cache-Control"] == NO_STORE


def test_refusals_on_session_urls_too(api):
    # A 404 or 400 names no conversation, but a cache must not learn that from it either.
    assert api.get("/api/session/" + "x" * 32 + "/messages")["Cache-Control"] == NO_STORE
    assert api.post("/api/chat", {"query": ""}, format="json")["Cache-Control"] == NO_STORE


@pytest.mark.django_db(transaction=True)
def test_a_streamed_turn_from_the_production_server(uvicorn_url):
    stream = EventStream(uvicorn_url, "/api/chat", {"query": "hello", "stream": True})
    try:
        events = list(stream)
        cache_control = stream.response.getheader("Cache-Control")
    finally:
        stream.connection.close()

    assert events[-1][0] == "done"
    assert cache_control == NO_STORE


def test_pages_without_a_conversation_are_left_alone(client):
    assert "no-store" not in client.get("/widget/demo/").get("Cache-Control", "")
    assert "no-store" not in client.get("/api/widget/config").get("Cache-Control", "")
