"""When the upstream model fails, a turn writes nothing and tells the client to retry."""

from __future__ import annotations

import pytest

from conversations.models import Message, Session
from tests.servers import free_port

pytestmark = pytest.mark.django_db

FAILURES = {
    "server error": ({"status": 500}, 502, "upstream_error"),
    "rate limited upstream": ({"status": 429}, 502, "upstream_rate_limited"),
    "bad gateway": ({"status": 503}, 502, "upstream_error"),
    "timeout": ({"delay": 1.5}, 504, "upstream_timeout"),
    "garbage body": ({"garbage": True}, 502, "upstream_malformed"),
    "no content": ({"empty": True}, 502, "upstream_malformed"),
}


@pytest.mark.parametrize(("behaviour", "status", "code"), FAILURES.values(), ids=FAILURES.keys())
def test_a_failed_reply_writes_nothing_and_says_the_request_can_be_retried(api, fake_llm, behaviour, status, code):
    session_id = api.post("/api/chat", {"query": "first"}, format="json").json()["session_id"]
    fake_llm.reset(**behaviour)

    response = api.post("/api/chat", {"query": "second", "session_id": session_id}, format="json")

    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["error"]["retryable"] is True
    assert "retried" in body["error"]["message"]
    assert body["session_id"] == session_id
    assert list(Message.objects.values_list("seq", flat=True)) == [1, 2]
    assert Session.objects.get(public_id=session_id).last_seq == 2


def test_an_unreachable_upstream_is_a_retryable_502(api, fake_llm, settings):
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there

    response = api.post("/api/chat", {"query": "hello"}, format="json")

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_unavailable"
    assert response.json()["error"]["retryable"] is True
    assert Message.objects.count() == 0


def test_the_retry_after_a_failure_continues_the_same_session(api, fake_llm):
    fake_llm.reset(status=500)
    failed = api.post("/api/chat", {"query": "hello", "client_message_id": "m1"}, format="json").json()
    fake_llm.reset(reply="Now it works.")

    retried = api.post(
        "/api/chat", {"query": "hello", "client_message_id": "m1", "session_id": failed["session_id"]}, format="json"
    ).json()

    assert retried["answer"] == "Now it works."
    assert retried["replayed"] is False
    assert list(Message.objects.values_list("seq", "role")) == [(1, "user"), (2, "assistant")]


def test_the_sdk_retries_configured_upstream_retries_before_giving_up(api, fake_llm, settings):
    settings.OPENAI_MAX_RETRIES = 1
    fake_llm.reset(status=500)

    response = api.post("/api/chat", {"query": "hello"}, format="json")

    assert response.status_code == 502
    assert len(fake_llm.requests) == 2
