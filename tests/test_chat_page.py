"""/chat, the full page, as the server renders it: before any script runs."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.core.checks import run_checks
from django.db import transaction
from django.utils import timezone

from conversations.models import MessageDraft, Session
from widget.markdown import render_markdown

pytestmark = pytest.mark.django_db


def session_with(turns: list[tuple[str, str]], *, source: str = "widget", **fields) -> Session:
    session = Session.objects.create(source=source, **fields)
    with transaction.atomic():
        session.append_messages([MessageDraft(role=role, content=content, channel=source) for role, content in turns])
    return session


class Page(HTMLParser):
    """The parts of the page the tests look at: scripts, messages, elements by class."""

    def __init__(self, html: str):
        super().__init__()
        self.scripts: list[dict] = []
        self.inline_handlers: list[str] = []
        self.messages: list[dict] = []
        self.classes: list[str] = []
        self.root: dict = {}
        self._in_bubble = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        self.classes += classes
        self.inline_handlers += [name for name, _ in attrs if name.startswith("on")]
        if tag == "script":
            self.scripts.append(attributes)
        if attributes.get("id") == "chatbot":
            self.root = attributes
        if "cb-msg" in classes and "cb-greeting" not in classes:
            self.messages.append(
                {"role": classes[1].removeprefix("cb-msg-"), "seq": attributes.get("data-seq"), "text": ""}
            )
        if "cb-bubble" in classes and self.messages:
            self._in_bubble = 1
        elif self._in_bubble and tag not in ("br",):
            self._in_bubble += 1

    def handle_endtag(self, tag):
        if self._in_bubble:
            self._in_bubble -= 1

    def handle_data(self, data):
        if self._in_bubble:
            self.messages[-1]["text"] += data


def get_page(client, url: str) -> tuple[object, Page]:
    response = client.get(url)
    assert response.status_code == 200
    return response, Page(response.content.decode())


def test_it_renders_the_earlier_messages_of_a_widget_session_with_the_notice(client):
    session = session_with([("user", "Do you ship to Norway?"), ("assistant", "Yes, in **3 to 5 days**.")])

    response, page = get_page(client, f"/chat?session={session.public_id}")

    assert [(m["role"], m["seq"], m["text"]) for m in page.messages] == [
        ("user", "1", "Do you ship to Norway?"),
        ("assistant", "2", "Yes, in 3 to 5 days."),
    ]
    assert b"<strong>3 to 5 days</strong>" in response.content
    assert b"Conversation continued from widget" in response.content
    assert page.root["data-session-id"] == session.public_id
    assert "cb-notice-warn" not in page.classes


def test_it_does_not_claim_a_page_session_came_from_the_widget(client):
    session = session_with([("user", "Hi"), ("assistant", "Hello")], source="page")

    response, page = get_page(client, f"/chat?session={session.public_id}")

    assert len(page.messages) == 2
    assert b"Conversation continued from widget" not in response.content


def test_it_starts_a_new_conversation_without_a_session(client):
    response, page = get_page(client, "/chat")

    assert page.messages == []
    assert page.root["data-session-id"] == ""
    assert "cb-greeting" in page.classes
    assert b"Conversation continued" not in response.content
    assert Session.objects.count() == 0  # sessions begin with the first message, not a page view


@pytest.mark.parametrize("kind", ["unknown", "expired", "malformed"])
def test_it_answers_a_missing_session_with_a_note_and_a_fresh_conversation(client, kind):
    expired = session_with([("user", "old")])
    Session.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    session_id = {
        "unknown": "A" * 32,
        "expired": expired.public_id,
        "malformed": "<script>alert(1)</script>",
    }[kind]

    response, page = get_page(client, f"/chat?session={session_id}")

    assert b"We couldn't find that conversation" in response.content
    assert page.messages == []
    assert page.root["data-session-id"] == ""
    assert page.root["data-not-found"] == "1"
    assert b"<script>alert" not in response.content


def test_it_renders_the_latest_page_of_a_long_session_with_a_way_to_earlier_ones(client, settings):
    settings.CHATBOT_PAGE_SIZE = 50
    session = session_with([("user" if n % 2 else "assistant", f"message {n}") for n in range(1, 121)])

    response, page = get_page(client, f"/chat?session={session.public_id}")

    assert [m["seq"] for m in page.messages] == [str(seq) for seq in range(71, 121)]
    assert page.root["data-next-before"] == "71"
    assert re.search(rb'<button type="button" class="cb-earlier">', response.content)


def test_its_queries_do_not_grow_with_the_replies_it_renders(client, django_assert_num_queries):
    # The hosts links may go to include the knowledge base's sites, a query: read once.
    short = session_with([("user", "Hi"), ("assistant", "Hello")])
    long = session_with([(role, f"{role} {n}") for n in range(20) for role in ("user", "assistant")])
    with django_assert_num_queries(3):
        client.get(f"/chat?session={short.public_id}")

    with django_assert_num_queries(3):
        client.get(f"/chat?session={long.public_id}")


def test_it_shows_a_short_session_without_the_earlier_button(client):
    session = session_with([("user", "Hi"), ("assistant", "Hello")])

    response, page = get_page(client, f"/chat?session={session.public_id}")

    assert page.root["data-next-before"] == ""
    assert re.search(rb'class="cb-earlier" hidden', response.content)


def test_it_shows_text_from_visitors_and_the_model_as_text(client):
    payload = '<img src=x onerror=alert(1)> [click](javascript:alert(1)) <a href="javascript:alert(2)">x</a>'
    session = session_with([("user", payload), ("assistant", payload)])

    response, page = get_page(client, f"/chat?session={session.public_id}")

    html = response.content.decode()
    assert "<img" not in html
    assert "javascript:alert" in html  # shown, as text
    assert 'href="javascript' not in html
    assert page.inline_handlers == []
    assert [m["text"] for m in page.messages] == [payload, payload]


def test_it_shows_only_sessions_the_page_can_continue(client, django_user_model):
    # The page talks to the API without cookies, like the widget, so a signed-in
    # member's own session is as unknown to it as to anyone else.
    member = django_user_model.objects.create_user("member", password="pw")
    session = session_with([("user", "mine")], owner=member)
    client.force_login(member)

    response, page = get_page(client, f"/chat?session={session.public_id}")

    assert page.messages == []
    assert page.root["data-not-found"] == "1"


def test_it_sends_headers_that_protect_the_session_id_and_allow_only_listed_framers(client, settings):
    settings.CHATBOT_ALLOWED_ORIGINS = ["https://www.example.com", "https://shop.example.com"]

    response = client.get("/chat?session=whatever")

    csp = dict(directive.strip().split(" ", 1) for directive in response["Content-Security-Policy"].split(";"))
    assert csp["script-src"] == "'self'"
    assert csp["default-src"] == "'none'"
    assert csp["frame-ancestors"] == "'self' https://www.example.com https://shop.example.com"
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert response["Referrer-Policy"] == "no-referrer"
    assert "X-Frame-Options" not in response  # frame-ancestors decides


def test_it_lets_only_its_own_origin_frame_the_page_when_no_origin_is_listed(client, settings):
    settings.CHATBOT_ALLOWED_ORIGINS = []

    response = client.get("/chat")

    assert "frame-ancestors 'self'" in response["Content-Security-Policy"]
    assert response["Content-Security-Policy"].endswith("frame-ancestors 'self'")


def test_it_runs_no_inline_script(client):
    session = session_with([("user", "Hi"), ("assistant", "Hello")])

    _, page = get_page(client, f"/chat?session={session.public_id}")

    # JSON data blocks (the catalog, citations, feedback) are data: a browser never runs them.
    running = [script for script in page.scripts if script.get("type") != "application/json"]
    assert running and all(script.get("src") for script in running)
    assert page.inline_handlers == []


def test_it_answers_head_requests(client):
    assert client.head("/chat").status_code == 200


def test_the_demo_embeds_the_widget_with_one_tag_and_may_not_be_framed(client):
    response = client.get("/widget/demo/")

    assert response.status_code == 200
    html = response.content.decode()
    tag = re.search(r'<script src="http://testserver/static/widget/widget\.js"[^>]*></script>', html)
    assert tag and 'data-api-base="http://testserver"' in tag.group(0) and " defer" in tag.group(0)
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert all(script.get("src") for script in Page(html).scripts)


def test_the_demo_full_page_frames_chat_with_the_snippet(client):
    response = client.get("/widget/demo/chatbot/")

    assert response.status_code == 200
    assert b'src="http://testserver/static/widget/frame.js" data-api-base="http://testserver"' in response.content
    assert "frame-src 'self'" in response["Content-Security-Policy"]


def test_the_site_root_leads_a_new_user_to_the_demo(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/widget/demo/"


def test_check_deploy_warns_when_no_origin_is_allowed(settings):
    settings.CHATBOT_ALLOWED_ORIGINS = []
    assert "widget.W001" in [message.id for message in run_checks(include_deployment_checks=True)]
    assert "widget.W001" not in [message.id for message in run_checks()]

    settings.CHATBOT_ALLOWED_ORIGINS = ["https://www.example.com"]
    assert "widget.W001" not in [message.id for message in run_checks(include_deployment_checks=True)]


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("plain & <b>bold</b>", "<p>plain &amp; &lt;b&gt;bold&lt;/b&gt;</p>"),
        ("**strong** and *em* and `a<b`", "<p><strong>strong</strong> and <em>em</em> and <code>a&lt;b</code></p>"),
        ("line one\nline two\n\nnext", "<p>line one<br>line two</p><p>next</p>"),
        ("- a\n- b\n1. c", "<ul><li>a</li><li>b</li></ul><ol><li>c</li></ol>"),
        ("```py\nif a < b:\n    pass\n```", "<pre><code>if a &lt; b:\n    pass</code></pre>"),
        ("## Title", "<p><strong>Title</strong></p>"),
        (
            "[docs](https://example.com/a?b=1&c=2)",
            '<p><a href="https://example.com/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer">docs</a></p>',
        ),
        (
            "see https://example.com/x.",
            '<p>see <a href="https://example.com/x" target="_blank" rel="noopener noreferrer">'
            "https://example.com/x</a>.</p>",
        ),
        ("[click](javascript:alert(1))", "<p>[click](javascript:alert(1))</p>"),
        (
            "[x](data:text/html,<script>alert(1)</script>)",
            "<p>[x](data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;)</p>",
        ),
    ],
)
def test_the_markdown_subset(text, html, settings):
    settings.CHATBOT_LINK_HOSTS = ["example.com"]  # links elsewhere are text: tests/test_links.py

    assert render_markdown(text) == html
