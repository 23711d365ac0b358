"""A person takes over: staff on the admin transcript page, the visitor in the widget on a
customer's site, each in a browser of their own. What one writes reaches the other
live, without a reload; while staff answer, the model is never asked; handed back, it
answers again knowing what staff said. Names and messages are text everywhere."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from conversations.models import Session
from tests.browser.support import (
    ChatUI,
    customer_page,
    in_db_thread,
    log_in_to_admin,
    session_id_in_widget,
    staff_who_answers,
    widget_tag,
)

pytestmark = pytest.mark.browser

PAYLOAD = "<img src=x onerror=alert('img')><script>alert('script')</script>"
DANGEROUS = "img, script:not([src]), [onerror]"


def visitor_in_widget(new_page, customer_site, api: str, first_message: str):
    """A visitor who has opened the widget and had one answer from the bot."""
    page = new_page()
    page.goto(customer_site.serve("/takeover", customer_page(widget_tag(api))))
    widget = ChatUI(page)
    widget.launcher.click()
    widget.send(first_message, replies_after=1)
    return page, widget


def staff_on_transcript(new_page, api: str, session_id: str):
    """The staff member on that conversation's transcript page, its live feed open."""
    pk = in_db_thread(lambda: Session.objects.get(public_id=session_id).pk)
    admin = new_page()
    log_in_to_admin(admin, api, f"/admin/conversations/session/{pk}/change/", username="responder")
    return admin


def test_staff_take_over_answer_live_and_hand_back_to_the_bot(
    new_page, live_server, customer_site, fake_llm, django_user_model
):
    fake_llm.reset(reply="The bot here.")
    in_db_thread(lambda: staff_who_answers(django_user_model))
    api = live_server.url
    page, widget = visitor_in_widget(new_page, customer_site, api, "Hello")
    admin = staff_on_transcript(new_page, api, session_id_in_widget(page, api))
    transcript = admin.get_by_label("Transcript")
    expect(admin.get_by_role("status").filter(has_text="The assistant answers")).to_be_visible()

    admin.get_by_role("button", name="Take over").click()
    expect(admin.get_by_text("Handled by Rita Responder")).to_be_visible()
    expect(page.get_by_text("Rita Responder joined the conversation")).to_be_visible()

    widget.send("Is anyone there?")
    expect(transcript).to_contain_text("Is anyone there?")
    expect(widget.send_button).not_to_have_attribute("aria-disabled", "true")
    assert len(fake_llm.requests) == 1  # the first turn only
    assert widget.transcript() == [("user", "Hello"), ("assistant", "The bot here."), ("user", "Is anyone there?")]

    admin.get_by_label("Reply as Rita Responder").fill("Yes, Rita here.")
    admin.get_by_role("button", name="Send reply").click()
    staff_reply = page.locator(".cb-msg-assistant", has_text="Yes, Rita here.")
    expect(staff_reply.locator(".cb-by")).to_have_text("Rita Responder")
    expect(transcript).to_contain_text("Yes, Rita here.")

    admin.get_by_role("button", name="Hand back to the assistant").click()
    expect(page.get_by_text("You're back with the assistant")).to_be_visible()
    expect(admin.get_by_text("The assistant answers")).to_be_visible()

    widget.send("Thanks!", replies_after=3)
    assert len(fake_llm.requests) == 2
    said = [(m["role"], m["content"]) for m in fake_llm.last_messages]
    assert ("user", "Is anyone there?") in said
    assert ("assistant", "Yes, Rita here.") in said
    assert [text for _, text in widget.transcript()].count("Rita ResponderYes, Rita here.") == 1


def test_talk_to_a_person_marks_the_session_waiting_and_the_list_shows_it_first(
    new_page, live_server, customer_site, django_user_model
):
    in_db_thread(lambda: staff_who_answers(django_user_model))
    in_db_thread(lambda: Session.objects.create(source="widget"))  # more recent, nobody waiting
    api = live_server.url
    page, widget = visitor_in_widget(new_page, customer_site, api, "I need help with my order")
    session_id = session_id_in_widget(page, api)
    in_db_thread(lambda: Session.objects.create(source="page"))  # the newest, nobody waiting

    widget.button("Talk to a person").click()
    expect(page.get_by_text("We've told the team")).to_be_visible()

    admin = new_page()
    log_in_to_admin(admin, api, "/admin/conversations/session/", username="responder")
    expect(admin.get_by_text("1 session waiting for a person")).to_be_visible()
    first_row = admin.locator("#result_list tbody tr").first
    expect(first_row).to_contain_text(session_id)


def test_the_talk_to_a_person_control_is_absent_when_the_embed_says_off(new_page, live_server, customer_site):
    page = new_page()
    page.goto(customer_site.serve("/no-handoff", customer_page(widget_tag(live_server.url, handoff="off"))))
    widget = ChatUI(page)
    widget.launcher.click()

    expect(widget.button("New conversation")).to_be_visible()
    expect(widget.button("Talk to a person")).to_have_count(0)


def test_a_staff_name_and_live_messages_with_html_stay_text_in_widget_page_and_admin(
    new_page, watch, live_server, customer_site, fake_llm, django_user_model
):
    fake_llm.reset(reply="The bot here.")
    in_db_thread(lambda: staff_who_answers(django_user_model, first_name=PAYLOAD, last_name=""))
    api = live_server.url
    page, widget = visitor_in_widget(new_page, customer_site, api, "Hello")
    full = widget.open_full_page()
    admin = staff_on_transcript(new_page, api, session_id_in_widget(page, api))

    admin.get_by_role("button", name="Take over").click()
    widget.send(PAYLOAD)
    expect(admin.get_by_label("Transcript")).to_contain_text(PAYLOAD)
    admin.get_by_role("textbox", name=f"Reply as {PAYLOAD}").fill(PAYLOAD)
    admin.get_by_role("button", name="Send reply").click()

    for view in (page, full):
        expect(view.get_by_text(f"{PAYLOAD} joined the conversation")).to_be_visible()
        expect(view.locator(".cb-by")).to_have_text(PAYLOAD)
        expect(view.locator(".cb-msg-user", has_text=PAYLOAD)).to_have_count(1)
        assert view.locator(f".cb-list :is({DANGEROUS})").count() == 0
    expect(admin.get_by_text(f"Handled by {PAYLOAD}")).to_be_visible()
    expect(admin.get_by_label("Transcript").locator(".msg-assistant", has_text=PAYLOAD)).to_have_count(1)
    assert admin.locator(f"#content :is({DANGEROUS})").count() == 0
    page.wait_for_timeout(200)  # any handler that slipped through would have fired
    assert watch.dialogs == []


def test_the_full_page_asks_for_a_person_too(new_page, live_server):
    page = new_page()
    page.goto(f"{live_server.url}/chat")
    chat = ChatUI(page)
    chat.send("Hello", replies_after=1)

    chat.button("Talk to a person").click()

    expect(page.get_by_text("We've told the team")).to_be_visible()
    session_id = page.evaluate("new URL(location.href).searchParams.get('session')")
    assert in_db_thread(lambda: Session.objects.get(public_id=session_id).waiting_since) is not None
