"""Accessibility, audited. axe-core (from npm, see package.json) finds no violation of
any impact on the demo site with the widget in each of its states, on /chat, and on
the admin transcript. The open panel is a dialog, modal and keeping the focus while it
covers a phone's screen; reduced motion, forced colours, 200 % zoom and a 320 px wide
screen are respected."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from conversations import staffing
from tests.browser.support import (
    ChatUI,
    focused_name,
    in_db_thread,
    log_in_to_admin,
    session_with_messages,
    show_in_widget,
    staff_who_answers,
    staff_who_reads_transcripts,
    tab_to,
)

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
REPLY = (
    "Our **Ridgeline 2P** is the lightest two-person tent:\n\n"
    "- 1.6 kg packed, `three seasons`\n"
    "- see [the spec sheet](https://example.com/ridgeline)\n\n"
    "```\npitch time: 4 min\n```"
)
# What the answer above cites [1], as the turn stores it; [2] has no URL (an uploaded file).
SOURCES = [
    {"id": 1, "title": "Ridgeline 2P", "url": "https://example.com/ridgeline", "heading": "", "snippet": "1.6 kg."},
    {"id": 2, "title": "Care guide.pdf", "url": None, "heading": "", "snippet": "Rinse in cold water."},
]
CITED = REPLY.replace("tent:", "tent [1][2]:")

# Is the focus on an element inside the widget's panel?
FOCUS_IN_PANEL = """() => {
  const host = document.querySelector("chatbot-widget");
  const active = host && document.activeElement === host && host.shadowRoot.activeElement;
  return !!(active && active.closest(".cb-panel"));
}"""

# The names of the CSS animations running now, in the page and in open shadow roots.
RUNNING_ANIMATIONS = """() => {
  const roots = [document, ...[...document.querySelectorAll("*")].filter((n) => n.shadowRoot).map((n) => n.shadowRoot)];
  return roots.flatMap((root) => root.getAnimations())
    .filter((a) => a.playState === "running").map((a) => a.animationName || a.id);
}"""


def open_demo(new_page, live_server, **context_options):
    """The demo site, as a newcomer sees it, with the widget's launcher on screen.
    CSP is bypassed so that axe-core's inline script may run in it."""
    page = new_page(bypass_csp=True, **context_options)
    page.goto(f"{live_server.url}/widget/demo/")
    widget = ChatUI(page)
    expect(widget.launcher).to_be_visible()
    return page, widget


def widget_panel(page):
    return page.get_by_role("dialog", name="Northwind Help")


# --- axe-core, page by page ----------------------------------------------------------------


def test_the_demo_site_passes_axe_with_the_widget_closed_and_open(new_page, live_server, axe):
    page, widget = open_demo(new_page, live_server)
    axe(page, "on the demo site, widget closed")

    widget.launcher.click()
    expect(widget.textbox).to_be_focused()
    expect(page.get_by_text("Hi! I'm the Northwind assistant.")).to_be_visible()
    axe(page, "on the demo site, widget open")


def test_the_demo_help_centre_that_frames_the_full_page_passes_axe(new_page, live_server, axe):
    page = new_page(bypass_csp=True)
    page.goto(f"{live_server.url}/widget/demo/chatbot/")
    chat = ChatUI(page.frame_locator("iframe[title='Northwind Help chat']"))
    expect(chat.textbox).to_be_visible()
    axe(page, "on the demo help centre, /chat framed in it")


def test_the_widget_passes_axe_while_answering_after_an_answer_and_with_an_error(
    new_page, live_server, fake_llm, settings, axe
):
    settings.OPENAI_TIMEOUT = 20.0  # a stalled answer stays stalled while axe looks at it
    settings.CHATBOT_LINK_HOSTS = ["example.com"]  # the reply's link is clickable, so axe sees one
    fake_llm.reset(reply=REPLY, chunk_size=6)
    page, widget = open_demo(new_page, live_server)
    widget.launcher.click()

    widget.send("Which tent is best for two?", replies_after=1)
    expect(widget.replies.get_by_role("link", name="the spec sheet")).to_be_visible()
    axe(page, "after a streamed answer")

    fake_llm.reset(stall_after_chunks=0)
    widget.send("Is it in stock?")
    expect(page.locator(".cb-typing")).to_be_visible()
    fake_llm.wait_for_requests(1)  # stalled at the model, not still on its way (else the 500 below answers it)
    axe(page, "with the typing indicator")

    fake_llm.reset(status=500)  # also ends the stalled answer, which fails for want of an end
    expect(page.get_by_role("alert")).to_be_visible()
    widget.button("Retry").click()
    expect(page.get_by_role("alert")).to_contain_text("couldn't answer")
    expect(widget.button("Retry")).to_be_visible()
    assert len(fake_llm.requests) == 1  # the retry reached the model, and failed again
    axe(page, "with an error and Retry")


