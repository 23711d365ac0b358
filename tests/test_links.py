"""Where links in assistant messages may go: the hosts of CHATBOT_ALLOWED_ORIGINS and
CHATBOT_LINK_HOSTS, nowhere else (the browser side: tests/browser/test_links.py)."""

from __future__ import annotations

import json
import re

import pytest

from conversations.display import link_host, link_hosts
from conversations.models import MessageDraft, Role, Session
from knowledge.models import Source, SourceKind
from widget.markdown import render_markdown


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://example.com/a", "example.com"),
        ("HTTPS://Example.COM", "example.com"),
        ("https://example.com:443/", "example.com"),
        ("http://example.com:80/", "example.com"),
        ("https://example.com:8443/", "example.com:8443"),
        ("http://example.com:443/", "example.com:443"),
        ("mailto:help@Example.com", "example.com"),
        ("https://example.com@evil.example/", None),  # credentials: the host is evil.example
        ("https://example.com\\@evil.example/", None),
        ("https://example%2ecom/", None),
        ("https://[::1]/", None),
        ("https://exämple.com/", None),
        ("javascript:alert(1)", None),
        ("//evil.example/", None),
        ("mailto:a@b@example.com", None),
    ],
)
def test_a_links_host_is_read_as_a_browser_reads_it_or_not_at_all(url, host):
    assert link_host(url) == host


@pytest.mark.django_db
def test_links_may_go_to_the_allowed_origins_and_the_link_hosts(settings):
    settings.CHATBOT_ALLOWED_ORIGINS = ["https://www.example.com", "http://127.0.0.1:8000", "https://shop.example:443"]
    settings.CHATBOT_LINK_HOSTS = ["docs.example.com"]

    assert link_hosts() == {"www.example.com", "127.0.0.1:8000", "shop.example", "docs.example.com"}


@pytest.mark.django_db
def test_links_may_go_to_the_knowledge_bases_sites_and_its_contact_page(settings):
    settings.CHATBOT_ALLOWED_ORIGINS = []
    settings.CHATBOT_KB_CONTACT_URL = "https://help.example/contact"
    Source.objects.create(kind=SourceKind.SITEMAP, location="https://shop.example/sitemap.xml")
    Source.objects.create(kind=SourceKind.URL, location="https://docs.example:8443/faq")
    Source.objects.create(kind=SourceKind.FILES, location="Price lists")

    assert link_hosts() == {"shop.example", "docs.example:8443", "help.example"}


@pytest.mark.django_db
def test_a_reply_links_only_to_allowlisted_hosts(settings):
    settings.CHATBOT_ALLOWED_ORIGINS = ["https://www.example.com"]
    settings.CHATBOT_LINK_HOSTS = []

    html = render_markdown("[Pricing](https://www.example.com/pricing) or [log in](https://evil.example/login)")

    assert re.findall(r'href="([^"]+)"', html) == ["https://www.example.com/pricing"]
    assert "[log in](https://evil.example/login)" in html


@pytest.mark.django_db
def test_the_full_page_renders_and_hands_on_the_same_allowlist(client, settings):
    settings.CHATBOT_ALLOWED_ORIGINS = ["https://www.example.com"]
    settings.CHATBOT_LINK_HOSTS = ["docs.example.com"]
    session = Session.objects.create(source="api")
    session.add_message(
        MessageDraft(role=Role.ASSISTANT, content="[docs](https://docs.example.com/a) [phish](https://evil.example/)")
    )

    html = client.get(f"/chat?session={session.public_id}").content.decode()

    assert '<a href="https://docs.example.com/a"' in html
    assert 'href="https://evil.example/' not in html
    hosts = re.search(r'data-link-hosts="([^"]*)"', html).group(1).replace("&quot;", '"')
    assert json.loads(hosts) == ["docs.example.com", "www.example.com"]


@pytest.mark.django_db
def test_the_widget_learns_the_allowlist_from_the_api(api, settings):
    settings.CHATBOT_ALLOWED_ORIGINS = ["https://www.example.com"]
    settings.CHATBOT_LINK_HOSTS = ["docs.example.com"]

    response = api.get("/api/widget/config", HTTP_ORIGIN="https://www.example.com")

    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "link_hosts": ["docs.example.com", "www.example.com"],
        "handoff": True,
        "language": "en",
        "direction": "ltr",
        "catalog": {},
    }
    assert response.has_header("Access-Control-Allow-Origin")  # the widget calls it from customers' sites


@pytest.mark.django_db
def test_a_link_planted_through_the_offline_responders_echo_is_text_on_the_shared_page(api, client, settings):
    # The probe's row: an attacker's session whose reply echoes a look-alike login link,
    # then its /chat?session= link sent to a victim.
    settings.OPENAI_API_KEY = ""
    settings.CHATBOT_ALLOWED_ORIGINS = ["https://www.example.com"]
    settings.CHATBOT_LINK_HOSTS = []
    planted = "[Sign in to continue](https://www.examp1e.com/login)"
    session_id = api.post("/api/chat", {"query": planted, "channel": "widget"}, format="json").json()["session_id"]

    html = client.get(f"/chat?session={session_id}").content.decode()

    assert "Conversation continued from widget" in html
    assert "Offline responder" in html  # the assistant's bubble, echoing the link
    assert "https://www.examp1e.com/login" in html
    assert 'href="https://www.examp1e.com' not in html
