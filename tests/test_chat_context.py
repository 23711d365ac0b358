"""What the model sees: the system prompt, the latest history that fits, then the query."""

from __future__ import annotations

import pytest

from conversations.models import Message, Session
from conversations.tokens import estimate_tokens

pytestmark = pytest.mark.django_db


def session_with_history(pairs: int) -> Session:
    """A session holding ``pairs`` user/assistant exchanges: "question i" / "answer i"."""
    session = Session.objects.create()
    messages = []
    for i in range(1, pairs + 1):
        for offset, (role, text) in enumerate([("user", f"question {i}"), ("assistant", f"answer {i}")]):
            messages.append(
                Message(
                    session=session,
                    seq=2 * i - 1 + offset,
                    role=role,
                    content=text,
                    token_count=estimate_tokens(text),
                )
            )
    Message.objects.bulk_create(messages)
    Session.objects.filter(pk=session.pk).update(last_seq=2 * pairs)
    return session


def history(pairs_from: int, pairs_to: int) -> list[dict]:
    out = []
    for i in range(pairs_from, pairs_to + 1):
        out += [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"answer {i}"}]
    return out


def test_the_model_sees_the_system_prompt_then_the_history_oldest_first_then_the_query(api, fake_llm, settings):
    settings.CHATBOT_SYSTEM_PROMPT = "You are the Acme assistant."
    session = session_with_history(3)

    api.post("/api/chat", {"query": "question 4", "session_id": session.public_id}, format="json")

    assert fake_llm.last_messages == [
        {"role": "system", "content": "You are the Acme assistant."},
        *history(1, 3),
        {"role": "user", "content": "question 4"},
    ]
    assert fake_llm.requests[-1]["model"] == "fake-model"
    assert fake_llm.requests[-1]["max_tokens"] == settings.CHATBOT_REPLY_MAX_TOKENS


def test_the_message_budget_keeps_only_the_latest_messages(api, fake_llm, settings):
    settings.CHATBOT_SYSTEM_PROMPT = "sys"
    settings.CHATBOT_CONTEXT_MAX_MESSAGES = 4
    session = session_with_history(5)

    api.post("/api/chat", {"query": "next", "session_id": session.public_id}, format="json")

    assert fake_llm.last_messages == [
        {"role": "system", "content": "sys"},
        *history(4, 5),
        {"role": "user", "content": "next"},
    ]


def test_the_token_budget_drops_whole_messages_from_the_oldest_end(api, fake_llm, settings):
    settings.CHATBOT_SYSTEM_PROMPT = "sys"
    settings.CHATBOT_REPLY_MAX_TOKENS = 100
    newest_five = history(3, 5)[1:]  # answer 3 ... answer 5
    fixed = 100 + estimate_tokens("sys") + estimate_tokens("next")
    room = sum(estimate_tokens(m["content"]) for m in newest_five)
    # Room for exactly those five, and all but one token of "question 3", which must
    # then be dropped whole rather than cut.
    settings.CHATBOT_CONTEXT_MAX_TOKENS = fixed + room + estimate_tokens("question 3") - 1
    session = session_with_history(5)

    api.post("/api/chat", {"query": "next", "session_id": session.public_id}, format="json")

    assert fake_llm.last_messages == [
        {"role": "system", "content": "sys"},
        *newest_five,
        {"role": "user", "content": "next"},
    ]


def test_the_system_prompt_and_query_are_kept_even_when_no_history_fits(api, fake_llm, settings):
    settings.CHATBOT_SYSTEM_PROMPT = "sys"
    settings.CHATBOT_REPLY_MAX_TOKENS = 10
    settings.CHATBOT_CONTEXT_MAX_TOKENS = 12  # less than the fixed part alone
    session = session_with_history(2)

    api.post("/api/chat", {"query": "next", "session_id": session.public_id}, format="json")

    assert fake_llm.last_messages == [{"role": "system", "content": "sys"}, {"role": "user", "content": "next"}]


def test_an_empty_system_prompt_is_left_out(api, fake_llm, settings):
    settings.CHATBOT_SYSTEM_PROMPT = ""

    api.post("/api/chat", {"query": "hi"}, format="json")

    assert fake_llm.last_messages == [{"role": "user", "content": "hi"}]


def test_system_messages_stored_in_the_session_reach_the_model(api, fake_llm, settings):
    settings.CHATBOT_SYSTEM_PROMPT = "sys"
    session = Session.objects.create()
    Message.objects.create(session=session, seq=1, role="system", content="The visitor is on the pricing page.")
    Session.objects.filter(pk=session.pk).update(last_seq=1)

    api.post("/api/chat", {"query": "How much?", "session_id": session.public_id}, format="json")

    assert fake_llm.last_messages[1] == {"role": "system", "content": "The visitor is on the pricing page."}


def test_a_turn_reads_a_bounded_number_of_rows_however_long_the_session(
    api, fake_llm, settings, django_assert_max_num_queries
):
    settings.CHATBOT_CONTEXT_MAX_MESSAGES = 20
    session = session_with_history(1500)  # 3,000 messages

    with django_assert_max_num_queries(12) as captured:
        api.post("/api/chat", {"query": "next", "session_id": session.public_id}, format="json")

    history_reads = [
        q["sql"] for q in captured.captured_queries if q["sql"].startswith("SELECT") and "token_count" in q["sql"]
    ]
    assert len(history_reads) == 1
    assert "LIMIT 20" in history_reads[0]
    assert len(fake_llm.last_messages) == 1 + 20 + 1


def test_each_stored_message_carries_its_token_estimate(api, fake_llm):
    fake_llm.reset(reply="A reply of some length.")

    body = api.post("/api/chat", {"query": "Ünïcode query ✓"}, format="json").json()

    tokens = dict(Message.objects.filter(session__public_id=body["session_id"]).values_list("role", "token_count"))
    assert tokens == {
        "user": estimate_tokens("Ünïcode query ✓"),
        "assistant": estimate_tokens("A reply of some length."),
    }
