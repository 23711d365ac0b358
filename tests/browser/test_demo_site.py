"""What a new user sees after ``./dev.sh serve`` with no key: the widget on the demo
site answers from the demo's own pages, and lists them as its sources."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from knowledge.index import remove_sources
from knowledge.models import Source
from tests.browser.support import ChatUI, in_db_thread

pytestmark = pytest.mark.browser


@pytest.fixture
def demo_knowledge_base(live_server):
    """The demo site in the knowledge base, linked where the live server serves it, as
    ``./dev.sh serve`` leaves it; taken out again, since the live server's database
    outlives the test."""
    in_db_thread(lambda: call_command("kb_demo", "--base-url", live_server.url, stdout=StringIO()))
    yield
    in_db_thread(lambda: remove_sources(Source.objects.all()))


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
