"""Session ids never reach the logs in full: they are the key to a conversation."""

from __future__ import annotations

import logging

import pytest

from conversations.ids import new_public_id, redact, shorten
from conversations.logs import RedactSessionIds
from tests.http import get_json, post_json
from tests.servers import asgi_server


def test_redact_shortens_ids_wherever_they_stand():
    session_id = new_public_id()

    text = f"GET /api/session/{session_id}/messages and /chat?session={session_id}&x=1"

    assert (
        redact(text) == f"GET /api/session/{shorten(session_id)}/messages and /chat?session={shorten(session_id)}&x=1"
    )


def test_redact_leaves_other_words_alone():
    text = f"tokens one character shorter and longer than an id: {'a' * 31} {'b' * 33}"

    assert redact(text) == text


def test_the_filter_rewrites_formatted_records():
    session_id = new_public_id()
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "session %s", (session_id,), None)

    RedactSessionIds().filter(record)

    assert record.getMessage() == f"session {shorten(session_id)}"


@pytest.mark.django_db(transaction=True)
def test_the_production_servers_access_log_shows_no_full_session_id(tmp_path):
    log = tmp_path / "server.log"
    with asgi_server(log_path=log) as server:
        _, body, _ = post_json(server, "/api/chat", {"query": "hello"})
        session_id = body["session_id"]
        get_json(server, f"/api/session/{session_id}/messages")
        get_json(server, f"/api/session/{session_id}/messages?limit=5")

    written = log.read_text()
    assert f"/api/session/{shorten(session_id)}/messages" in written  # the access log is on
    assert session_id not in written