def test_the_open_widget_on_a_phone_passes_axe_as_a_modal_dialog(new_page, live_server, axe):
    page, widget = open_demo(new_page, live_server, **PHONE)
    widget.launcher.click()

    expect(widget_panel(page)).to_have_attribute("aria-modal", "true")
    assert widget_panel(page).bounding_box() == {"x": 0, "y": 0, "width": 390, "height": 844}
    widget.send("Hello from a phone", replies_after=1)
    axe(page, "on a 390 px phone, widget open")


def test_the_full_page_passes_axe_with_history_and_earlier_messages_to_load(new_page, live_server, settings, axe):
    settings.CHATBOT_PAGE_SIZE = 4
    settings.CHATBOT_LINK_HOSTS = ["example.com"]
    turns = [("user", "Which tent?"), ("assistant", CITED, {"citations": SOURCES})] * 3
    session_id = in_db_thread(lambda: session_with_messages(turns, source="widget").public_id)
    page = new_page(bypass_csp=True)
    page.goto(f"{live_server.url}/chat?session={session_id}")
    chat = ChatUI(page)

    expect(chat.button("Load earlier messages")).to_be_visible()
    expect(page.get_by_text("Conversation continued from widget")).to_be_visible()
    assert len(chat.transcript()) == 4
    axe(page, "on /chat with history and Load earlier messages")
    page.set_viewport_size(PHONE["viewport"])
    axe(page, "on /chat with history, on a 390 px phone")
    page.set_viewport_size({"width": 1280, "height": 800})

    chat.button("Load earlier messages").click()
    expect(chat.button("Load earlier messages")).to_be_hidden()
    expect(page.get_by_role("list", name="Sources").first.get_by_role("link")).to_have_text("Ridgeline 2P")
    chat.send("One more", replies_after=4)
    axe(page, "on /chat after loading earlier messages and a turn")


def test_the_widget_passes_axe_with_an_answers_sources(new_page, live_server, settings, axe):
    settings.CHATBOT_LINK_HOSTS = ["example.com"]
    turns = [("user", "Which tent?"), ("assistant", CITED, {"citations": SOURCES})]
    session = in_db_thread(lambda: session_with_messages(turns))
    page, widget = open_demo(new_page, live_server)
    show_in_widget(page, session, f"{live_server.url}/widget/demo/")
    widget.launcher.click()

    expect(page.get_by_role("list", name="Sources").get_by_role("link")).to_have_text("Ridgeline 2P")
    axe(page, "with an answer's sources in the widget")


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_the_admin_transcript_and_content_gaps_pass_axe(
    new_page, live_server, django_user_model, settings, color_scheme, axe
):
    settings.CHATBOT_LINK_HOSTS = ["example.com"]
    turns = [
        ("system", "Be brief."),
        ("user", "Do you ship to Norway?"),
        ("assistant", "Yes, in **5 days** [1][2].", {"citations": SOURCES}),
        ("user", "And to Svalbard?"),
        ("assistant", "I couldn't find that on this site.", {"answer_status": "no_answer"}),
    ]
    session_pk = in_db_thread(lambda: session_with_messages(turns).pk)
    in_db_thread(lambda: staff_who_reads_transcripts(django_user_model))
    page = new_page(color_scheme=color_scheme, bypass_csp=True)  # the admin's CSP refuses axe's inline script

    log_in_to_admin(page, live_server.url, f"/admin/conversations/session/{session_pk}/change/")
    expect(page.get_by_role("region", name="Transcript")).to_contain_text("Do you ship to Norway?")
    expect(page.get_by_role("list", name="Sources of message 3").get_by_role("link")).to_have_text("Ridgeline 2P")
    axe(page, f"on the admin transcript with sources ({color_scheme})")

    page.goto(f"{live_server.url}/admin/conversations/session/content-gaps/")
    expect(page.get_by_role("table", name="Content gaps")).to_contain_text("And to Svalbard?")
    axe(page, f"on the admin's content gaps ({color_scheme})")


