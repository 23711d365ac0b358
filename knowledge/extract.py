"""Turn a page or a file into (title, Markdown) for the index.

HTML goes through trafilatura, which finds the main text and drops navigation, headers,
footers and cookie banners while keeping headings, lists and tables (as Markdown, which
chunking splits at headings). Its inferred dates are not used: a page's freshness comes
from the HTTP validators and the content hash. PDFs through pypdf; Markdown and plain
text as they are.

Two of trafilatura's guesses fail on documentation sites, so the page is prepared first
(see ``_main_content``): when trafilatura recognises no content container (Django's own
docs theme has none it knows) it falls back to collecting loose paragraphs, without any
heading or ``<dl>`` list; and it drops blocks whose id holds a boilerplate word, while
Sphinx names each section after its heading ("...fields.related", "built-in-template-tags"),
so whole sections went.
"""

from __future__ import annotations

import copy
import io
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

import lxml.html
import pypdf
import trafilatura
from lxml import etree
from pypdf.errors import PyPdfError

HTML, MARKDOWN, TEXT, PDF = "html", "markdown", "text", "pdf"
FORMATS_BY_SUFFIX = {
    ".html": HTML,
    ".htm": HTML,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".txt": TEXT,
    ".text": TEXT,
    ".pdf": PDF,
}
_FORMATS_BY_MEDIA_TYPE = {
    "text/html": HTML,
    "application/xhtml+xml": HTML,
    "text/markdown": MARKDOWN,
    "text/x-markdown": MARKDOWN,
    "text/plain": TEXT,
    "application/pdf": PDF,
}
_FIRST_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)


class ExtractError(Exception):
    """Content that yields no text: an unsupported format, an unreadable PDF, an empty page."""


@dataclass(frozen=True)
class Extracted:
    title: str
    markdown: str


