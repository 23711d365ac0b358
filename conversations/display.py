"""Text as the admin, the widget and the full page show it.

Messages and titles are stored and returned by the API exactly as they were written.
Shown to a person, though, bidirectional controls (U+202A–U+202E embeddings and
overrides, U+2066–U+2069 isolates, the LRM/RLM/ALM marks) could reorder what follows
them (U+202E before "exe.txt" shows "txt.exe"), and invisible characters (zero-width space,
word joiner, BOM) could make two different texts look the same. Every surface removes
both before showing text; ``static/widget/conversation.js`` removes the same set.
Zero-width joiner and non-joiner stay: emoji sequences and several scripts need them,
and they reorder and hide nothing.
"""

from __future__ import annotations

import re

from django.conf import settings

from knowledge.models import Source, SourceKind

INVISIBLE = re.compile("[\u061c\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def visible(text: str) -> str:
    return INVISIBLE.sub("", text)


# --- Links in assistant messages ---------------------------------------------------------
# A model can be steered (by prompt injection, by a crawled page, by a visitor's own
# message echoed back) to write a link to a look-alike login page; a reply in our own
# widget would lend it our authority. So a link in a reply is clickable only when it
# goes to a host the operator named; any other URL is shown as the text it is.
# ``static/widget/conversation.js`` applies the same two patterns to the same hosts.

# http(s) URLs whose host can be read exactly as a browser reads it: ASCII letters,
# digits, dots and hyphens, an optional port, then the end or a path, query or fragment.
# Credentials (user@host), backslashes, IP literals in brackets, escapes and non-ASCII
# hosts do not match, so such links are never clickable.
LINK_URL = re.compile(r"^(https?)://([a-z0-9.-]+(?::[0-9]{1,5})?)(?:[/?#]|$)", re.IGNORECASE | re.ASCII)
# mailto: links count as links to the mail address's domain.
MAIL_URL = re.compile(r"^mailto:[^@\s/?#]+@([a-z0-9.-]+)$", re.IGNORECASE | re.ASCII)
DEFAULT_PORTS = {"http": ":80", "https": ":443"}


def link_host(url: str) -> str | None:
    """The host a link goes to (``example.com``, ``example.com:8443``), or None when the
    URL is not one a reply may link to at all."""
    if match := LINK_URL.match(url):
        scheme, host = match.group(1).lower(), match.group(2).lower()
        return host.removesuffix(DEFAULT_PORTS[scheme])
    if match := MAIL_URL.match(url):
        return match.group(1).lower()
    return None


def link_hosts() -> frozenset[str]:
    """Where links in assistant messages may go: the hosts of the site's own origins
    (CHATBOT_ALLOWED_ORIGINS), the knowledge base's sites, and CHATBOT_LINK_HOSTS."""
    hosts = {link_host(origin) for origin in settings.CHATBOT_ALLOWED_ORIGINS}
    hosts |= set(settings.CHATBOT_LINK_HOSTS)
    hosts |= knowledge_link_hosts()
    return frozenset(host for host in hosts if host)


def knowledge_link_hosts() -> set[str]:
    """The hosts of the sites the knowledge base answers from (its crawler stays on each
    source's site), whose pages its answers cite, and of the no-answer contact link."""
    locations = Source.objects.exclude(kind=SourceKind.FILES).values_list("location", flat=True)
    return {link_host(url) for url in [*locations, settings.CHATBOT_KB_CONTACT_URL] if url} - {None}