def test_the_widget_passes_axe_with_a_person_who_joined_and_replied(new_page, live_server, django_user_model, axe):
    session = in_db_thread(lambda: session_with_messages([("user", "Can a person help?"), ("assistant", "Sure.")]))
    staff = in_db_thread(lambda: staff_who_answers(django_user_model))
    page, widget = open_demo(new_page, live_server)
    show_in_widget(page, session, f"{live_server.url}/widget/demo/")
    widget.launcher.click()
    expect(widget.replies).to_have_count(1)
    expect(widget.button("Talk to a person")).to_be_visible()

    in_db_thread(lambda: staffing.take_over(session=session, staff=staff))
    expect(page.get_by_text("Rita Responder joined the conversation")).to_be_visible()
    in_db_thread(lambda: staffing.reply_as_staff(session=session, staff=staff, text="Hello, Rita here."))
    expect(page.locator(".cb-by")).to_have_text("Rita Responder")
    axe(page, "in the widget, with a person's notice and reply")


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_the_admin_transcript_with_the_takeover_controls_and_the_waiting_list_pass_axe(
    new_page, live_server, django_user_model, color_scheme, axe
):
    session = in_db_thread(lambda: session_with_messages([("user", "Can a person help?"), ("assistant", "Sure.")]))
    in_db_thread(lambda: staffing.ask_for_person(session=session))
    in_db_thread(lambda: staff_who_answers(django_user_model))
    page = new_page(color_scheme=color_scheme, bypass_csp=True)  # the admin's CSP refuses axe's inline script

    log_in_to_admin(page, live_server.url, "/admin/conversations/session/", username="responder")
    expect(page.get_by_text("1 session waiting for a person")).to_be_visible()
    axe(page, f"on the sessions list with one waiting ({color_scheme})")

    page.goto(f"{live_server.url}/admin/conversations/session/{session.pk}/change/")
    page.get_by_role("button", name="Take over").click()
    expect(page.get_by_text("Handled by Rita Responder")).to_be_visible()
    page.get_by_label("Reply as Rita Responder").fill("Hello, Rita here.")
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_role("region", name="Transcript")).to_contain_text("Hello, Rita here.")
    axe(page, f"on the admin transcript with the takeover controls ({color_scheme})")


# --- The panel as a dialog, with the keyboard ----------------------------------------------


def test_on_a_phone_the_keyboard_stays_inside_the_full_screen_panel(new_page, live_server):
    page, widget = open_demo(new_page, live_server, **PHONE)
    tab_to(page, "Open chat", limit=20)
    page.keyboard.press("Enter")
    assert focused_name(page) == "Message"
    expect(widget_panel(page)).to_have_attribute("aria-modal", "true")

    every_control = {"New conversation", "Talk to a person", "Open full page", "Close chat", "Message", "Send"}
    for key in ("Tab", "Shift+Tab"):
        reached = set()
        for _ in range(2 * len(every_control) + 1):
            page.keyboard.press(key)
            assert page.evaluate(FOCUS_IN_PANEL), f"{key} took the focus out of the panel, to {focused_name(page)!r}"
            reached.add(focused_name(page))
        assert reached == every_control, key

    tab_to(page, "Close chat")
    page.keyboard.press("Enter")
    expect(widget.textbox).to_be_hidden()
    assert focused_name(page) == "Open chat"
    page.keyboard.press("Enter")
    assert focused_name(page) == "Message"
    page.keyboard.press("Escape")
    expect(widget.textbox).to_be_hidden()
    assert focused_name(page) == "Open chat"


def test_on_a_wide_screen_the_panel_is_a_dialog_that_leaves_the_page_usable(new_page, live_server):
    page, widget = open_demo(new_page, live_server)
    widget.launcher.click()
    expect(widget_panel(page)).to_have_attribute("aria-modal", "false")

    tab_to(page, "Send")
    page.keyboard.press("Tab")
    assert focused_name(page) == "Open chat"  # the launcher, outside the panel
    assert not page.evaluate(FOCUS_IN_PANEL)

    page.set_viewport_size({"width": 390, "height": 700})  # now it covers the page
    expect(widget_panel(page)).to_have_attribute("aria-modal", "true")


def test_closing_the_panel_from_script_returns_the_focus_to_the_launcher(new_page, live_server):
    page, widget = open_demo(new_page, live_server)
    widget.launcher.click()
    expect(widget.textbox).to_be_focused()

    page.evaluate("Chatbot.close()")
    expect(widget.textbox).to_be_hidden()
    assert focused_name(page) == "Open chat"


# --- Motion, colours, zoom and narrow screens ----------------------------------------------


