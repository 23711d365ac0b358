"""Feedback on answers in Chromium: "Helpful" and "Not helpful" under each of the bot's
answers, in the widget and on the full page, by mouse and by keyboard; pressed as stored
after a reload; a visitor who changes their mind."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from conversations.models import Feedback, Rating, Session
from conversations.staffing import reply_as_staff
from tests.browser.support import (
    ChatUI,
    customer_page,
    focused_name,
    in_db_thread,
    session_with_messages,
    tab_to,
    widget_tag,
)

pytestmark = pytest.mark.browser


def stored_feedback(session_id: str) -> list[tuple[int, str]]:
    """(rating, comment) of every answer rated in the session."""
    rows = Feedback.objects.filter(message__session__public_id=session_id).order_by("message__seq")
    return list(rows.values_list("rating", "comment"))


def assert_pressed(ui: ChatUI, helpful: bool, not_helpful: bool) -> None:
    expect(ui.button("Helpful")).to_have_attribute("aria-pressed", str(helpful).lower())
    expect(ui.button("Not helpful")).to_have_attribute("aria-pressed", str(not_helpful).lower())


def test_a_visitor_rates_an_answer_in_the_widget_and_changes_their_mind(new_page, live_server, customer_site):
    api = live_server.url
    page = new_page()
    page.goto(customer_site.serve("/feedback", customer_page(widget_tag(api))))
    widget = ChatUI(page)
    widget.launcher.click()
    expect(page.locator(".cb-greeting .cb-rate")).to_have_count(0)  # the greeting is no answer

    widget.send("Do you ship to Norway?", replies_after=1)
    session_id = page.evaluate(f"localStorage.getItem('chatbot:session:{api}')")
    assert_pressed(widget, False, False)

    widget.button("Helpful").click()
    assert_pressed(widget, True, False)
    assert in_db_thread(lambda: stored_feedback(session_id)) == [(Rating.HELPFUL, "")]

    widget.button("Not helpful").click()
    assert_pressed(widget, False, True)
    why = page.get_by_role("textbox", name="What was wrong? (optional)")
    why.fill("It does not say how long it takes.")
    widget.button("Send feedback").click()
    expect(page.get_by_role("status").filter(has_text="Thanks for your feedback.")).to_be_visible()
    expect(why).to_have_count(0)
    assert in_db_thread(lambda: stored_feedback(session_id)) == [
        (Rating.NOT_HELPFUL, "It does not say how long it takes.")
    ]

    page.reload()
    widget.launcher.click()
    widget.wait_for_replies(1)
    assert_pressed(widget, False, True)

    widget.button("Not helpful").click()  # pressed again: taken back
    assert_pressed(widget, False, False)
    assert in_db_thread(lambda: stored_feedback(session_id)) == []


def test_a_visitor_rates_an_answer_on_the_full_page_with_the_keyboard(new_page, live_server):
    def conversation() -> str:
        session = session_with_messages(
            [("user", "Which tent for two?"), ("assistant", "The Ridge 2."), ("user", "A person, please")],
            source="page",
        )
        staff = get_user_model().objects.create_user("rita-feedback", is_staff=True, first_name="Rita")
        reply_as_staff(session=session, staff=staff, text="Rita here: the Ridge 2 it is.")
        return session.public_id

    session_id = in_db_thread(conversation)
    page = new_page()
    page.goto(f"{live_server.url}/chat?session={session_id}")
    chat = ChatUI(page)
    expect(page.locator(".cb-rate")).to_have_count(1)  # the bot's answer, not the person's reply
    assert_pressed(chat, False, False)

    tab_to(page, "Helpful")
    page.keyboard.press("Enter")
    assert_pressed(chat, True, False)
    assert focused_name(page) == "Helpful"

    page.reload()  # the server-rendered transcript shows it pressed
    assert_pressed(chat, True, False)
    tab_to(page, "Not helpful")
    page.keyboard.press("Space")
    assert_pressed(chat, False, True)
    page.keyboard.press("Tab")
    assert focused_name(page) == "What was wrong? (optional)"
    page.keyboard.type("Which one is lighter?")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Thanks for your feedback.")).to_be_visible()
    assert focused_name(page) == "Not helpful"  # the form went, the focus did not get lost
    assert in_db_thread(lambda: stored_feedback(session_id)) == [(Rating.NOT_HELPFUL, "Which one is lighter?")]

    page.keyboard.press("Enter")
    assert_pressed(chat, False, False)
    assert in_db_thread(lambda: stored_feedback(session_id)) == []
    page.reload()
    assert_pressed(chat, False, False)


def test_an_answer_given_on_the_full_page_is_rated_with_the_mouse_and_shown_in_the_widget(
    new_page, live_server, customer_site
):
    api = live_server.url
    page = new_page()
    page.goto(f"{api}/chat")
    chat = ChatUI(page)
    chat.send("Do you ship to Norway?", replies_after=1)
    chat.button("Not helpful").click()
    assert_pressed(chat, False, True)
    session_id = in_db_thread(lambda: Session.objects.get().public_id)

    site = new_page()
    site.goto(customer_site.serve("/rated", customer_page(widget_tag(api))))
    site.evaluate("([key, id]) => localStorage.setItem(key, id)", [f"chatbot:session:{api}", session_id])
    site.reload()
    widget = ChatUI(site)
    widget.launcher.click()
    widget.wait_for_replies(1)
    assert_pressed(widget, False, True)

    widget.button("Helpful").click()
    assert_pressed(widget, True, False)
    assert in_db_thread(lambda: stored_feedback(session_id)) == [(Rating.HELPFUL, "")]


def test_the_buttons_and_the_comment_field_pass_axe(new_page, live_server, axe):
    session_id = in_db_thread(
        lambda: session_with_messages([("user", "Which tent?"), ("assistant", "The Ridge 2.")], source="page").public_id
    )
    page = new_page(bypass_csp=True)
    page.goto(f"{live_server.url}/chat?session={session_id}")
    chat = ChatUI(page)

    chat.button("Not helpful").click()
    expect(page.get_by_role("textbox", name="What was wrong? (optional)")).to_be_visible()

    axe(page, "on /chat with an answer rated not helpful")
