"""The widget on a bad day: dropped connections, failing upstreams, rate limits,
blocked storage and sessions the server has forgotten."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from conversations.models import Message, Session
from tests.browser.support import ChatUI, customer_page, in_db_thread, widget_tag

pytestmark = pytest.mark.browser


def stored_turns() -> list[tuple[str, int, str]]:
    return list(Message.objects.order_by("session_id", "seq").values_list("session__public_id", "seq", "role"))


def test_a_retry_after_a_dropped_connection_reuses_the_message_id(new_page, live_server, customer_site, fake_llm):
    api = live_server.url
    page = new_page()
    page.goto(customer_site.serve("/flaky", customer_page(widget_tag(api))))
    widget = ChatUI(page)
    sent = []

    def flaky(route):
        if route.request.method != "POST":
            return route.continue_()
        sent.append(json.loads(route.request.post_data))
        if len(sent) == 1:
            # The server answers in full; the visitor's connection drops after the
            # first bytes of the answer (the session event and a piece of text).
            response = route.fetch()
            events = response.text().split("\n\n")
            return route.fulfill(response=response, body="\n\n".join(events[:2]) + "\n\n")
        if len(sent) == 3:
            route.fetch()  # stored on the server...
            return route.abort("connectionreset")  # ...and the visitor hears nothing
        return route.continue_()

    page.route(f"{api}/api/chat", flaky)
    widget.launcher.click()

    widget.send("First, over a flaky line")
    expect(widget.button("Retry")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text(
        "We couldn't reach the assistant. Check your connection and try again."
    )
    assert widget.transcript() == [("user", "First, over a flaky line")]  # the visitor's text stays
    widget.button("Retry").click()
    widget.wait_for_replies(1)

    widget.send("Second, the line drops again")
    expect(widget.button("Retry")).to_be_visible()
    widget.button("Retry").click()
    widget.wait_for_replies(2)

    first, retry_of_first, second, retry_of_second = sent
    assert retry_of_first["client_message_id"] == first["client_message_id"]
    assert retry_of_second["client_message_id"] == second["client_message_id"]
    assert first["client_message_id"] != second["client_message_id"]
    assert retry_of_first["session_id"] == second["session_id"] == retry_of_second["session_id"]
    assert len(fake_llm.requests) == 2  # one model call per turn: the retries were replayed
    turns = in_db_thread(stored_turns)
    assert [(seq, role) for _, seq, role in turns] == [(1, "user"), (2, "assistant"), (3, "user"), (4, "assistant")]
    assert {session for session, _, _ in turns} == {second["session_id"]}
    assert [role for role, _ in widget.transcript()] == ["user", "assistant", "user", "assistant"]


def test_failures_show_inline_with_a_retry_that_keeps_the_text(
    new_page, live_server, customer_site, fake_llm, settings
):
    settings.CHATBOT_RATELIMIT_ENABLE = True
    settings.CHATBOT_RATELIMIT_CHAT_SESSION = "1/m"  # the retry below is the session's one request
    api = live_server.url
    page = new_page()
    page.goto(customer_site.serve("/failing", customer_page(widget_tag(api))))
    widget = ChatUI(page)
    widget.launcher.click()

    fake_llm.reset(status=500)
    widget.send("Is anybody there?")
    expect(page.get_by_role("alert")).to_have_text("The assistant couldn't answer just now. Try again.")
    assert widget.transcript() == [("user", "Is anybody there?")]
    assert in_db_thread(Message.objects.count) == 0  # nothing stored for a failed turn

    fake_llm.reset(reply="Back on my feet.")
    widget.button("Retry").click()
    widget.wait_for_replies(1)
    assert widget.transcript() == [("user", "Is anybody there?"), ("assistant", "Back on my feet.")]
    expect(page.get_by_role("alert")).to_have_count(0)

    widget.send("One more, over the rate limit")  # the session's second request this minute
    expect(page.get_by_role("alert")).to_contain_text("Try again in")
    expect(widget.button("Retry")).to_be_visible()
    assert widget.transcript()[-1] == ("user", "One more, over the rate limit")
    assert in_db_thread(Session.objects.count) == 1


def test_replies_stream_in_after_a_typing_indicator(new_page, live_server, customer_site, fake_llm):
    reply = "Here is **the answer**, arriving a few letters at a time. " * 3
    fake_llm.reset(reply=reply, delay=0.5, chunk_delay=0.04, chunk_size=6)
    page = new_page()
    page.goto(customer_site.serve("/streaming", customer_page(widget_tag(live_server.url))))
    widget = ChatUI(page)
    widget.launcher.click()

    widget.send("Tell me slowly")
    expect(page.locator(".cb-typing")).to_be_visible()
    streaming = page.locator(".cb-msg-assistant[aria-busy='true'] .cb-bubble")
    expect(streaming).to_contain_text("Here is the answer")
    partial = streaming.text_content()
    widget.wait_for_replies(1)

    final = widget.transcript()[-1][1]
    assert len(partial) < len(final)
    assert final == reply.replace("**", "")
    expect(page.locator(".cb-typing")).to_have_count(0)
    expect(widget.replies.locator("strong").first).to_have_text("the answer")


BLOCKED_STORAGE = """
Object.defineProperty(window, "localStorage", {
  get() { throw new DOMException("The operation is insecure.", "SecurityError"); },
});
"""


def test_with_storage_blocked_the_session_lives_in_memory_for_the_visit(new_page, live_server, customer_site):
    api = live_server.url
    page = new_page(init_script=BLOCKED_STORAGE)
    page.goto(customer_site.serve("/private", customer_page(widget_tag(api))))
    widget = ChatUI(page)
    widget.launcher.click()

    widget.send("First", replies_after=1)
    widget.send("Second", replies_after=2)
    assert "I can see 2 earlier messages" in widget.transcript()[-1][1]
    session_id = in_db_thread(lambda: Session.objects.get().public_id)
    assert widget.open_full_page().url == f"{api}/chat?session={session_id}"

    page.reload()
    widget.launcher.click()
    expect(page.locator(".cb-greeting")).to_be_visible()
    assert widget.transcript() == []
    expect(page.locator(".cb-error")).to_have_count(0)


def test_a_session_the_server_no_longer_has_starts_fresh_quietly(new_page, live_server, customer_site):
    api = live_server.url
    key = f"chatbot:session:{api}"
    page = new_page()
    page.goto(customer_site.serve("/returning", customer_page(widget_tag(api))))
    page.evaluate("([key, id]) => localStorage.setItem(key, id)", [key, "gone" + "x" * 28])
    page.reload()
    widget = ChatUI(page)

    widget.launcher.click()
    expect(page.locator(".cb-greeting")).to_be_visible()
    expect(page.locator(".cb-error")).to_have_count(0)
    assert page.evaluate("key => localStorage.getItem(key)", key) is None

    widget.send("Hello again", replies_after=1)
    new_id = in_db_thread(lambda: Session.objects.get().public_id)
    assert page.evaluate("key => localStorage.getItem(key)", key) == new_id