def format_of(*, name: str, content_type: str = "") -> str | None:
    """The format of a fetched page (by its Content-Type, then its URL's suffix) or a file
    (by its suffix); None when it is none we read."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type in _FORMATS_BY_MEDIA_TYPE:
        return _FORMATS_BY_MEDIA_TYPE[media_type]
    suffix = PurePosixPath(urlsplit(name).path if "://" in name else name).suffix.lower()
    return FORMATS_BY_SUFFIX.get(suffix)


def extract(content: bytes, *, name: str, content_type: str = "") -> Extracted:
    """(title, Markdown) of ``content``. ``name`` is its URL or file name: it decides the
    format when ``content_type`` does not, and is the title when the content has none."""
    kind = format_of(name=name, content_type=content_type) or _sniff(content)
    if kind is None:
        raise ExtractError(f"{name}: not HTML, Markdown, plain text or PDF ({content_type or 'unknown type'})")
    fallback_title = _title_from_name(name)
    if kind == HTML:
        title, markdown = _html(content)
    elif kind == PDF:
        title, markdown = _pdf(content, name=name)
    else:
        markdown = _decode(content, content_type).strip()
        found = _FIRST_HEADING.search(markdown) if kind == MARKDOWN else None
        title = found.group(1) if found else ""
    if not markdown.strip():
        raise ExtractError(f"{name}: no text found")
    return Extracted(title=(title or fallback_title).strip(), markdown=markdown)


def _sniff(content: bytes) -> str | None:
    """For a page served without a Content-Type we know, and a URL without a suffix."""
    head = content[:512].lstrip().lower()
    if head.startswith(b"%pdf-"):
        return PDF
    if head.startswith((b"<!doctype html", b"<html")):
        return HTML
    return None


# The element holding a page's own text, most specific first: schema.org's article body
# (Read the Docs), the ARIA main landmark (Sphinx's themes, MkDocs), <main> (Docusaurus, most
# sites), a lone <article>, and the element holding the docutils section that holds the
# page's <h1> (any Sphinx theme, such as Django's, that marks none of these). Only an
# expression that finds exactly one element names it: three <article> cards are not the page.
_MAIN_CONTENT = [
    etree.XPath(expression)
    for expression in [
        "//*[@itemprop='articleBody']",
        "//*[@role='main']",
        "//main",
        "//article",
        "(//*[self::section or self::div[contains(concat(' ', @class, ' '), ' section ')]][h1])[1]/..",
    ]
]
# Docs generators (Sphinx, MkDocs, Docusaurus) put a permalink ("¶", "#") after each heading
# and definition; on their pages an id is such a permalink's anchor. Sphinx's "[source]" links
# go with them.
_PERMALINKS = etree.XPath(
    ".//a[contains(concat(' ', @class, ' '), ' headerlink ') or contains(concat(' ', @class, ' '), ' hash-link ')]"
    "|.//*[contains(concat(' ', @class, ' '), ' viewcode-link ')]"
)


def _html(content: bytes) -> tuple[str, str]:
    tree = trafilatura.load_html(content)
    if tree is None:
        return "", ""
    metadata = trafilatura.extract_metadata(tree)
    title = (metadata.title or "") if metadata else ""
    main = _main_content(tree)
    markdown = _trafilatura_markdown(main) if main is not None else ""
    return title, markdown or _trafilatura_markdown(tree)


def _main_content(tree: lxml.html.HtmlElement) -> lxml.html.HtmlElement | None:
    """The page's main content element alone, in a document trafilatura takes whole, or None.

    The copy is wrapped in the container trafilatura looks for first, so that it neither
    falls back to loose paragraphs nor settles on a smaller box inside. On a docs generator's
    page the ids go (they are heading anchors, which trafilatura would read as "related",
    "tags" or "hidden" boilerplate) and so do the permalinks ("¶" after every heading)."""
    main = next((found[0] for expression in _MAIN_CONTENT if len(found := expression(tree)) == 1), None)
    if main is None:
        return None
    main = copy.deepcopy(main)
    main.tail = None
    permalinks = _PERMALINKS(main)
    if permalinks:
        for permalink in permalinks:
            permalink.drop_tree()
        for element in main.iter():
            element.attrib.pop("id", None)
    document = lxml.html.fromstring("<html><head></head><body></body></html>")
    wrapper = lxml.html.Element("div", itemprop="articleBody")
    wrapper.append(main)
    document.find("body").append(wrapper)
    return document


def _trafilatura_markdown(tree: lxml.html.HtmlElement) -> str:
    return (
        trafilatura.extract(
            tree,
            output_format="markdown",
            include_tables=True,
            include_formatting=True,
            include_links=False,
            include_images=False,
            include_comments=False,
            with_metadata=False,
        )
        or ""
    )


def _pdf(content: bytes, *, name: str) -> tuple[str, str]:
    try:
        reader = pypdf.PdfReader(io.BytesIO(content))
        pages = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata.title or "") if reader.metadata else ""
    except (PyPdfError, ValueError, KeyError, TypeError) as error:
        raise ExtractError(f"{name}: unreadable PDF ({error})") from None
    return str(title), "\n\n".join(page.strip() for page in pages if page.strip())


def _decode(content: bytes, content_type: str) -> str:
    charset = re.search(r"charset=([\w.-]+)", content_type, re.IGNORECASE)
    encoding = charset.group(1) if charset else "utf-8"
    try:
        return content.decode(encoding, errors="replace")
    except LookupError:
        return content.decode("utf-8", errors="replace")


def _title_from_name(name: str) -> str:
    """ "shipping-and-returns.md" → "Shipping and returns"; a URL's last path segment, or its host."""
    parts = urlsplit(name) if "://" in name else None
    path = unquote(parts.path) if parts else name
    stem = PurePosixPath(path.rstrip("/")).stem
    if not stem:
        return parts.hostname or name if parts else name
    words = re.sub(r"[-_]+", " ", stem).strip()
    return words[:1].upper() + words[1:]
