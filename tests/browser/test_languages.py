"""The widget and the full page in the visitor's language, in Chromium: German, Arabic
(right to left), the site's data-lang over the browser's, English for a string a
catalog lacks, no strings downloaded for English, and the minified widget as served."""

from __future__ import annotations

import json
import mimetypes

import pytest
from playwright.sync_api import expect

from tests.browser.support import ChatUI, customer_page, served_widget_files, widget_tag

pytestmark = pytest.mark.browser


def chat_requests(page) -> list[dict]:
    """The bodies of the chat turns the page sends, as they are sent."""
    sent: list[dict] = []
    page.on("request", lambda r: r.url.endswith("/api/chat") and r.method == "POST" and sent.append(r.post_data_json))
    return sent


def widget_on(page, customer_site, live_server, path: str, **data: str) -> None:
    page.goto(customer_site.serve(path, customer_page(widget_tag(live_server.url, **data))))


def test_the_widget_speaks_german_to_a_german_browser(new_page, live_server, customer_site):
    page = new_page(locale="de-DE")
    sent = chat_requests(page)
    widget_on(page, customer_site, live_server, "/de")

    page.get_by_role("button", name="Chat öffnen", exact=True).click()

    expect(page.get_by_role("dialog", name="Chatten Sie mit uns")).to_be_visible()
    textbox = page.get_by_role("textbox", name="Nachricht", exact=True)
    expect(textbox).to_have_attribute("placeholder", "Nachricht eingeben…")
    expect(page.get_by_text("Hallo! Wie kann ich Ihnen heute helfen?")).to_be_visible()
    expect(page.get_by_role("button", name="Neues Gespräch")).to_be_visible()
    assert page.locator(".cb-root").get_attribute("lang") == "de"

    textbox.fill("Wie lange dauert der Versand?")
    page.get_by_role("button", name="Senden", exact=True).click()
    ChatUI(page).wait_for_replies(1)
    assert page.locator(".cb-msg-user .cb-sr").first.text_content() == "Sie:"
    assert sent[0]["language"] == "de"


def test_the_widget_in_arabic_is_laid_out_right_to_left(new_page, live_server, axe):
    page = new_page(locale="ar", bypass_csp=True)  # bypass_csp: axe-core is injected inline
    sent = chat_requests(page)
    page.goto(f"{live_server.url}/widget/demo/")  # a site whose own page passes axe

    page.get_by_role("button", name="فتح الدردشة", exact=True).click()

    root = page.locator(".cb-root")
    assert (root.get_attribute("lang"), root.get_attribute("dir")) == ("ar", "rtl")
    assert page.locator(".cb-list").evaluate("n => getComputedStyle(n).direction") == "rtl"
    expect(page.get_by_role("textbox", name="الرسالة", exact=True)).to_have_attribute("placeholder", "اكتب رسالتك…")
    # Mirrored: the title starts at the right, the close button ends the row at the left.
    title = page.locator(".cb-title").bounding_box()
    close = page.get_by_role("button", name="إغلاق الدردشة").bounding_box()
    assert close["x"] + close["width"] <= title["x"]
    axe(page, "the widget in Arabic")

    page.get_by_role("textbox", name="الرسالة", exact=True).fill("مرحبا")
    page.get_by_role("button", name="إرسال", exact=True).click()
    ChatUI(page).wait_for_replies(1)
    assert sent[0]["language"] == "ar"


def test_the_sites_data_lang_beats_the_browsers_language(new_page, live_server, customer_site):
    page = new_page(locale="de-DE")
    widget_on(page, customer_site, live_server, "/fr", lang="fr")

    page.get_by_role("button", name="Ouvrir la discussion", exact=True).click()

    expect(page.get_by_role("textbox", name="Message", exact=True)).to_have_attribute(
        "placeholder", "Écrivez votre message…"
    )
    assert page.locator(".cb-root").get_attribute("lang") == "fr"


def test_a_string_missing_from_the_catalog_is_shown_in_english(new_page, live_server, customer_site):
    page = new_page(locale="de-DE")

    def without_send(route):
        response = route.fetch()
        config = response.json()
        del config["catalog"]["Send"]
        route.fulfill(response=response, body=json.dumps(config))

    page.route("**/api/widget/config?*", without_send)
    widget_on(page, customer_site, live_server, "/missing")

    page.get_by_role("button", name="Chat öffnen", exact=True).click()

    expect(page.get_by_role("button", name="Send", exact=True)).to_be_visible()
    expect(page.get_by_role("textbox", name="Nachricht", exact=True)).to_be_visible()


def widget_loaded(page, url: str, launcher: str) -> tuple[list[str], dict]:
    """Load ``url``: the requests made until the widget's launcher shows, and the config
    the widget received."""
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    with page.expect_response(lambda response: "/api/widget/config" in response.url) as config:
        page.goto(url)
    page.get_by_role("button", name=launcher, exact=True).wait_for()
    return urls, config.value.json()


