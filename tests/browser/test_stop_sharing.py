"""Stop sharing this link, in the browser: the full page and the widget give the
conversation a new id, carry on under it, and the old link shows what an unknown one does."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from conversations.models import Session
from tests.browser.support import (
    ChatUI,
    customer_page,
    focused_name,
    in_db_thread,
    log_in_to_admin,
    session_with_messages,
    staff_who_reads_transcripts,
    tab_to,
    widget_tag,
)

pytestmark = pytest.mark.browser

EXPLANATION = "Anyone with this link will lose this conversation. You continue here under a new link."
DONE = "Done: this conversation has a new link."


def stored(session_id: str) -> list[str]:
    return list(Session.objects.get(public_id=session_id).messages.order_by("seq").values_list("content", flat=True))


def session_in(url: str) -> str | None:
    return parse_qs(urlsplit(url).query).get("session", [None])[0]


def test_the_page_moves_to_a_new_link_and_the_old_one_shows_an_unknown_conversation(new_page, live_server):
    api = live_server.url
    page = new_page()
    page.goto(f"{api}/chat")
    chat = ChatUI(page)
    expect(chat.button("Stop sharing this link")).to_be_hidden()  # nothing to share yet
    chat.send("A question I shared by mistake", replies_after=1)
    old_id = session_in(page.url)
    assert old_id

    # By keyboard: the control, then an explained confirmation that has the focus.
    page.locator("body").focus()
    tab_to(page, "Stop sharing this link")
    page.keyboard.press("Enter")
    expect(page.get_by_text(EXPLANATION)).to_be_visible()
    assert focused_name(page) == "Stop sharing"
    assert chat.button("Stop sharing").get_attribute("aria-describedby") == "cb-ask"
    page.keyboard.press("Enter")

    expect(page.get_by_text(DONE)).to_be_visible()
    expect(page.get_by_text(EXPLANATION)).to_have_count(0)
    new_id = in_db_thread(lambda: Session.objects.get().public_id)
    assert new_id != old_id
    expect(page).to_have_url(f"{api}/chat?session={new_id}")

    chat.send("And after I stopped sharing", replies_after=2)
    assert "I can see 2 earlier messages" in chat.transcript()[-1][1]
    questions = in_db_thread(lambda: stored(new_id))[::2]
    assert questions == ["A question I shared by mistake", "And after I stopped sharing"]

    stranger = new_page()
    stranger.goto(f"{api}/chat?session={old_id}")
    expect(stranger.get_by_role("status")).to_contain_text("We couldn't find that conversation")
    assert ChatUI(stranger).transcript() == []
    expect(stranger.get_by_text("A question I shared by mistake")).to_have_count(0)


def test_cancelling_keeps_the_link(new_page, live_server):
    page = new_page()
    page.goto(f"{live_server.url}/chat")
    chat = ChatUI(page)
    chat.send("Keep this one", replies_after=1)
    session_id = session_in(page.url)

    chat.button("Stop sharing this link").click()
    chat.button("Cancel").click()

    expect(page.get_by_text(EXPLANATION)).to_have_count(0)
    assert focused_name(page) == "Stop sharing this link"
    assert in_db_thread(lambda: Session.objects.get().public_id) == session_id == session_in(page.url)


def test_the_widget_moves_to_a_new_link_and_keeps_it_after_a_reload(new_page, live_server, customer_site):
    api = live_server.url
    host_url = customer_site.serve("/stop-sharing", customer_page(widget_tag(api)))
    page = new_page()
    widget = ChatUI(page)
    page.goto(host_url)
    widget.launcher.click()
    widget.send("First question", replies_after=1)
    stored_id = f"localStorage.getItem('chatbot:session:{api}')"
    old_id = page.evaluate(stored_id)

    widget.button("Stop sharing this link").click()
    expect(page.get_by_text(EXPLANATION)).to_be_visible()
    widget.button("Stop sharing").click()
    expect(page.get_by_text(DONE)).to_be_visible()

    new_id = in_db_thread(lambda: Session.objects.get().public_id)
    assert new_id != old_id
    assert page.evaluate(stored_id) == new_id
    page.reload()
    widget.launcher.click()
    widget.wait_for_replies(1)
    expect(widget.button("Stop sharing this link")).to_be_visible()
    widget.send("Second question", replies_after=2)
    assert "I can see 2 earlier messages" in widget.transcript()[-1][1]
    assert page.evaluate(stored_id) == new_id
    full = widget.open_full_page()
    assert session_in(full.url) == new_id


def test_the_page_framed_on_a_customer_site_tells_that_site_its_new_link(new_page, live_server, customer_site):
    api = live_server.url
    snippet = f'<script src="{api}/static/widget/frame.js" data-api-base="{api}" defer></script>'
    url = customer_site.serve("/chatbot-stop", customer_page(snippet, title="Our chatbot page", css=""))
    page = new_page()
    page.goto(url)
    frame = page.frame_locator("iframe.chatbot-frame")
    chat = ChatUI(frame)
    chat.send("Shared too widely", replies_after=1)
    page.wait_for_function("() => location.search.includes('session=')")
    old_id = session_in(page.url)

    chat.button("Stop sharing this link").click()
    chat.button("Stop sharing").click()
    expect(frame.get_by_text(DONE)).to_be_visible()

    new_id = in_db_thread(lambda: Session.objects.get().public_id)
    assert new_id != old_id
    expect(page).to_have_url(f"{url}?session={new_id}")


def test_the_control_and_its_confirmation_pass_axe_on_the_page_and_in_the_widget(new_page, live_server, axe):
    turns = [("user", "Which tent?"), ("assistant", "The Ridgeline 2P.")]
    session_id = in_db_thread(lambda: session_with_messages(turns, source="page").public_id)
    page = new_page(bypass_csp=True)  # so that axe-core's script may run
    page.goto(f"{live_server.url}/chat?session={session_id}")
    chat = ChatUI(page)
    chat.button("Stop sharing this link").click()
    expect(page.get_by_text(EXPLANATION)).to_be_visible()
    axe(page, "on /chat, asking whether to stop sharing")
    chat.button("Stop sharing").click()
    expect(page.get_by_text(DONE)).to_be_visible()
    axe(page, "on /chat, after it stopped sharing")

    demo = new_page(bypass_csp=True)
    demo.goto(f"{live_server.url}/widget/demo/")
    widget = ChatUI(demo)
    widget.launcher.click()
    widget.send("Which tent?", replies_after=1)
    widget.button("Stop sharing this link").click()
    expect(demo.get_by_text(EXPLANATION)).to_be_visible()
    axe(demo, "in the widget, asking whether to stop sharing")


def test_the_admin_transcript_keeps_following_a_conversation_whose_link_was_stopped(
    new_page, live_server, customer_site, django_user_model
):
    api = live_server.url
    in_db_thread(lambda: staff_who_reads_transcripts(django_user_model))
    session = in_db_thread(lambda: session_with_messages([("user", "Hello"), ("assistant", "Hi there.")]))
    admin = new_page()
    log_in_to_admin(admin, api, f"/admin/conversations/session/{session.pk}/change/")
    transcript = admin.get_by_label("Transcript")
    expect(transcript).to_contain_text("Hi there.")

    page = new_page()
    page.goto(f"{api}/chat?session={session.public_id}")
    chat = ChatUI(page)
    chat.button("Stop sharing this link").click()
    chat.button("Stop sharing").click()
    expect(page.get_by_text(DONE)).to_be_visible()
    chat.send("Written under the new link", replies_after=2)

    expect(transcript).to_contain_text("Written under the new link")
