"""A small real website on 127.0.0.1, served from a thread, for the crawler to fetch.

A test sets what each path answers (pages, sitemaps, robots.txt, redirects, ETags,
Last-Modified, status codes) and reads back what the crawler asked for. Conditional GETs
are answered as a real server would: 304 when ``If-None-Match`` matches the page's ETag
or ``If-Modified-Since`` equals its Last-Modified.
"""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    status: int


PRODUCT_PAGE = b"""<!doctype html><html><head><title>Trail 2 tent</title></head><body>
<header><nav><a href="/">Home</a> <a href="/shop">Shop</a> <a href="/contact">Contact us</a></nav></header>
<div id="cookie-banner" class="cookie-consent">We use cookies to improve your experience. Accept all cookies?</div>
<main><article>
<h1>Trail 2 tent</h1>
<p>The Trail 2 is our best tent for two people: light, quick to pitch, and dry in a storm.</p>
<h2>Specifications</h2>
<ul><li>Weight: 1.9 kg</li><li>Sleeps: 2</li></ul>
<table><tr><th>Size</th><th>Price</th></tr><tr><td>2 person</td><td>$299</td></tr></table>
<h2>Care</h2><p>Dry the tent completely before you store it.</p>
</article></main>
<footer>Copyright 2026 Outdoor Shop. All rights reserved. Privacy policy.</footer>
</body></html>"""


def pdf_with_text(title: str, lines: list[str]) -> bytes:
    """The smallest real PDF with a text layer: one page, Helvetica, one line per entry."""
    text = " T* ".join(f"({line}) Tj" for line in lines)
    stream = f"BT /F1 12 Tf 14 TL 72 720 Td {text} ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Title (%s) >>" % title.encode(),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


class LoopbackSite:
    """Use as a context manager; ``url(path)`` is the absolute URL of a path on it."""

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> LoopbackSite:
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str) -> str:
        return self.base_url + path

    # --- What the site answers ------------------------------------------------------

    def page(
        self,
        path: str,
        body: str | bytes,
        *,
        content_type: str = "text/html; charset=utf-8",
        etag: str = "",
        last_modified: str = "",
        status: int = 200,
    ) -> None:
        headers = {"Content-Type": content_type}
        if etag:
            headers["ETag"] = etag
        if last_modified:
            headers["Last-Modified"] = last_modified
        data = body.encode() if isinstance(body, str) else body
        self.answers[path] = Answer(status=status, body=data, headers=headers)

    def html(self, path: str, title: str, text: str, **options) -> None:
        """A page with navigation and a footer around its main text, as real pages have."""
        self.page(
            path,
            f"<!doctype html><html><head><title>{title}</title></head><body>"
            f'<nav><a href="/">Home</a> <a href="/shop">Shop</a></nav>'
            f"<main><h1>{title}</h1><p>{text}</p></main>"
            f"<footer>Copyright Outdoor Shop</footer></body></html>",
            **options,
        )

    def status(self, path: str, status: int) -> None:
        self.answers[path] = Answer(status=status, body=b"", headers={"Content-Type": "text/plain"})

    def redirect(self, path: str, location: str, *, status: int = 302) -> None:
        self.answers[path] = Answer(status=status, headers={"Location": location})

    def robots(self, text: str) -> None:
        self.page("/robots.txt", text, content_type="text/plain")

    def sitemap(self, path: str, urls: list[str], *, compress: bool = False) -> None:
        """A sitemap listing ``urls`` (paths on this site or absolute URLs); gzipped with
        ``compress``, as ``.xml.gz`` sitemaps are."""
        entries = "".join(f"<url><loc>{escape(self._absolute(u))}</loc></url>" for u in urls)
        self._xml(path, f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>', compress)

    def sitemap_index(self, path: str, sitemaps: list[str]) -> None:
        entries = "".join(f"<sitemap><loc>{escape(self._absolute(u))}</loc></sitemap>" for u in sitemaps)
        self._xml(path, f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</sitemapindex>')

    def _xml(self, path: str, xml: str, compress: bool = False) -> None:
        body = b'<?xml version="1.0" encoding="UTF-8"?>' + xml.encode()
        if compress:
            self.page(path, gzip.compress(body), content_type="application/gzip")
        else:
            self.page(path, body, content_type="application/xml")

    def _absolute(self, url: str) -> str:
        return self.url(url) if url.startswith("/") else url

    def shop(self, *, etags: bool = True) -> str:
        """A little shop; returns its sitemap's URL. A sitemap index over a plain and a
        gzipped sitemap; three pages (with ETags unless ``etags`` is off); robots.txt
        keeping crawlers out of /private/ (where one listed page is); one listed page,
        /partner, that redirects to another host."""
        port = self.base_url.rpartition(":")[2]
        self.robots("User-agent: *\nDisallow: /private/\n")
        self.sitemap_index("/sitemap.xml", ["/sitemap-products.xml", "/sitemap-help.xml.gz"])
        self.sitemap("/sitemap-products.xml", ["/tents", "/stoves", "/private/margins"])
        self.sitemap("/sitemap-help.xml.gz", ["/shipping", "/partner"], compress=True)
        self.html(
            "/tents", "Trail 2 tent", "The Trail 2 is our best tent for two people.", etag='"t1"' if etags else ""
        )
        self.html(
            "/stoves", "Camp stove", "A gas stove that boils water in three minutes.", etag='"s1"' if etags else ""
        )
        self.html("/shipping", "Shipping", "We ship to Norway within five working days.", etag='"h1"' if etags else "")
        self.html("/private/margins", "Margins", "Our secret margins on kayaks.")
        self.redirect("/partner", f"http://localhost:{port}/partner")
        return self.url("/sitemap.xml")

    # --- What the crawler asked for -------------------------------------------------

    def requested(self, path: str) -> list[Request]:
        with self._lock:
            return [request for request in self.requests if request.path == path]

    def statuses(self, path: str) -> list[int]:
        return [request.status for request in self.requested(path)]

    def forget_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def _answer(self, path: str, headers: dict[str, str]) -> Answer:
        answer = self.answers.get(path)
        if answer is None:
            return Answer(status=404, body=b"not found", headers={"Content-Type": "text/plain"})
        etag = answer.headers.get("ETag")
        last_modified = answer.headers.get("Last-Modified")
        if answer.status == 200 and (
            (etag and headers.get("if-none-match") == etag)
            or (last_modified and headers.get("if-modified-since") == last_modified)
        ):
            return Answer(status=304, headers={key: value for key, value in answer.headers.items() if key == "ETag"})
        return answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
                headers = {key.lower(): value for key, value in self.headers.items()}
                answer = site._answer(self.path, headers)
                with site._lock:
                    site.requests.append(Request(path=self.path, headers=headers, status=answer.status))
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format, *args) -> None:  # noqa: A002 (http.server's signature)
                pass

        return Handler
