"""Scale-out: two instances of the production server (the Procfile's web command) on
different ports, sharing one PostgreSQL database and one Redis, are one service.

A conversation started through one continues through the other, and a rate limit is
counted across both. This is what lets any number of instances stand behind a load
balancer with no sticky sessions: no conversation or limit lives in a process.
tests/browser/test_scale_out.py shows the same with the widget and the full page.
"""

from __future__ import annotations

import pytest

from tests.http import get_json, post_json

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def test_a_conversation_moves_between_instances_and_one_limit_counts_on_both(production_instances):
    a, b = production_instances(2, CHATBOT_RATELIMIT_ENABLE="true", CHATBOT_RATELIMIT_CHAT_IP="3/m")

    # The widget, served by A, starts the conversation (turn 1 of 3 allowed).
    status, started, _ = post_json(a, "/api/chat", {"query": "Hello from the widget", "channel": "widget"})
    assert status == 200, started
    session_id = started["session_id"]

    # The full page, served by B, loads it and carries on (turn 2): B's model saw A's turn.
    status, page = get_json(b, f"/api/session/{session_id}/messages?limit=50")
    assert status == 200
    assert [(m["seq"], m["role"], m["channel"]) for m in page["messages"]] == [
        (1, "user", "widget"),
        (2, "assistant", "widget"),
    ]
    status, continued, _ = post_json(
        b, "/api/chat", {"query": "Continuing on the full page", "session_id": session_id, "channel": "page"}
    )
    assert status == 200, continued
    assert continued["session_id"] == session_id
    assert "2 earlier messages" in continued["answer"]  # the offline responder counts its context
    assert continued["messages"]["user"]["seq"] == 3

    # Back on A, the widget shows all four messages, and a third turn is allowed.
    status, page = get_json(a, f"/api/session/{session_id}/messages?limit=50")
    assert [(m["seq"], m["channel"]) for m in page["messages"]] == [
        (1, "widget"),
        (2, "widget"),
        (3, "page"),
        (4, "page"),
    ]
    status, third, _ = post_json(a, "/api/chat", {"query": "One more", "session_id": session_id, "channel": "widget"})
    assert status == 200, third

    # The fourth turn from this address within the minute is refused, on B: the
    # counter lives in the shared Redis, not in either process.
    status, refused, headers = post_json(b, "/api/chat", {"query": "Too many", "session_id": session_id})
    assert status == 429, refused
    assert refused["error"]["code"] == "rate_limited"
    assert 1 <= int(headers["Retry-After"]) <= 60
    status, page = get_json(a, f"/api/session/{session_id}/messages?limit=50")
    assert len(page["messages"]) == 6  # the refused turn wrote nothing
