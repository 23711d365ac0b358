"""Screenshots of the widget (desktop and mobile) and of the full page, on the demo
site, written to test-artifacts/screenshots/ (and, with CHATBOT_UPDATE_SCREENSHOTS=1,
to docs/screenshots/ for the README). On the way it checks what they show."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.support import ChatUI, save_screenshot

pytestmark = pytest.mark.browser

# A scripted model's reply; the sources it cites are the demo site's pages, found by the
# product's own retrieval (the README says so under the pictures).
REPLY = (
    "Our **Ridgeline 2P** is the best tent for two people [1]:\n\n"
    "- 1.6 kg packed, three seasons\n"
    "- $329, with free returns for 60 days\n\n"
    "Want me to check stock at the store nearest you?"
)


def test_screenshots_of_the_widget_and_the_full_page(new_page, live_server, fake_llm, demo_knowledge_base):
    fake_llm.reset(reply=REPLY)
    page = new_page(viewport={"width": 1280, "height": 820})
    page.goto(f"{live_server.url}/widget/demo/")
    widget = ChatUI(page)
    widget.launcher.click()
    widget.send("Which tent is best for two people?", replies_after=1)
    expect(widget.replies.first.get_by_role("list", name="Sources")).to_contain_text("Tents")
    page.mouse.move(0, 0)
    save_screenshot(page, "widget-desktop", publish=True)

    full = widget.open_full_page()
    full.set_viewport_size({"width": 1280, "height": 820})
    chat = ChatUI(full)
    fake_llm.reset(reply="Yes: the **Ridgeline 2P** is in stock at our Portland store. Shall I reserve one?")
    chat.send("Great. Is it in stock in Portland?", replies_after=2)
    expect(full.get_by_text("Conversation continued from widget")).to_be_visible()
    full.mouse.move(0, 0)
    save_screenshot(full, "full-page", publish=True)

    mobile = new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    mobile.goto(f"{live_server.url}/widget/demo/")
    on_phone = ChatUI(mobile)
    on_phone.launcher.click()
    panel = mobile.get_by_role("dialog")
    assert panel.bounding_box() == {"x": 0, "y": 0, "width": 390, "height": 844}  # the whole screen
    fake_llm.reset(reply=REPLY)
    on_phone.send("Which tent is best for two people?", replies_after=1)
    save_screenshot(mobile, "widget-mobile")
