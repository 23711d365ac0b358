"""The widget when the server is at its bound on turns in flight: it says so, waits
the Retry-After the server gave, and sends the same turn again by itself."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from conversations import inflight
from conversations.models import Message
from tests.browser.support import ChatUI, customer_page, in_db_thread, widget_tag

pytestmark = pytest.mark.browser


def test_a_busy_server_is_retried_after_retry_after_with_the_same_message_id(
    new_page, live_server, customer_site, settings
):
    settings.CHATBOT_MAX_TURNS_IN_FLIGHT = 1
    settings.CHATBOT_BUSY_RETRY_AFTER = 1
    held = inflight.admissions.admit()  # another visitor's answer holds the only place
    page = new_page()
    sent: list[dict] = []
    page.on("request", lambda r: r.method == "POST" and "/api/chat" in r.url and sent.append(json.loads(r.post_data)))
    page.goto(customer_site.serve("/busy", customer_page(widget_tag(live_server.url))))
    widget = ChatUI(page)
    widget.launcher.click()

    try:
        widget.send("Are you there?")
        expect(page.get_by_role("alert")).to_have_text("Busy, retrying in 1 s…")
        assert in_db_thread(lambda: Message.objects.count()) == 0  # refused before anything was written
    finally:
        held.release()  # the other answer is done: room again

    widget.wait_for_replies(1)
    expect(page.get_by_role("alert")).to_have_count(0)
    assert len(sent) == 2
    assert sent[0]["client_message_id"] == sent[1]["client_message_id"]
    assert in_db_thread(lambda: list(Message.objects.values_list("role", flat=True))) == ["user", "assistant"]
