"""The journey the product exists for: a visitor talks to the widget on a customer's
site, continues on the full page, and comes back to the widget, all one conversation."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from conversations.models import Session
from tests.browser.support import ChatUI, customer_page, in_db_thread, widget_tag

pytestmark = pytest.mark.browser


def stored(session_id: str) -> list[tuple[str, str, str]]:
    session = Session.objects.get(public_id=session_id)
    return list(session.messages.order_by("seq").values_list("role", "channel", "content"))


def test_a_conversation_moves_from_the_widget_to_the_full_page_and_back(new_page, live_server, customer_site):
    api = live_server.url
    host_url = customer_site.serve("/flow", customer_page(widget_tag(api)))
    page = new_page()
    widget = ChatUI(page)
    origins = set()
    page.on("request", lambda request: origins.add("/".join(request.url.split("/")[:3])))

    page.goto(host_url)
    widget.launcher.click()
    expect(widget.textbox).to_be_focused()
    assert in_db_thread(Session.objects.count) == 0  # no session for a visitor who only looks

    # The host page's stylesheet reaches none of it.
    style = widget.textbox.evaluate("n => { const s = getComputedStyle(n); return [s.fontSize, s.fontStyle, s.color] }")
    assert style == ["16px", "normal", "rgb(15, 23, 42)"]

    widget.send("First question", replies_after=1)
    widget.send("Second question", replies_after=2)
    assert "I can see 2 earlier messages" in widget.transcript()[-1][1]
    session_id = page.evaluate(f"localStorage.getItem('chatbot:session:{api}')")
    assert session_id
    assert in_db_thread(lambda: Session.objects.get(public_id=session_id).source) == "widget"

    assert origins == {customer_site.origin, api}  # no third-party requests

    page.reload()
    widget.launcher.click()
    widget.wait_for_replies(2)
    before = widget.transcript()
    assert [role for role, _ in before] == ["user", "assistant", "user", "assistant"]
    assert before[0][1] == "First question" and "You said: First question" in before[1][1]
    assert before[2][1] == "Second question" and "You said: Second question" in before[3][1]

    full = widget.open_full_page()
    assert full.url == f"{api}/chat?session={session_id}"
    expect(full.get_by_text("Conversation continued from widget")).to_be_visible()
    chat = ChatUI(full)
    assert chat.transcript() == before

    chat.send("Third question, from the full page", replies_after=3)
    assert "I can see 4 earlier messages" in chat.transcript()[-1][1]
    assert full.url == f"{api}/chat?session={session_id}"

    page.reload()
    widget.launcher.click()
    widget.wait_for_replies(3)
    assert widget.transcript() == chat.transcript()
    assert [(role, channel) for role, channel, _ in in_db_thread(lambda: stored(session_id))] == [
        ("user", "widget"),
        ("assistant", "widget"),
        ("user", "widget"),
        ("assistant", "widget"),
        ("user", "page"),
        ("assistant", "page"),
    ]
