"""What a new user sees after ``./dev.sh serve`` with no key: the widget on the demo
site answers from the demo's own pages, and lists them as its sources."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.support import ChatUI

pytestmark = pytest.mark.browser


def test_the_widget_on_the_demo_site_answers_the_tent_question_offline_with_its_sources(
    new_page, live_server, demo_knowledge_base
):
    page = new_page()
    page.goto(f"{live_server.url}/widget/demo/")
    widget = ChatUI(page)
    widget.launcher.click()

    widget.send("Which tent is best for two people?", replies_after=1)

    reply = widget.replies.first
    expect(reply).to_contain_text("The best tent for two people is the Ridgeline 2P ($329)")
    sources = reply.get_by_role("list", name="Sources")
    first = sources.get_by_role("listitem").first
    expect(first).to_contain_text("The best tent for two people is the Ridgeline 2P")  # the snippet
    link = first.get_by_role("link", name="Tents", exact=True)
    expect(link).to_have_attribute("href", f"{live_server.url}/widget/demo/tents/")
    expect(link).to_have_attribute("rel", "noopener noreferrer")

    reply.get_by_role("link", name="[1]").click()
    expect(first).to_be_focused()