def test_english_downloads_no_strings_and_another_language_no_extra_request(new_page, live_server, customer_site):
    url = customer_site.serve("/count", customer_page(widget_tag(live_server.url)))
    english_urls, english_config = widget_loaded(new_page(locale="en-US"), url, "Open chat")
    german_urls, german_config = widget_loaded(new_page(locale="de-DE"), url, "Chat öffnen")

    assert english_config["catalog"] == {}
    assert german_config["catalog"]["Open chat"] == "Chat öffnen"

    def paths(urls):  # after the host page itself
        return sorted(url.split("?")[0].removeprefix(live_server.url) for url in urls[1:])

    assert (
        paths(english_urls)
        == paths(german_urls)
        == sorted(
            [
                "/static/widget/widget.js",
                "/api/widget/config",
                "/static/widget/conversation.css",
                "/static/widget/widget.css",
                "/static/widget/conversation.js",
            ]
        )
    )


def test_the_full_page_in_german(new_page, live_server):
    page = new_page(locale="de-DE")
    sent = chat_requests(page)
    page.goto(f"{live_server.url}/chat")
    chat = ChatUI(page)

    assert page.locator("html").get_attribute("lang") == "de"
    expect(page.get_by_role("heading", name="Chatten Sie mit uns")).to_be_visible()
    expect(page.get_by_text("Eingabetaste sendet · Umschalt+Eingabe fügt eine Zeile ein")).to_be_visible()

    page.get_by_role("textbox", name="Nachricht", exact=True).fill("Hallo")
    page.get_by_role("button", name="Senden", exact=True).click()
    chat.wait_for_replies(1)
    # Drawn by conversation.js from the catalog the page carries.
    assert page.locator(".cb-msg-user .cb-sr").first.text_content() == "Sie:"
    assert page.locator(chat.REPLY + " .cb-sr").first.text_content() == "Assistent:"
    assert sent[0]["language"] == "de"


def test_the_full_page_in_arabic_is_right_to_left(new_page, live_server, axe):
    page = new_page(locale="en-US", bypass_csp=True)  # bypass_csp: axe-core is injected inline
    sent = chat_requests(page)
    page.goto(f"{live_server.url}/chat?lang=ar")
    chat = ChatUI(page)

    html = page.locator("html")
    assert (html.get_attribute("lang"), html.get_attribute("dir")) == ("ar", "rtl")
    assert page.locator(".cb-list").evaluate("n => getComputedStyle(n).direction") == "rtl"
    expect(page.get_by_role("button", name="محادثة جديدة")).to_be_visible()
    axe(page, "the full page in Arabic")

    page.get_by_role("textbox", name="الرسالة", exact=True).fill("مرحبا")
    page.get_by_role("button", name="إرسال", exact=True).click()
    chat.wait_for_replies(1)
    assert page.locator(".cb-msg-user .cb-sr").first.text_content() == "أنت:"
    # The visitor's own messages sit at the end of the line: the left, in Arabic.
    user = page.locator(".cb-msg-user .cb-bubble").first.bounding_box()
    reply = page.locator(chat.REPLY + " .cb-bubble").first.bounding_box()
    assert user["x"] + user["width"] < reply["x"] + reply["width"]
    assert sent[0]["language"] == "ar"


def test_the_minified_widget_as_served_works(new_page, live_server, customer_site, tmp_path):
    """What production serves (minified by the staticfiles storage), in place of the
    sources the development server sends, still runs a conversation in German."""
    served = served_widget_files(tmp_path)
    page = new_page(locale="de-DE")

    def minified(route):
        name = route.request.url.split("?")[0].rsplit("/", 1)[1]
        route.fulfill(body=(served / name).read_bytes(), content_type=mimetypes.guess_type(name)[0])

    for name in ("widget.js", "conversation.js", "conversation.css", "widget.css"):
        page.route(f"{live_server.url}/static/widget/{name}", minified)
    widget_on(page, customer_site, live_server, "/minified")
    widget = ChatUI(page)

    page.get_by_role("button", name="Chat öffnen", exact=True).click()
    page.get_by_role("textbox", name="Nachricht", exact=True).fill("Hallo")
    page.get_by_role("button", name="Senden", exact=True).click()

    widget.wait_for_replies(1)
    assert "You said: Hallo" in widget.transcript()[-1][1]


def test_the_framed_full_page_speaks_the_browsers_language_and_names_its_frame_so(new_page, live_server, customer_site):
    tag = f'<script src="{live_server.url}/static/widget/frame.js" data-api-base="{live_server.url}" defer></script>'
    page = new_page(locale="de-DE")

    page.goto(customer_site.serve("/framed", customer_page(tag)))

    expect(page.locator("iframe.chatbot-frame")).to_have_attribute("title", "Chatten Sie mit uns")
    frame = page.frame_locator("iframe.chatbot-frame")
    expect(frame.get_by_role("button", name="Neues Gespräch")).to_be_visible()
