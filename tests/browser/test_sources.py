"""An answer's sources, as visitors see them in the widget and on the full page: each
[n] the answer cites links to entry n of a "Sources" list under it (title, site,
snippet); a number with no citation stays text; titles link only to allowlisted hosts;
everything in a citation is shown as text, never run."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from knowledge.index import store_document
from knowledge.models import Source, SourceKind
from tests.browser.support import (
    ChatUI,
    customer_page,
    focused_name,
    in_db_thread,
    session_with_messages,
    show_in_widget,
    tab_to,
    widget_tag,
)

pytestmark = pytest.mark.browser

ANSWER = "The **Trail 2** tent [1] sleeps two; the footprint is sold apart [2]. Ask us about [7]."
XSS = "<img src=x onerror=window.pwned=1>"
# Elements a citation would create if its text were taken for HTML.
DANGEROUS = "img, script:not([src]), [onerror]"


def citations(site: str, stranger: str) -> list[dict]:
    """[1] on the customer's own site (allowlisted), [2] on a site that is not, [3] an
    uploaded file with no URL. The answer cites [7] too, which no citation holds."""
    return [
        {"id": 1, "title": "Trail 2 tent", "url": f"{site}/tents/trail-2", "heading": "", "snippet": "Sleeps two."},
        {"id": 2, "title": "Footprints", "url": f"{stranger}/footprints", "heading": "", "snippet": "Sold apart."},
        {"id": 3, "title": "Care guide.pdf", "url": None, "heading": "Washing", "snippet": "Rinse in cold water."},
    ]


def seeded(metadata: dict, *, source: str = "widget", later: tuple[tuple[str, str], ...] = ()):
    """A session whose answer (ANSWER) has this metadata, and then the ``later`` turns."""
    turns = [("user", "Which tent is best for two people?"), ("assistant", ANSWER, metadata), *later]
    return in_db_thread(lambda: session_with_messages(turns, source=source))


def reply_of(page):
    return ChatUI(page).replies.last


def assert_sources_shown(reply, site: str, stranger: str) -> None:
    """The answer's markers and its "Sources" list, as the specification of what shows."""
    sources = reply.get_by_role("list", name="Sources")
    expect(sources.get_by_role("listitem")).to_have_count(3)
    entries = sources.get_by_role("listitem")
    # The title, the site (its host), the snippet.
    expect(entries.nth(0)).to_have_text(f"Trail 2 tent {site.removeprefix('http://')}Sleeps two.")
    expect(entries.nth(1)).to_contain_text("Footprints")
    expect(entries.nth(1)).to_contain_text("Sold apart.")
    expect(entries.nth(2)).to_contain_text("Care guide.pdf")

    title = sources.get_by_role("link", name="Trail 2 tent")
    expect(title).to_have_attribute("href", f"{site}/tents/trail-2")
    expect(title).to_have_attribute("rel", "noopener noreferrer")
    expect(title).to_have_attribute("target", "_blank")
    # Not allowlisted, or no URL at all: the title is text, the site still named.
    expect(sources.get_by_role("link")).to_have_count(1)
    expect(entries.nth(1)).to_contain_text(stranger.removeprefix("http://"))

    markers = reply.locator(".cb-bubble > p").get_by_role("link")
    expect(markers).to_have_text(["[1]", "[2]"])
    expect(reply.locator(".cb-bubble > p")).to_contain_text("Ask us about [7].")
    expect(reply.locator("strong")).to_have_text("Trail 2")  # the Markdown is still rendered


def test_an_answer_from_history_shows_its_sources_in_the_widget(new_page, live_server, customer_site, stranger_site):
    site, stranger = customer_site.origin, stranger_site.origin
    session = seeded({"answer_status": "answered", "citations": citations(site, stranger)})
    page = new_page()
    show_in_widget(page, session, customer_site.serve("/history", customer_page(widget_tag(live_server.url))))
    ChatUI(page).launcher.click()

    assert_sources_shown(reply_of(page), site, stranger)


def test_a_marker_takes_the_keyboard_to_its_source_and_the_sources_follow_in_order(
    new_page, live_server, customer_site, stranger_site
):
    session = seeded({"citations": citations(customer_site.origin, stranger_site.origin)})
    page = new_page()
    url = customer_site.serve("/keys", customer_page(widget_tag(live_server.url)))
    show_in_widget(page, session, url)
    ChatUI(page).launcher.click()
    expect(reply_of(page).get_by_role("list", name="Sources")).to_be_visible()

    tab_to(page, "[1]", key="Shift+Tab", limit=20)
    order = []
    for _ in range(5):
        page.keyboard.press("Tab")
        order.append(focused_name(page))
    assert order == ["[2]", "Trail 2 tent", "Helpful", "Not helpful", "Message"]  # the answer's feedback, then on

    tab_to(page, "[2]", key="Shift+Tab")
    page.keyboard.press("Enter")
    assert focused_name(page).startswith("Footprints")  # the entry itself, read out whole
    assert page.url == url  # the host page's address (its #fragment) is left alone


