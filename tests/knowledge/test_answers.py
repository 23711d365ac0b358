"""A chat turn answered from the knowledge base: the prompt sent upstream, the citations
read back, the no-answer path, and the offline responder's extractive answer."""

from __future__ import annotations

import pytest

from conversations.grounding import ASSIST_WITHOUT_SOURCES, INSTRUCTIONS, UNTRUSTED
from conversations.models import Message
from tests.http import stream_events

TENTS = (
    "# Tents\n\n## Two-person tents\n\nThe Trail 2 is our best tent for two people. It weighs 1.9 kg and costs $249."
    "\n\n## Family tents\n\nThe Basecamp 6 sleeps six people. It costs $599."
)
RETURNS = "# Returns\n\n## Damaged items\n\nIf an item arrives damaged, we refund it in full within 14 days."
SHIPPING = "# Shipping\n\nWe ship to Canada and the United States. Shipping is free over $100."


@pytest.fixture
def shop(pages):
    pages.add("/tents", "Tents", TENTS)
    pages.add("/returns", "Returns and refunds", RETURNS)
    pages.add("/shipping", "Shipping", SHIPPING)
    return pages


def chat(api, **body):
    response = api.post("/api/chat", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_the_passages_go_upstream_numbered_with_the_rules_for_citing_them(api, shop, fake_llm, settings):
    settings.CHATBOT_SYSTEM_PROMPT = "You are the shop's assistant."
    fake_llm.reset(reply="The Trail 2 [1].")

    chat(api, query="Tents for how many people?")

    system, user = fake_llm.last_messages
    assert user == {"role": "user", "content": "Tents for how many people?"}
    assert system["role"] == "system"
    assert system["content"] == (
        "You are the shop's assistant.\n\n"
        f"{INSTRUCTIONS['strict']} {UNTRUSTED}\n\n"
        "Sources:\n\n"
        "[1] Tents > Family tents\n"
        "URL: https://shop.example/tents\n"
        "The Basecamp 6 sleeps six people. It costs $599.\n\n"
        "[2] Tents > Two-person tents\n"
        "URL: https://shop.example/tents\n"
        "The Trail 2 is our best tent for two people. It weighs 1.9 kg and costs $249."
    )


def test_citations_are_the_sources_the_answer_cites_numbered_as_written(api, shop, fake_llm):
    fake_llm.reset(reply="The Basecamp 6 sleeps six [1]; for two, take the Trail 2 [2].")

    body = chat(api, query="Tents for how many people?")

    assert body["answer_status"] == "answered"
    assert body["citations"] == [
        {
            "id": 1,
            "title": "Tents",
            "url": "https://shop.example/tents",
            "heading": "Family tents",
            "snippet": "The Basecamp 6 sleeps six people.",
        },
        {
            "id": 2,
            "title": "Tents",
            "url": "https://shop.example/tents",
            "heading": "Two-person tents",
            "snippet": "The Trail 2 is our best tent for two people.",
        },
    ]
    stored = Message.objects.get(pk=body["messages"]["assistant"]["id"]).metadata
    assert stored["citations"] == body["citations"]
    assert stored["answer_status"] == "answered"


def test_a_source_the_answer_does_not_cite_is_not_a_citation(api, shop, fake_llm):
    fake_llm.reset(reply="For two, the Trail 2 [2].")

    body = chat(api, query="Tents for how many people?")

    assert [c["id"] for c in body["citations"]] == [2]


def test_a_number_the_model_invented_is_dropped(api, shop, fake_llm):
    fake_llm.reset(reply="The Trail 2 [1][7], see also [0] and [1, 9].")

    body = chat(api, query="Which tent is best for two people?")

    assert [c["id"] for c in body["citations"]] == [1]


def test_a_question_the_site_does_not_answer_gets_the_no_answer_reply_and_no_model_call(api, shop, fake_llm, settings):
    settings.CHATBOT_KB_CONTACT_URL = "https://shop.example/contact"

    body = chat(api, query="Do you sell kayaks?")

    assert fake_llm.requests == []
    assert body["answer_status"] == "no_answer"
    assert body["answer"] == (
        f"{settings.CHATBOT_KB_NO_ANSWER_TEXT} You can [contact us](https://shop.example/contact) instead."
    )
    assert body["citations"] == []
    stored = Message.objects.get(pk=body["messages"]["assistant"]["id"]).metadata
    assert stored["answer_status"] == "no_answer"


def test_the_no_answer_reply_is_in_the_visitors_language(api, shop, fake_llm, settings):
    settings.CHATBOT_KB_CONTACT_URL = "https://shop.example/contact"

    body = chat(api, query="Verkauft ihr Kajaks?", language="de")

    assert body["answer"] == (
        "Dazu habe ich auf dieser Website nichts gefunden, und raten möchte ich nicht."
        " Sie können sich stattdessen [an uns wenden](https://shop.example/contact)."
    )


def test_an_operators_own_no_answer_text_is_said_as_written(api, shop, fake_llm, settings):
    settings.CHATBOT_KB_NO_ANSWER_TEXT = "Dazu wissen wir nichts."

    assert chat(api, query="Verkauft ihr Kajaks?", language="de")["answer"] == "Dazu wissen wir nichts."


def test_in_assist_mode_the_model_answers_what_the_site_does_not_and_it_is_still_a_content_gap(
    api, shop, fake_llm, settings
):
    settings.CHATBOT_KB_MODE = "assist"
    fake_llm.reset(reply="Kayaks are boats; this shop does not list them.")

    body = chat(api, query="Do you sell kayaks?")

    assert ASSIST_WITHOUT_SOURCES in fake_llm.last_messages[0]["content"]
    assert body["answer"] == "Kayaks are boats; this shop does not list them."
    assert body["answer_status"] == "no_answer"


def test_with_an_empty_knowledge_base_the_model_answers_as_before(api, fake_llm, db):
    fake_llm.reset(reply="Hello [1].")

    body = chat(api, query="Which tent is best for two people?")

    assert [m["role"] for m in fake_llm.last_messages] == ["system", "user"]
    assert "Sources:" not in fake_llm.last_messages[0]["content"]
    assert (body["answer_status"], body["citations"]) == ("answered", [])


def test_a_follow_up_is_answered_from_the_page_of_the_question_before(api, shop, fake_llm):
    fake_llm.reset(reply="It costs $249 [1].")
    first = chat(api, query="Which tent is best for two people?", client_message_id="q1")

    body = chat(api, query="and how much is it?", session_id=first["session_id"], client_message_id="q2")

    assert body["citations"][0]["url"] == "https://shop.example/tents"
    assert "[1] Tents > Two-person tents" in fake_llm.last_messages[0]["content"]


def test_the_offline_responder_quotes_the_best_passages_with_citations(api, shop, settings):
    settings.CHATBOT_MODEL_BACKEND = "conversations.llm.OfflineChatModel"

    body = chat(api, query="What is your refund policy for damaged items?")

    assert body["offline"] is True
    assert "If an item arrives damaged, we refund it in full within 14 days. [1]" in body["answer"]
    assert body["citations"][0] == {
        "id": 1,
        "title": "Returns and refunds",
        "url": "https://shop.example/returns",
        "heading": "Returns > Damaged items",
        "snippet": "If an item arrives damaged, we refund it in full within 14 days.",
    }


def test_a_replayed_turn_keeps_its_citations(api, shop, fake_llm):
    fake_llm.reset(reply="The Trail 2 [1].")
    first = chat(api, query="Which tent is best for two people?", client_message_id="same")

    again = chat(
        api, query="Which tent is best for two people?", session_id=first["session_id"], client_message_id="same"
    )

    assert again["replayed"] is True
    assert (again["citations"], again["answer_status"]) == (first["citations"], "answered")
    assert len(fake_llm.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_the_stream_ends_with_the_citations(live_server, shop, fake_llm):
    fake_llm.reset(reply="The Trail 2 [1].", chunk_size=3)

    events = stream_events(live_server.url, "/api/chat", {"query": "Which tent for two people?", "stream": True})

    name, done = events[-1]
    assert name == "done"
    assert done["answer"] == "The Trail 2 [1]."
    assert [c["id"] for c in done["citations"]] == [1]
    assert done["answer_status"] == "answered"


@pytest.mark.django_db(transaction=True)
def test_a_streamed_no_answer_is_sent_as_one_delta(live_server, shop, fake_llm):
    events = stream_events(live_server.url, "/api/chat", {"query": "Do you sell kayaks?", "stream": True})

    deltas = [data["text"] for name, data in events if name == "delta"]
    assert deltas == [events[-1][1]["answer"]]
    assert events[-1][1]["answer_status"] == "no_answer"
    assert fake_llm.requests == []
