"""The retrieval benchmark's fixture: the Django 3.2.25 documentation as Debian ships it
(``python-django-doc``), the questions asked of it, and a loopback site that serves it.

The pages are kept in ``bench/fixtures/django-docs-3.2.25.tar.xz`` (every HTML page of
the package but the generated index, module index, search page and highlighted source
listings), so a run never depends on a Debian mirror still carrying that version; the
README's retrieval section says how the archive was made.
"""

from __future__ import annotations

import email.utils
import hashlib
import html
import json
import re
import tarfile
import threading
from dataclasses import dataclass
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ARCHIVE = FIXTURES / "django-docs-3.2.25.tar.xz"
QUESTIONS = FIXTURES / "retrieval-questions.json"
PREFIX = "django-docs/"
# One fixed Last-Modified for every page: nothing on this site changes during a run.
LAST_MODIFIED = email.utils.formatdate(1_700_000_000, usegmt=True)


def pages() -> dict[str, bytes]:
    """Path in the corpus (``topics/db/queries.html``) → the page's HTML, as shipped."""
    out = {}
    with tarfile.open(ARCHIVE) as archive:
        for member in archive.getmembers():
            if member.isfile() and member.name.startswith(PREFIX):
                out[member.name.removeprefix(PREFIX)] = archive.extractfile(member).read()
    return out


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    gold: dict[str, str]  # page path → the words on that page that answer (empty: unanswerable)

    @property
    def answerable(self) -> bool:
        return bool(self.gold)


def questions() -> list[Question]:
    data = json.loads(QUESTIONS.read_text())
    return [Question(id=q["id"], text=q["q"], gold=q["gold"]) for q in data["questions"]]


class _Text(HTMLParser):
    SKIP = {"script", "style", "head"}
    BLOCKS = {"p", "div", "li", "ul", "ol", "dt", "dd", "dl", "pre", "br", "tr", "td", "th", "table", "blockquote"}
    BLOCKS |= {f"h{n}" for n in range(1, 7)}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        self.skipping += tag in self.SKIP
        if tag in self.BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag):
        self.skipping -= tag in self.SKIP and self.skipping > 0
        if tag in self.BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def page_text(page: bytes) -> str:
    """All the visible text of a page, whitespace collapsed: what a reader could find on
    it, independent of any extractor (the fixture's gold evidence is checked against it)."""
    parser = _Text()
    parser.feed(page.decode("utf-8"))
    return " ".join("".join(parser.parts).split())


def page_title(page: bytes) -> str:
    match = re.search(rb"<title>(.*?)</title>", page, re.S)
    title = html.unescape(match.group(1).decode()) if match else ""
    return title.removesuffix(" — Django 3.2.25 documentation").strip()


def contains(text: str, words: str) -> bool:
    return " ".join(words.split()).lower() in text.lower()


class Site:
    """The corpus on 127.0.0.1 as a static site: every page, ``/sitemap.xml`` listing them,
    a permissive ``/robots.txt``. Pages carry an ETag and a Last-Modified and answer a
    matching conditional GET with 304, as a static web server does; every request is
    counted (``requests``) so a re-sync's cost can be read off."""

    def __init__(self, corpus: dict[str, bytes]):
        self.corpus = corpus
        self.etags = {path: '"' + hashlib.sha256(body).hexdigest()[:16] + '"' for path, body in corpus.items()}
        self.requests = 0
        self.not_modified = 0
        self._lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                with site._lock:
                    site.requests += 1
                path = self.path.split("?", 1)[0].lstrip("/")
                if path == "sitemap.xml":
                    return self.send(200, site.sitemap(), "application/xml")
                if path == "robots.txt":
                    return self.send(200, b"User-agent: *\nAllow: /\n", "text/plain")
                if path not in site.corpus:
                    return self.send(404, b"not found", "text/plain")
                etag = site.etags[path]
                if self.headers.get("If-None-Match") == etag or self.headers.get("If-Modified-Since") == LAST_MODIFIED:
                    with site._lock:
                        site.not_modified += 1
                    return self.send(304, b"", None, etag=etag)
                return self.send(200, site.corpus[path], "text/html; charset=utf-8", etag=etag)

            def send(self, status, body, content_type, etag=None):
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                if etag:
                    self.send_header("ETag", etag)
                    self.send_header("Last-Modified", LAST_MODIFIED)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path}"

    def path_of(self, url: str) -> str:
        return url.removeprefix(self.base_url + "/")

    def sitemap(self) -> bytes:
        entries = "".join(f"<url><loc>{html.escape(self.url(path))}</loc></url>" for path in sorted(self.corpus))
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>'
        ).encode()

    def __enter__(self) -> Site:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
