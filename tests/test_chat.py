"""POST /api/chat: one turn through the real openai SDK to the fake upstream server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import Message, Session

pytestmark = pytest.mark.django_db


def chat(api, **body):
    return api.post("/api/chat", body, format="json")


def test_it_answers_through_the_upstream_model_and_stores_both_turns(api, fake_llm):
    fake_llm.reset(reply="Paris is the capital of France.")

    response = chat(api, query="Capital of France?")

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
    assert body["messages"]["assistant"]["id"] == Message.objects.get(session=session, seq=2).pk


def test_it_records_provider_model_usage_and_latency_on_the_reply(api, fake_llm):
    body = chat(api, query="Hi").json()

    metadata = Message.objects.get(pk=body["messages"]["assistant"]["id"]).metadata
    assert metadata["provider"] == "openai"
    assert metadata["model"] == "fake-model"
    assert metadata["usage"]["prompt_tokens"] == 11
    assert metadata["usage"]["completion_tokens"] == 7
    assert metadata["usage"]["total_tokens"] == 18
    assert metadata["latency_ms"] >= 0
    assert metadata["finish_reason"] == "stop"


def test_it_passes_on_citations_from_servers_that_send_them(api, fake_llm):
    fake_llm.reset(reply="See the sources.", citations=["https://example.com/a", "https://example.com/b"])

    body = chat(api, query="Sources?").json()

    # In the shape of the knowledge base's own citations, numbered as such servers number them.
    expected = [
        {"id": 1, "title": "https://example.com/a", "url": "https://example.com/a", "heading": "", "snippet": ""},
        {"id": 2, "title": "https://example.com/b", "url": "https://example.com/b", "heading": "", "snippet": ""},
    ]
    assert body["citations"] == expected
    assistant = Message.objects.get(pk=body["messages"]["assistant"]["id"])
    assert assistant.metadata["citations"] == expected


def test_it_continues_the_session_named_in_the_body(api, fake_llm):
    first = chat(api, query="One").json()

    second = chat(api, query="Two", session_id=first["session_id"]).json()

    assert second["session_id"] == first["session_id"]
    assert second["messages"]["user"]["seq"] == 3
    assert Session.objects.count() == 1


def test_it_takes_the_session_from_the_query_string_too(api, fake_llm):
    session_id = chat(api, query="One").json()["session_id"]

    response = api.post(f"/api/chat?session={session_id}", {"query": "Two"}, format="json")

    assert response.json()["session_id"] == session_id
    assert Message.objects.filter(session__public_id=session_id).count() == 4


def test_it_creates_a_session_when_none_is_given_and_marks_where_it_began(api, fake_llm):
    body = chat(api, query="Hello", channel="widget").json()

    session = Session.objects.get(public_id=body["session_id"])
    assert session.source == "widget"
    assert session.title == "Hello"
    assert body["messages"]["user"]["channel"] == "widget"


def test_it_moves_the_expiry_forward_with_each_turn(api, fake_llm):
    session_id = chat(api, query="One").json()["session_id"]
    soon = timezone.now() + timedelta(hours=1)
    Session.objects.filter(public_id=session_id).update(expires_at=soon)

    chat(api, query="Two", session_id=session_id)

    session = Session.objects.get(public_id=session_id)
    assert session.expires_at > soon + timedelta(days=29)
    assert session.expires_at == session.last_activity_at + timedelta(days=30)


@pytest.mark.parametrize("session_id", ["x" * 32, "../../etc/passwd", "session_123", "x" * 300])
def test_it_answers_unknown_and_malformed_sessions_with_the_common_404(api, fake_llm, session_id):
    response = chat(api, query="Hi", session_id=session_id)

    assert response.status_code == 404
    assert response.json() == {
        "success": False,
        "error": {"code": "session_not_found", "message": "No such session, or it has expired."},
    }
    assert fake_llm.requests == []
    assert Message.objects.count() == 0


def test_it_answers_an_expired_session_with_the_common_404(api, fake_llm):
    session_id = chat(api, query="Hi").json()["session_id"]
    Session.objects.filter(public_id=session_id).update(expires_at="2000-01-01T00:00:00Z")

    response = chat(api, query="Again", session_id=session_id)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "session_not_found"


@pytest.mark.parametrize("query", ["", "   \n\t "])
def test_it_refuses_an_empty_query(api, fake_llm, query):
    response = chat(api, query=query)

    assert response.status_code == 400
    assert response.json()["success"] is False
    assert response.json()["error"]["code"] == "invalid"
    assert Session.objects.count() == 0


def test_it_refuses_a_query_over_the_limit_with_413(api, fake_llm, settings):
    settings.CHATBOT_MAX_QUERY_CHARS = 100

    response = chat(api, query="a" * 101)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "message_too_long"
    assert Session.objects.count() == 0
    assert fake_llm.requests == []


def test_it_accepts_a_query_exactly_at_the_limit(api, fake_llm, settings):
    settings.CHATBOT_MAX_QUERY_CHARS = 100

    assert chat(api, query="a" * 100).status_code == 200


def test_the_offline_responder_answers_without_a_key_and_says_so(api, settings):
    settings.CHATBOT_MODEL_BACKEND = "conversations.llm.OfflineChatModel"

    body = chat(api, query="Anyone there?").json()

    assert body["offline"] is True
    assert "Offline responder" in body["answer"]
    assert "Anyone there?" in body["answer"]
    assert body["messages"]["assistant"]["metadata"]["provider"] == "offline"
    assert body["messages"]["assistant"]["metadata"]["offline"] is True


def test_the_offline_responder_is_deterministic(api, settings):
    settings.CHATBOT_MODEL_BACKEND = "conversations.llm.OfflineChatModel"

    first = chat(api, query="Same words").json()["answer"]
    second = chat(api, query="Same words").json()["answer"]

    assert first == second


class TestIdempotentRetries:
    def test_a_repeated_client_message_id_returns_the_stored_turn_without_asking_the_model(self, api, fake_llm):
        first = chat(api, query="Hello", client_message_id="msg-1").json()

        again = chat(api, query="Hello", client_message_id="msg-1", session_id=first["session_id"])

        assert again.status_code == 200
        assert again.json()["replayed"] is True
        assert again.json()["messages"] == first["messages"]
        assert again.json()["answer"] == first["answer"]
        assert len(fake_llm.requests) == 1
        assert Message.objects.count() == 2

    def test_the_same_client_message_id_in_another_session_is_a_new_turn(self, api, fake_llm):
        chat(api, query="Hello", client_message_id="msg-1")

        other = chat(api, query="Hello", client_message_id="msg-1").json()

        assert other["replayed"] is False
        assert len(fake_llm.requests) == 2

    def test_reusing_a_client_message_id_for_different_words_is_a_conflict(self, api, fake_llm):
        session_id = chat(api, query="Hello", client_message_id="msg-1").json()["session_id"]

        response = chat(api, query="Something else", client_message_id="msg-1", session_id=session_id)

        assert response.status_code == 409
        assert response.json()["error"]["code"] == "client_message_id_reused"
        assert Message.objects.count() == 2

    def test_a_malformed_client_message_id_is_refused(self, api, fake_llm):
        response = chat(api, query="Hello", client_message_id="has spaces and <tags>")

        assert response.status_code == 400
        assert Session.objects.count() == 0
