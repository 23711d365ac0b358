"""POST /api/chat: one turn through the real openai SDK to the fake upstream server."""

from __future__ import annotations

import pytest

from conversations.models import Message, Session

pytestmark = pytest.mark.django_db


def test_it_answers_through_the_upstream_model_and_stores_both_turns(api, fake_llm):
    fake_llm.reset(reply="Paris is the capital of France.")

    response = api.post("/api/chat", {"query": "Capital of France?"}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True
    assert body["answer"] == "Paris is the capital of France."
    assert body["offline"] is False
    session = Session.objects.get(public_id=body["session_id"])
    stored = list(session.messages.values_list("seq", "role", "content"))
    assert stored == [(1, "user", "Capital of France?"), (2, "assistant", "Paris is the capital of France.")]
    assert body["messages"]["user"]["seq"] == 1
    assert body["messages"]["assistant"]["seq"] == 2
    metadata = Message.objects.get(session=session, seq=2).metadata
    assert metadata["provider"] == "openai"
    assert metadata["model"] == "fake-model"
    assert metadata["usage"]["total_tokens"] == 18
    assert metadata["latency_ms"] >= 0
