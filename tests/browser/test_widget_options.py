"""The widget's data- options and its small JavaScript API."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.support import ChatUI, customer_page, widget_tag

pytestmark = pytest.mark.browser

LISTENERS = """
<script>
  // Listening before the widget has loaded: the events are plain window events.
  window.seen = [];
  for (const type of ["ready", "open", "close", "message-sent", "message-received"]) {
    addEventListener("chatbot:" + type, (event) => seen.push([type, event.detail]));
  }
</script>
"""


def test_the_options_and_the_javascript_api(new_page, live_server, customer_site):
    api = live_server.url
    full_page = customer_site.serve("/chatbot", customer_page("<p>The customer's own chat page</p>"))
    tag = widget_tag(
        api,
        title="Acme help",
        greeting="Welcome to **Acme**!",
        accent="rgb(5, 150, 105)",
        position="left",
        open="true",
        full_page_url=full_page,
    )
    page = new_page()
    page.goto(customer_site.serve("/options", customer_page(LISTENERS + tag)))
    widget = ChatUI(page)
    panel = page.get_by_role("dialog", name="Acme help")

    expect(panel).to_be_visible()  # open on load...
    assert page.evaluate("document.activeElement === document.body")  # ...without taking the focus
    expect(page.locator(".cb-greeting")).to_have_text("Assistant:Welcome to Acme!")
    expect(page.locator(".cb-title")).to_have_text("Acme help")
    expect(widget.launcher).to_have_css("background-color", "rgb(5, 150, 105)")
    assert widget.launcher.bounding_box()["x"] < 100  # bottom left

    page.evaluate("Chatbot.close()")
    expect(panel).to_be_hidden()
    page.evaluate("Chatbot.toggle()")
    expect(panel).to_be_visible()
    expect(widget.textbox).to_be_focused()

    page.evaluate("() => { window.received = []; Chatbot.on('message-received', (detail) => received.push(detail)); }")
    widget.send("Hello Acme", replies_after=1)
    session_id = page.evaluate(f"localStorage.getItem('chatbot:session:{api}')")
    sent = [detail for kind, detail in page.evaluate("seen") if kind == "message-sent"]
    assert [(detail["text"], detail["sessionId"]) for detail in sent] == [("Hello Acme", None)]
    assert re.fullmatch(r"c-[0-9a-f]{32}", sent[0]["clientMessageId"])
    (received,) = page.evaluate("received")
    assert received["sessionId"] == session_id
    assert received["message"]["role"] == "assistant" and "You said: Hello Acme" in received["message"]["content"]
    assert [kind for kind, _ in page.evaluate("seen")] == [
        "ready",
        "open",
        "close",
        "open",
        "message-sent",
        "message-received",
    ]

    assert widget.open_full_page().url == f"{full_page}?session={session_id}"

    page.evaluate("Chatbot.newConversation()")
    expect(page.locator(".cb-greeting")).to_be_visible()
    assert widget.transcript() == []
    assert page.evaluate(f"localStorage.getItem('chatbot:session:{api}')") is None
