"""Markup and script in messages, from visitors or from the model, are shown as text:
in the widget, on the full page and in the admin transcript. Nothing runs."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from conversations.models import Session
from tests.browser.support import (
    ChatUI,
    customer_page,
    in_db_thread,
    sign_in_as_staff,
    staff_who_reads_transcripts,
    widget_tag,
)

pytestmark = pytest.mark.browser

PAYLOAD = (
    "<img src=x onerror=alert('img')> [click me](javascript:alert('md')) "
    "<a href=\"javascript:alert('a')\">link</a> <script>alert('script')</script>"
)
# Elements the payload would create if it were interpreted as HTML or as a link.
DANGEROUS = "img, script:not([src]), a[href^='javascript' i], [onerror], iframe"


def dangerous_elements(page) -> int:
    """How many such elements exist in the page's conversation, shadow root included."""
    return page.locator(f".cb-list :is({DANGEROUS})").count()


def test_html_and_script_in_messages_stay_inert_everywhere(
    new_page, watch, live_server, customer_site, fake_llm, django_user_model
):
    fake_llm.reset(reply="Here it is back: " + PAYLOAD)
    api = live_server.url
    page = new_page()
    page.goto(customer_site.serve("/xss", customer_page(widget_tag(api))))
    widget = ChatUI(page)

    widget.launcher.click()
    widget.send(PAYLOAD, replies_after=1)
    (user_role, user_text), (_, reply_text) = widget.transcript()
    assert user_text == PAYLOAD
    assert reply_text == "Here it is back: " + PAYLOAD
    assert dangerous_elements(page) == 0

    full = widget.open_full_page()
    assert ChatUI(full).transcript() == [("user", PAYLOAD), ("assistant", "Here it is back: " + PAYLOAD)]
    assert dangerous_elements(full) == 0

    session_id = page.evaluate(f"localStorage.getItem('chatbot:session:{api}')")
    session_pk = in_db_thread(lambda: Session.objects.get(public_id=session_id).pk)
    in_db_thread(lambda: staff_who_reads_transcripts(django_user_model))
    admin = new_page()
    sign_in_as_staff(admin, api, f"/admin/conversations/session/{session_pk}/change/")
    transcript = admin.get_by_label("Transcript")
    expect(transcript).to_contain_text(PAYLOAD)
    assert transcript.locator(DANGEROUS).count() == 0

    # Give any handler that slipped through the chance to fire before looking.
    page.wait_for_timeout(200)
    assert watch.dialogs == []
