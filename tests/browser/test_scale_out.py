"""Scale-out in the browser: the widget talks to one instance of the production server,
the full page is served by another, and the visitor sees one conversation.

Both instances share this run's PostgreSQL database and one Redis (the
``production_instances`` fixture), as instances behind a load balancer do.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.support import ChatUI, customer_page, widget_tag

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.redis]


def test_the_widget_on_one_instance_continues_on_the_full_page_of_another(
    production_instances, customer_site, new_page
):
    a, b = production_instances(2, CHATBOT_ALLOWED_ORIGINS=customer_site.origin)
    host_url = customer_site.serve("/two-instances", customer_page(widget_tag(a, full_page_url=f"{b}/chat")))
    page = new_page()
    widget = ChatUI(page)

    page.goto(host_url)
    widget.launcher.click()
    widget.send("Hello from the widget on A", replies_after=1)
    session_id = page.evaluate(f"localStorage.getItem('chatbot:session:{a}')")

    full = widget.open_full_page()
    assert full.url == f"{b}/chat?session={session_id}"
    expect(full.get_by_text("Conversation continued from widget")).to_be_visible()
    chat = ChatUI(full)
    assert chat.transcript() == widget.transcript()

    chat.send("And on with the full page on B", replies_after=2)
    assert "I can see 2 earlier messages" in chat.transcript()[-1][1]  # B's turn saw A's

    page.reload()
    widget.launcher.click()
    widget.wait_for_replies(2)
    assert widget.transcript() == chat.transcript()
    assert [role for role, _ in widget.transcript()] == ["user", "assistant", "user", "assistant"]
