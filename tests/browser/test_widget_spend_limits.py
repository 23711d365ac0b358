"""The widget when a daily token budget is used up: it says so, not "too quickly"."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from conversations.models import Message
from tests.browser.support import ChatUI, customer_page, in_db_thread, widget_tag

pytestmark = pytest.mark.browser


def test_a_spent_budget_is_explained_and_the_text_is_kept(new_page, live_server, customer_site, fake_llm, settings):
    settings.CHATBOT_DAILY_TOKENS_PER_SESSION = 1  # the first turn spends it
    page = new_page()
    page.goto(customer_site.serve("/budget", customer_page(widget_tag(live_server.url))))
    widget = ChatUI(page)
    widget.launcher.click()
    widget.send("Hello")
    widget.wait_for_replies(1)

    widget.send("One more today?")

    expect(page.get_by_role("alert")).to_have_text(
        "You've reached today's limit for this chat. Please come back tomorrow."
    )
    assert widget.transcript()[-1] == ("user", "One more today?")
    assert in_db_thread(Message.objects.count) == 2
