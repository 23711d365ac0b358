"""Everything the widget and the full page do, with the keyboard alone."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.support import ChatUI, customer_page, focused_name, tab_to, widget_tag

pytestmark = pytest.mark.browser


def test_the_whole_flow_works_with_the_keyboard_alone(new_page, live_server, customer_site):
    api = live_server.url
    page = new_page()
    page.goto(customer_site.serve("/keyboard", customer_page(widget_tag(api))))
    widget = ChatUI(page)
    log = page.get_by_role("log", name="Messages")

    tab_to(page, "Open chat")
    expect(widget.launcher).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Enter")
    assert focused_name(page) == "Message"
    expect(log).to_have_attribute("aria-live", "polite")
    for name in ("New conversation", "Open full page", "Send"):
        expect(widget.button(name)).to_be_visible()

    page.keyboard.type("Hello")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("on two lines")
    page.keyboard.press("Enter")
    widget.wait_for_replies(1)
    assert widget.transcript()[0] == ("user", "Hello\non two lines")
    assert focused_name(page) == "Message"
    page.keyboard.press("Tab")
    assert focused_name(page) == "Send"

    page.keyboard.press("Escape")
    expect(widget.textbox).to_be_hidden()
    assert focused_name(page) == "Open chat"
    expect(widget.launcher).to_have_attribute("aria-expanded", "false")

    page.keyboard.press("Enter")
    assert focused_name(page) == "Message"
    tab_to(page, "Open full page", key="Shift+Tab")
    with page.context.expect_page() as opened:
        page.keyboard.press("Enter")
    full = opened.value
    full.wait_for_load_state()
    chat = ChatUI(full)
    assert chat.transcript() == widget.transcript()
    tab_to(full, "Message")
    full.keyboard.type("And from the full page")
    full.keyboard.press("Enter")
    chat.wait_for_replies(2)
    assert "I can see 2 earlier messages" in chat.transcript()[-1][1]

    page.bring_to_front()
    tab_to(page, "New conversation", key="Shift+Tab")
    page.keyboard.press("Enter")
    assert focused_name(page) == "Message"
    assert widget.transcript() == []
    assert page.evaluate(f"localStorage.getItem('chatbot:session:{api}')") is None
