"""The safe markdown subset assistant replies are shown in, rendered on the server.

``/chat`` puts the transcript into its HTML so it is on screen before any script runs;
after that, ``static/widget/conversation.js`` renders new replies in the browser. The
two renderers implement one specification, line for line, and a browser test feeds
both the same texts and compares the DOM they produce:

* Blocks: fenced code (```), unordered (``-``, ``*``, ``+``) and ordered (``1.``,
  ``1)``) lists, headings (``#`` to ``######``, shown as a bold paragraph), and
  paragraphs, whose single line breaks are kept.
* Inline: ```code```, ``**strong**``, ``__strong__``, ``*emphasis*``,
  ``[text](url)`` and bare ``http(s)://`` URLs. Links go only to ``http:``,
  ``https:`` or ``mailto:`` URLs on an allowlisted host (``conversations.display``:
  the site's own origins, the knowledge base's sites, ``CHATBOT_LINK_HOSTS``) and open
  in a new tab with ``rel="noopener noreferrer"``; anything else is shown as the text
  that was written.
* Everything else, raw HTML included, is text: every character the model wrote is
  escaped, and only the tags above are ever produced. Bidirectional controls and
  invisible characters are removed first (``conversations.display``).
"""

from __future__ import annotations

import re

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from conversations.display import link_host, link_hosts, visible

FENCE = re.compile(r"^\s*```")
LIST_ITEM = re.compile(r"^\s*([-*+]|[0-9]{1,9}[.)])\s+(.*)$")
HEADING = re.compile(r"^#{1,6}\s+(.*)$")
# One alternative per inline form; the leftmost match wins, then the first alternative.
INLINE = re.compile(
    r"`([^`]+)`"
    r"|\*\*(.+?)\*\*"
    r"|__(.+?)__"
    r"|\*(?!\s)(.+?)\*"
    r"|\[([^\]]+)\]\(([^)\s]+)\)"
    r"|(https?://[^\s<>\"'()]*[^\s<>\"'().,;:!?])"
)
NO_LINKS: frozenset[str] = frozenset()


def render_markdown(text: str, *, hosts: frozenset[str] | None = None) -> SafeString:
    """``text`` as HTML; links only to ``hosts`` (by default, ``link_hosts()``)."""
    links = link_hosts() if hosts is None else hosts
    lines = re.sub(r"\r\n?", "\n", visible(text)).split("\n")
    html: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if FENCE.match(line):
            i += 1
            code: list[str] = []
            while i < len(lines) and not FENCE.match(lines[i]):
                code.append(lines[i])
                i += 1
            i += 1  # the closing fence, if there is one
            html.append(f"<pre><code>{escape(chr(10).join(code))}</code></pre>")
        elif not line.strip():
            i += 1
        elif item := LIST_ITEM.match(line):
            ordered = is_number(item.group(1))
            items: list[str] = []
            while i < len(lines) and (item := LIST_ITEM.match(lines[i])) and is_number(item.group(1)) == ordered:
                items.append(f"<li>{render_inline(item.group(2), links)}</li>")
                i += 1
            tag = "ol" if ordered else "ul"
            html.append(f"<{tag}>{''.join(items)}</{tag}>")
        elif heading := HEADING.match(line):
            html.append(f"<p><strong>{render_inline(heading.group(1), links)}</strong></p>")
            i += 1
        else:
            paragraph: list[str] = []
            while i < len(lines) and starts_paragraph_line(lines[i]):
                paragraph.append(render_inline(lines[i], links))
                i += 1
            html.append(f"<p>{'<br>'.join(paragraph)}</p>")
    return mark_safe("".join(html))  # noqa: S308 - every piece of text above is escaped


def is_number(marker: str) -> bool:
    return marker[0] in "0123456789"


def starts_paragraph_line(line: str) -> bool:
    return bool(line.strip()) and not FENCE.match(line) and not LIST_ITEM.match(line) and not HEADING.match(line)


def render_inline(text: str, links: frozenset[str]) -> str:
    out: list[str] = []
    position = 0
    for match in INLINE.finditer(text):
        out.append(escape(text[position : match.start()]))
        position = match.end()
        code, strong, strong2, emphasis, label, url, bare = match.groups()
        if code is not None:
            out.append(f"<code>{escape(code)}</code>")
        elif strong is not None or strong2 is not None:
            out.append(f"<strong>{render_inline(strong or strong2, links)}</strong>")
        elif emphasis is not None:
            out.append(f"<em>{render_inline(emphasis, links)}</em>")
        elif label is not None and link_host(url) in links:
            out.append(link(url, render_inline(label, NO_LINKS)))
        elif bare is not None and link_host(bare) in links:
            out.append(link(bare, escape(bare)))
        else:
            out.append(escape(match.group(0)))
    out.append(escape(text[position:]))
    return "".join(out)


def link(url: str, label_html: str) -> str:
    return f'<a href="{escape(url)}" target="_blank" rel="noopener noreferrer">{label_html}</a>'
