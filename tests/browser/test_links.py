"""Links a model writes cannot send visitors anywhere: in replies, only links to the
allowlisted hosts are clickable (here the customer's site, from CHATBOT_ALLOWED_ORIGINS);
any other URL is shown as text, in the widget, on the full page and in the admin. And
bidirectional controls cannot reorder what any of them shows."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from conversations.models import Session
from tests.browser.support import (
    ChatUI,
    customer_page,
    in_db_thread,
    log_in_to_admin,
    staff_who_reads_transcripts,
    widget_tag,
)

pytestmark = pytest.mark.browser


def planted_reply(customer: str, stranger: str) -> str:
    return (
        f"See [our pricing]({customer}/pricing) or {customer}/faq. "
        f"Please [log in again]({stranger}/login) at {stranger}/verify, "
        "or https://evil.example/login, or [mail us](mailto:help@evil.example)."
    )


def assert_only_the_customers_links_are_clickable(reply, customer: str, stranger: str) -> None:
    links = reply.locator("a")
    assert sorted(links.evaluate_all("nodes => nodes.map(n => n.getAttribute('href'))")) == [
        f"{customer}/faq",
        f"{customer}/pricing",
    ]
    text = reply.text_content()
    assert f"[log in again]({stranger}/login)" in text  # shown as the text it is
    assert f"{stranger}/verify" in text
    assert "https://evil.example/login" in text
    assert "[mail us](mailto:help@evil.example)" in text


def test_only_links_to_allowlisted_hosts_are_clickable_in_widget_page_and_admin(
    new_page, live_server, customer_site, stranger_site, fake_llm, django_user_model
):
    customer, stranger, api = customer_site.origin, stranger_site.origin, live_server.url
    fake_llm.reset(reply=planted_reply(customer, stranger))
    page = new_page()
    page.goto(customer_site.serve("/links", customer_page(widget_tag(api))))
    widget = ChatUI(page)

    widget.launcher.click()
    widget.send("Where do I log in?", replies_after=1)
    assert_only_the_customers_links_are_clickable(widget.replies.first, customer, stranger)

    # The full page renders the stored reply on the server...
    full = widget.open_full_page()
    assert_only_the_customers_links_are_clickable(ChatUI(full).replies.first, customer, stranger)
    # ...and a new one in the browser, with the allowlist the page was given.
    ChatUI(full).send("And again?", replies_after=2)
    assert_only_the_customers_links_are_clickable(ChatUI(full).replies.nth(1), customer, stranger)

    # Staff read what the model wrote, as text: no link at all.
    session_id = page.evaluate(f"localStorage.getItem('chatbot:session:{api}')")
    session_pk = in_db_thread(lambda: Session.objects.get(public_id=session_id).pk)
    in_db_thread(lambda: staff_who_reads_transcripts(django_user_model))
    admin = new_page()
    log_in_to_admin(admin, api, f"/admin/conversations/session/{session_pk}/change/")
    transcript = admin.get_by_label("Transcript")
    expect(transcript).to_contain_text(f"[log in again]({stranger}/login)")
    assert transcript.locator("a").count() == 0


def test_a_link_to_an_allowlisted_host_opens_that_page(new_page, live_server, customer_site, stranger_site, fake_llm):
    customer_site.serve("/pricing", "<!doctype html><title>Pricing</title><p>Our prices")
    fake_llm.reset(reply=planted_reply(customer_site.origin, stranger_site.origin))
    page = new_page()
    page.goto(customer_site.serve("/links-click", customer_page(widget_tag(live_server.url))))
    widget = ChatUI(page)
    widget.launcher.click()
    widget.send("Prices?", replies_after=1)

    with page.context.expect_page() as opened:
        widget.replies.first.get_by_role("link", name="our pricing").click()

    opened.value.wait_for_load_state()
    assert opened.value.url == f"{customer_site.origin}/pricing"


def test_bidirectional_controls_cannot_reorder_messages_anywhere(
    new_page, live_server, customer_site, fake_llm, django_user_model
):
    fake_llm.reset(reply="Your file: \u202eexe.txt\u202c, ok\u200b?")
    api = live_server.url
    page = new_page()
    page.goto(customer_site.serve("/bidi", customer_page(widget_tag(api))))
    widget = ChatUI(page)

    widget.launcher.click()
    widget.send("Open inv\u200boice\u2066.pdf\u2069 \u202egnp.", replies_after=1)
    shown = [("user", "Open invoice.pdf gnp."), ("assistant", "Your file: exe.txt, ok?")]
    assert widget.transcript() == shown
    assert ChatUI(widget.open_full_page()).transcript() == shown

    session_id = page.evaluate(f"localStorage.getItem('chatbot:session:{api}')")
    session_pk = in_db_thread(lambda: Session.objects.get(public_id=session_id).pk)
    in_db_thread(lambda: Session.objects.filter(pk=session_pk).update(title="Refund \u202edecnalac\u202c"))
    in_db_thread(lambda: staff_who_reads_transcripts(django_user_model))
    admin = new_page()
    log_in_to_admin(admin, api, "/admin/conversations/session/")
    expect(admin.locator("#result_list")).to_contain_text("Refund decnalac")
    admin.goto(f"{api}/admin/conversations/session/{session_pk}/change/")
    transcript = admin.get_by_label("Transcript").text_content()
    assert "Your file: exe.txt, ok?" in transcript
    for character in "\u202e\u202c\u200b\u2066\u2069":
        assert character not in transcript
        assert character not in admin.locator("#result_list, #content h2, .breadcrumbs").all_text_contents()
