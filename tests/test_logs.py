"""Session ids never reach the logs in full: they are the key to a conversation."""

from __future__ import annotations

import logging
from urllib.parse import quote

import pytest

from conversations.ids import SHOWN_CHARS, new_public_id, redact, shorten
from conversations.logs import RedactSessionIds
from tests.http import delete, get, get_json, post_json
from tests.servers import asgi_server, dev_server, procfile_server


def test_redact_shortens_ids_wherever_they_stand():
    session_id = new_public_id()

    text = f"GET /api/session/{session_id}/messages and /chat?session={session_id}&x=1"

    assert (
        redact(text) == f"GET /api/session/{shorten(session_id)}/messages and /chat?session={shorten(session_id)}&x=1"
    )


def escaped_first(session_id: str) -> str:
    """The id with its first character percent-encoded: Django reads the same id."""
    return f"%{ord(session_id[0]):02X}{session_id[1:]}"


def every_spelling(session_id: str) -> list[str]:
    return [
        escaped_first(session_id),
        "".join(f"%{ord(c):02x}" for c in session_id),  # every character escaped
        f"%20{session_id}%20",  # padded with escaped spaces, which /chat strips
        quote(escaped_first(session_id)),  # escaped twice
    ]


def test_redact_finds_ids_however_a_url_spells_them():
    session_id = new_public_id()

    for spelling in every_spelling(session_id):
        for line in [f"GET /chat?session={spelling} HTTP/1.1", f"Not Found: /api/session/{spelling}/messages"]:
            redacted = redact(line)
            assert session_id[SHOWN_CHARS:] not in redacted, line
            assert spelling not in redacted, line
            assert shorten(session_id) in redacted, line


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


def assert_no_full_id(written: str, session_id: str) -> None:
    assert session_id[SHOWN_CHARS:] not in written  # the id's secret part, in any spelling that keeps it
    for spelling in every_spelling(session_id):
        assert spelling not in written


def visit_every_way(server: str) -> str:
    """Use one session by every URL that names it, spelled every way, with answers from
    200 to 404 (Django logs each 4xx with its path); return its id."""
    _, body, _ = post_json(server, "/api/chat", {"query": "hello"})
    session_id = body["session_id"]
    for spelling in [session_id, *every_spelling(session_id)]:
        assert get(server, f"/api/session/{spelling}/messages")[0] in (200, 404)
        get(server, f"/api/session/{spelling}/messages?before=nonsense")  # 400
        get(server, f"/api/sessions/{spelling}/")
        get(server, f"/chat?session={spelling}")
        get(server, f"/api/session/{spelling}/nowhere")  # 404
        post_json(server, f"/api/session/{spelling}/messages", {"message": ""})  # 400
    delete(server, f"/api/sessions/{escaped_first(session_id)}/")
    return session_id


@pytest.mark.django_db(transaction=True)
def test_the_development_servers_console_shows_no_full_session_id(tmp_path):
    log = tmp_path / "runserver.log"
    with dev_server(log_path=log) as server:
        session_id = visit_every_way(server)

    written = log.read_text()
    assert "Not Found: /api/session/" in written  # Django's own 4xx lines are there
    assert '"GET /chat?session=' in written  # and the access log
    assert_no_full_id(written, session_id)


@pytest.mark.django_db(transaction=True)
def test_the_production_commands_logs_show_no_full_session_id(tmp_path):
    log = tmp_path / "procfile.log"
    with procfile_server(log_path=log) as server:
        session_id = visit_every_way(server)

    written = log.read_text()
    assert '"GET /chat?session=' in written  # the access log is on
    assert "Not Found: /api/session/" in written
    assert_no_full_id(written, session_id)
