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
        entries = "".join(f"<url><loc>{self._absolute(u)}</loc></url>" for u in urls)
        self._xml(path, f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>', compress)

    def sitemap_index(self, path: str, sitemaps: list[str]) -> None:
        entries = "".join(f"<sitemap><loc>{self._absolute(u)}</loc></sitemap>" for u in sitemaps)
        self._xml(path, f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</sitemapindex>')

    def _xml(self, path: str, xml: str, compress: bool = False) -> None:
        body = b'<?xml version="1.0" encoding="UTF-8"?>' + xml.encode()
        if compress:
            self.page(path, gzip.compress(body), content_type="application/gzip")
        else:
            self.page(path, body, content_type="application/xml")

    def _absolute(self, url: str) -> str:
        return self.url(url) if url.startswith("/") else url

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
