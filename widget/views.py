"""The full page ``/chat`` and the demo pages that show the widget on a sample site."""

from __future__ import annotations

import json
import re

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import Http404
from django.shortcuts import render
from django.templatetags.static import PrefixNode
from django.urls import reverse
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_safe

from conversations import languages
from conversations.display import link_hosts, visible
from conversations.models import Message, Role, Session
from conversations.serializers import RATING_NAMES
from widget.headers import page_headers
from widget.markdown import render_markdown

# Shaped like an id we could have issued; anything else is not worth echoing back.
SESSION_ID_SHAPE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@require_safe
@page_headers(framable=True)
def chat_page(request):
    """The conversation UI on a page of its own; ``?session=<id>`` continues one.

    The latest page of the transcript is rendered here, so it is on screen at first
    paint; the script then takes over. The page talks to the API without cookies, like
    the widget on a customer's site, so it shows only what it could continue: sessions
    anyone holding the id may use. An unknown or expired id gets a note and a fresh
    conversation, never an error page.

    It is in the visitor's language (``?lang=``, else Accept-Language, else
    CHATBOT_LANGUAGE): the template's strings rendered here, conversation.js's from the
    catalog inlined beside them, so the page costs no extra request in any language.
    """
    language = languages.page_language(request)
    with translation.override(language):
        response = render(request, "widget/chat.html", chat_page_context(request, language))
    response["Content-Language"] = language
    patch_vary_headers(response, ["Accept-Language"])
    return response


def chat_page_context(request, language: str) -> dict:
    """What chat.html shows, rendered while ``language`` is active."""
    requested = request.GET.get("session", "").strip()
    session = Session.objects.readable_by(requested, AnonymousUser()) if requested else None
    messages, has_more = session.messages.page_before(None, settings.CHATBOT_PAGE_SIZE) if session else ([], False)
    hosts = link_hosts()  # read once: the knowledge base's sites are a query
    greeting = languages.translated(settings.CHATBOT_GREETING)
    return {
        "language": language,
        "direction": "rtl" if languages.is_right_to_left(language) else "ltr",
        "catalog": languages.browser_catalog(language),
        "title": languages.translated(settings.CHATBOT_PAGE_TITLE),
        "greeting": greeting,
        "greeting_html": render_markdown(greeting, hosts=hosts),
        "session": session,
        "continued_from_widget": session is not None and session.source == "widget",
        "missing_session": requested if requested and session is None and SESSION_ID_SHAPE.match(requested) else "",
        "not_found": bool(requested) and session is None,
        "messages": [shown(message, hosts) for message in messages if message.role != Role.SYSTEM],
        "next_before": messages[0].seq if has_more else "",
        "answers": rated_answers(messages),
        "allowed_origins": json.dumps(settings.CHATBOT_ALLOWED_ORIGINS),
        "link_hosts": json.dumps(sorted(hosts)),
    }


def shown(message, hosts: frozenset[str]) -> dict:
    """A message as the page shows it: replies in the markdown subset with the citations
    page.js draws their sources from, visitors' text as typed."""
    reply = message.role == Role.ASSISTANT
    return {
        "seq": message.seq,
        "role": message.role,
        "author_name": visible(message.author_name),
        "content": visible(message.content),
        "html": render_markdown(message.content, hosts=hosts) if reply else None,
        "citations": message.metadata.get("citations") if reply else None,
    }


def rated_answers(messages: list[Message]) -> dict:
    """The bot's answers on the page by seq, with their ids and the visitor's rating:
    conversation.js puts the feedback buttons under them, pressed as stored, as it does
    under an answer it fetches itself."""
    return {
        message.seq: {"id": message.pk, "rating": RATING_NAMES[feedback.rating] if feedback else None}
        for message in messages
        if message.role == Role.ASSISTANT and not message.author_name
        for feedback in [message.known_feedback()]
    }


def snippet_urls(request) -> dict:
    """The API base and the snippets' URLs, as customers paste them.

    Not ``{% static %}``: in production that names the hashed copy (widget.3f9a….js),
    which the next deploy replaces, and a customer's page must keep working for years.
    """
    api_base = request.build_absolute_uri("/").rstrip("/")
    static_root = api_base + PrefixNode.handle_simple("STATIC_URL")
    return {
        "api_base": api_base,
        "widget_src": static_root + "widget/widget.js",
        "frame_src": static_root + "widget/frame.js",
    }


# The sample site's pages besides its home page, each a template in widget/demo/.
# kb_demo puts them all in the knowledge base, so that the widget answers from them.
DEMO_PAGES = (
    "tents",
    "sleeping-bags",
    "packs-and-clothing",
    "shipping",
    "returns",
    "warranty",
    "faq",
    "contact",
    "about",
)


def demo_paths() -> list[str]:
    """The paths of the sample site's pages: what its sitemap lists and kb_demo ingests."""
    return [reverse("widget-demo"), *(reverse("widget-demo-page", args=[page]) for page in DEMO_PAGES)]


def demo_context(request, page: str) -> dict:
    """What every page of the sample site needs: its own name, for the navigation, and
    the snippets, for its one widget tag and the ribbon that shows it."""
    urls = snippet_urls(request)
    tag = f'<script src="{urls["widget_src"]}" data-api-base="{urls["api_base"]}" defer></script>'
    return {**urls, "embed_tag": tag, "page": page}


@require_safe
@page_headers()
def demo(request, page: str | None = None):
    """A page of a sample customer site (its home page without ``page``), with the
    widget embedded by its one tag."""
    if page is not None and page not in DEMO_PAGES:
        raise Http404("No such page on the demo site.")
    name = page or "home"
    return render(request, f"widget/demo/{name}.html", demo_context(request, name))


@require_safe
def demo_sitemap(request):
    """The sample site's sitemap, as a real site publishes one, so that the knowledge
    base can re-sync the demo like any other site."""
    urls = [request.build_absolute_uri(path) for path in demo_paths()]
    return render(request, "widget/demo/sitemap.xml", {"urls": urls}, content_type="application/xml")


@require_safe
@page_headers(frame_src="'self'")
def demo_full_page(request):
    """The sample site's own full chat page: /chat framed by the full-page snippet, the
    way a customer's ``/chatbot`` page does it."""
    return render(request, "widget/demo_full_page.html", demo_context(request, "chatbot"))