def test_with_reduced_motion_nothing_moves(new_page, live_server, fake_llm, settings):
    settings.OPENAI_TIMEOUT = 20.0
    dots = ".cb-typing .cb-bubble > i"

    # Without the preference the typing indicator moves: the check below can see motion.
    fake_llm.reset(stall_after_chunks=0)
    page, widget = open_demo(new_page, live_server)
    widget.launcher.click()
    widget.send("Are you there?")
    expect(page.locator(dots).first).to_be_visible()
    assert "cb-blink" in page.evaluate(RUNNING_ANIMATIONS)

    fake_llm.reset(stall_after_chunks=0)
    still, widget = open_demo(new_page, live_server)
    still.emulate_media(reduced_motion="reduce")
    widget.launcher.click()
    widget.send("Are you there?")
    expect(still.locator(dots).first).to_be_visible()
    assert still.evaluate(RUNNING_ANIMATIONS) == []
    assert still.locator(dots).evaluate_all("ns => ns.map(n => getComputedStyle(n).animationName)") == ["none"] * 3
    assert still.locator(".cb-scroll").evaluate("n => getComputedStyle(n).scrollBehavior") == "auto"
    fake_llm.reset()


def test_in_forced_colours_every_control_and_bubble_keeps_a_visible_border(new_page, live_server, fake_llm):
    fake_llm.reset(reply=REPLY)
    page, widget = open_demo(new_page, live_server)
    page.emulate_media(forced_colors="active")
    widget.launcher.click()
    widget.send("Which tent?", replies_after=1)

    outlined = [".cb-launcher", ".cb-icon", ".cb-input", ".cb-send", ".cb-msg-user .cb-bubble"]
    outlined += [".cb-msg-assistant .cb-bubble"]
    borders = {
        selector: page.locator(selector).first.evaluate(
            "n => { const s = getComputedStyle(n); return [s.borderTopStyle, s.borderTopWidth]; }"
        )
        for selector in outlined
    }
    assert {s: b for s, b in borders.items() if b[0] == "none" or b[1] == "0px"} == {}


WIDE_TEXT = "A-very-long-word-with-no-place-to-break-" * 3 + " https://example.com/" + "x" * 80


@pytest.mark.parametrize(
    "screen",
    [
        pytest.param({"viewport": {"width": 320, "height": 640}}, id="320px"),
        pytest.param({"viewport": {"width": 640, "height": 400}, "device_scale_factor": 2}, id="1280px-at-200%"),
    ],
)
def test_narrow_and_zoomed_screens_scroll_only_vertically_with_every_control_in_view(new_page, live_server, screen):
    page, widget = open_demo(new_page, live_server, **screen)
    assert_no_horizontal_scroll(page, "the demo site")

    widget.launcher.click()
    widget.send(WIDE_TEXT, replies_after=1)
    assert_no_horizontal_scroll(page, "the demo site, widget open")
    scroll_to_the_end(widget_panel(page))  # where the answer's feedback buttons are
    assert_in_view(page, widget_panel(page).locator("button:visible, textarea"))

    full = widget.open_full_page()
    chat = ChatUI(full)
    expect(chat.textbox).to_be_visible()
    assert_no_horizontal_scroll(full, "/chat")
    scroll_to_the_end(full)
    assert_in_view(full, full.locator("button:visible, textarea"))


def scroll_to_the_end(where) -> None:
    """Scroll the transcript to its newest message, as a visitor reads a new answer."""
    where.locator(".cb-scroll").evaluate("n => n.scrollTo(0, n.scrollHeight)")


# Elements that scroll or clip sideways, and the page itself. Not code blocks, which
# scroll by design, nor text hidden for all but screen readers (1 px wide, clipped).
SIDEWAYS = """() => {
  const all = (root) => [...root.querySelectorAll("*")].flatMap((n) => [n, ...(n.shadowRoot ? all(n.shadowRoot) : [])]);
  const clipping = all(document)
    .filter((n) => getComputedStyle(n).overflowX !== "visible" && !n.matches("pre") && n.clientWidth > 1);
  return [document.scrollingElement, ...clipping]
    .filter((n) => n.scrollWidth > n.clientWidth + 1)
    .map((n) => n.tagName.toLowerCase() + (n.className ? "." + n.className : ""));
}"""


def assert_no_horizontal_scroll(page, where: str) -> None:
    assert page.evaluate(SIDEWAYS) == [], f"{where} scrolls or clips sideways"


def assert_in_view(page, controls) -> None:
    """Every control whole, on screen, and at least 24 px square (WCAG 2.5.8)."""
    width, height = page.viewport_size["width"], page.viewport_size["height"]
    boxes = {c.evaluate("n => n.getAttribute('aria-label') || n.textContent"): c.bounding_box() for c in controls.all()}
    assert boxes, "no controls found"
    clipped = {
        name: box
        for name, box in boxes.items()
        if not box
        or min(box["width"], box["height"]) < 24
        or min(box["x"], box["y"]) < 0
        or box["x"] + box["width"] > width
        or box["y"] + box["height"] > height
    }
    assert clipped == {}, f"controls cut off or out of view on a {width}x{height} screen"
