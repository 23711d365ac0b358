"""/chat in the browser: first paint, its address, and long conversations."""

from __future__ import annotations

import pytest
from django.db import transaction
from playwright.sync_api import expect

from conversations.models import MessageDraft, Session
from tests.browser.support import ChatUI, in_db_thread

pytestmark = pytest.mark.browser


def test_a_new_conversation_gets_an_address_that_continues_it(new_page, live_server):
    api = live_server.url
    page = new_page()
    page.goto(f"{api}/chat")
    chat = ChatUI(page)

    chat.send("Started on the full page", replies_after=1)
    session_id = in_db_thread(lambda: Session.objects.get().public_id)
    assert page.url == f"{api}/chat?session={session_id}"
    assert in_db_thread(lambda: Session.objects.get().source) == "page"
    expect(page.get_by_text("Conversation continued from widget")).to_have_count(0)

    # The transcript is in the HTML: on screen even where no script runs.
    no_script = new_page(java_script_enabled=False)
    no_script.goto(page.url)
    assert ChatUI(no_script).transcript() == chat.transcript()

    page.reload()
    chat.send("And continued after a reload", replies_after=2)
    assert "I can see 2 earlier messages" in chat.transcript()[-1][1]


def test_an_unknown_session_gets_a_note_and_a_fresh_conversation(new_page, live_server):
    api = live_server.url
    page = new_page()
    page.goto(f"{api}/chat?session={'x' * 32}")
    chat = ChatUI(page)

    expect(page.get_by_role("status")).to_contain_text("We couldn't find that conversation")
    assert page.url == f"{api}/chat"  # a reload will not show the note again
    chat.send("Starting over", replies_after=1)
    assert page.url == f"{api}/chat?session={in_db_thread(lambda: Session.objects.get().public_id)}"


def long_session(count: int) -> str:
    session = Session.objects.create(source="page")
    drafts = [
        MessageDraft(role="user" if n % 2 else "assistant", content=f"message {n}", channel="page")
        for n in range(1, count + 1)
    ]
    with transaction.atomic():
        session.append_messages(drafts)
    return session.public_id


def test_a_long_session_shows_its_latest_page_and_loads_earlier_ones(new_page, live_server, settings):
    settings.CHATBOT_PAGE_SIZE = 10
    session_id = in_db_thread(lambda: long_session(25))
    page = new_page()
    page.goto(f"{live_server.url}/chat?session={session_id}")
    chat = ChatUI(page)
    shown = lambda: [text for _, text in chat.transcript()]  # noqa: E731

    assert shown() == [f"message {n}" for n in range(16, 26)]
    chat.button("Load earlier messages").click()
    expect(page.locator(".cb-list > .cb-msg")).to_have_count(20)
    chat.button("Load earlier messages").click()
    expect(page.locator(".cb-list > .cb-msg")).to_have_count(25)
    assert shown() == [f"message {n}" for n in range(1, 26)]
    expect(chat.button("Load earlier messages")).to_be_hidden()