def test_the_full_page_shows_the_sources_of_earlier_messages_it_loads(
    new_page, live_server, settings, customer_site, stranger_site
):
    settings.CHATBOT_PAGE_SIZE = 2
    site, stranger = customer_site.origin, stranger_site.origin
    later = (("user", "And a bigger one?"), ("assistant", "The Trail 4."))
    session = seeded({"citations": citations(site, stranger)}, source="page", later=later)
    page = new_page()
    page.goto(f"{live_server.url}/chat?session={session.public_id}")
    chat = ChatUI(page)

    chat.button("Load earlier messages").click()
    expect(chat.replies).to_have_count(2)
    assert_sources_shown(chat.replies.first, site, stranger)


def test_the_full_page_renders_the_sources_of_its_transcript(new_page, live_server, customer_site, stranger_site):
    site, stranger = customer_site.origin, stranger_site.origin
    session = seeded({"citations": citations(site, stranger)}, source="page")
    page = new_page()
    page.goto(f"{live_server.url}/chat?session={session.public_id}")

    assert_sources_shown(reply_of(page), site, stranger)


def test_markup_in_a_citations_title_and_snippet_is_shown_as_text(
    new_page, watch, live_server, customer_site, settings
):
    settings.CHATBOT_PAGE_SIZE = 2
    hostile = [
        {"id": 1, "title": XSS, "url": f"{customer_site.origin}/x", "heading": XSS, "snippet": XSS},
        {"id": 2, "title": XSS, "url": None, "heading": "", "snippet": "<script>window.pwned=2</script>"},
    ]
    session = seeded({"citations": hostile}, later=(("user", "Thanks"), ("assistant", "You're welcome.")))
    page = new_page()
    show_in_widget(page, session, customer_site.serve("/hostile", customer_page(widget_tag(live_server.url))))
    ChatUI(page).launcher.click()
    ChatUI(page).button("Load earlier messages").click()  # pages of two: the answer is in the earlier one

    sources = page.get_by_role("list", name="Sources")
    expect(sources.get_by_role("link", name=XSS)).to_have_count(1)
    expect(sources.get_by_role("listitem").nth(0)).to_contain_text(f"{XSS} 127.0.0.1")
    expect(sources.get_by_role("listitem").nth(1)).to_contain_text("<script>window.pwned=2</script>")
    assert page.locator(f".cb-list :is({DANGEROUS})").count() == 0

    full = new_page()
    full.goto(f"{live_server.url}/chat?session={session.public_id}")
    ChatUI(full).button("Load earlier messages").click()
    expect(full.get_by_role("list", name="Sources")).to_contain_text(XSS)
    assert full.locator(f".cb-list :is({DANGEROUS})").count() == 0

    page.wait_for_timeout(200)  # a handler that slipped through would have fired by now
    assert page.evaluate("() => window.pwned") is None
    assert full.evaluate("() => window.pwned") is None
    assert watch.dialogs == []


def store_tent_pages(site: str) -> None:
    """Two pages of the customer's site in the knowledge base. ORM code."""
    source = Source.objects.create(kind=SourceKind.SITEMAP, location=f"{site}/sitemap.xml")
    store_document(
        source=source,
        url=f"{site}/tents/trail-2",
        title="Trail 2 tent",
        markdown="# Trail 2 tent\n\nThe Trail 2 tent sleeps two people and weighs 1.6 kg.",
    )
    store_document(
        source=source,
        url=f"{site}/tents/footprint",
        title="Trail 2 footprint",
        markdown="# Footprint\n\nThe footprint for the Trail 2 tent is sold apart.",
    )


def test_a_live_answer_shows_the_sources_it_cites_in_the_widget_and_the_page(
    new_page, live_server, customer_site, fake_llm
):
    site = customer_site.origin
    in_db_thread(lambda: store_tent_pages(site))
    fake_llm.reset(reply="The Trail 2 tent [1] sleeps two people. Ask us about [7].", chunk_size=5)
    page = new_page()
    page.goto(customer_site.serve("/live", customer_page(widget_tag(live_server.url))))
    widget = ChatUI(page)
    widget.launcher.click()

    widget.send("Which tent sleeps two people?", replies_after=1)
    reply = reply_of(page)
    sources = reply.get_by_role("list", name="Sources")
    expect(sources.get_by_role("link", name="Trail 2 tent")).to_have_attribute("href", f"{site}/tents/trail-2")
    expect(reply.locator(".cb-bubble > p").get_by_role("link")).to_have_text(["[1]"])
    expect(reply.locator(".cb-bubble > p")).to_contain_text("Ask us about [7].")

    full = ChatUI(new_page())
    full.page.goto(f"{live_server.url}/chat")
    full.send("Which tent sleeps two people?", replies_after=1)
    expect(reply_of(full.page).get_by_role("list", name="Sources")).to_contain_text("Trail 2 tent")


def test_the_offline_answer_shows_its_sources_the_same_way(new_page, live_server, customer_site):
    site = customer_site.origin
    in_db_thread(lambda: store_tent_pages(site))  # no API key: the offline responder quotes the pages
    page = new_page()
    page.goto(customer_site.serve("/offline", customer_page(widget_tag(live_server.url))))
    widget = ChatUI(page)
    widget.launcher.click()

    widget.send("Which tent sleeps two people?", replies_after=1)
    reply = reply_of(page)
    sources = reply.get_by_role("list", name="Sources")
    expect(sources.get_by_role("link", name="Trail 2 tent")).to_have_attribute("href", f"{site}/tents/trail-2")
    markers = reply.locator(".cb-bubble > :not(.cb-sources)").get_by_role("link", name="[1]")
    expect(markers.first).to_be_visible()
