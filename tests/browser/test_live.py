"""Live everywhere: the same conversation open in two browsers, the widget on a customer's
site talking to one instance of the production server and the full page served by
another (one PostgreSQL, one Redis, as behind a load balancer). What is written in one
appears in the other without a reload, in order, each message once."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.support import ChatUI, customer_page, session_id_in_widget, widget_tag

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.redis]


def test_messages_written_in_the_widget_on_a_and_the_page_on_b_appear_in_both_live(
    production_instances, customer_site, new_page
):
    a, b = production_instances(2, CHATBOT_ALLOWED_ORIGINS=customer_site.origin)
    page = new_page()
    page.goto(customer_site.serve("/live", customer_page(widget_tag(a))))
    widget = ChatUI(page)
    widget.launcher.click()
    widget.send("First, from the widget", replies_after=1)

    full = new_page()  # another browser: the visitor's laptop beside their phone
    full.goto(f"{b}/chat?session={session_id_in_widget(page, a)}")
    chat = ChatUI(full)
    expect(chat.replies).to_have_count(1)

    chat.send("Second, from the page", replies_after=2)
    widget.wait_for_replies(2)
    widget.send("Third, from the widget again", replies_after=3)
    chat.wait_for_replies(3)

    said = [
        ("user", "First, from the widget"),
        ("user", "Second, from the page"),
        ("user", "Third, from the widget again"),
    ]
    for view in (widget, chat):
        shown = view.transcript()
        assert [turn for turn in shown if turn[0] == "user"] == said
        assert [role for role, _ in shown] == ["user", "assistant"] * 3
    assert widget.transcript() == chat.transcript()


def test_the_widget_catches_up_on_what_was_said_while_its_panel_was_closed(
    production_instances, customer_site, new_page
):
    a, b = production_instances(2, CHATBOT_ALLOWED_ORIGINS=customer_site.origin)
    page = new_page()
    page.goto(customer_site.serve("/live-closed", customer_page(widget_tag(a))))
    widget = ChatUI(page)
    widget.launcher.click()
    widget.send("Before closing", replies_after=1)
    widget.button("Close chat").click()

    full = new_page()
    full.goto(f"{b}/chat?session={session_id_in_widget(page, a)}")
    ChatUI(full).send("While the widget was closed", replies_after=2)

    widget.launcher.click()
    widget.wait_for_replies(2)
    assert [role for role, _ in widget.transcript()] == ["user", "assistant", "user", "assistant"]
    assert widget.transcript() == ChatUI(full).transcript()
