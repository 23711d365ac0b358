"""Widget weight: what a visitor's browser downloads before the launcher shows.

A page on another origin embeds the widget by its one tag; headless Chromium loads it
and every request the page makes is recorded until the "Open chat" button is visible.
Sizes are gzip -9 of the files requested as the server serves them (collectstatic's
minified copies, not the sources; what a gzip-only client receives; browsers that
accept Brotli get less), and the bytes Chromium actually received are reported too.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from tests.chromium import CHROMIUM, CHROMIUM_ARGS

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def gzipped_size(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9, mtime=0))


def file_sizes(static_root: Path) -> dict[str, dict]:
    """Every .js and .css file of static/widget/ as served from ``static_root`` (minified
    by collectstatic), under its plain name, raw and gzipped."""
    manifest = static_root / "staticfiles.json"
    if not manifest.exists():
        return {}
    names = json.loads(manifest.read_text()).get("paths", {})
    served = [static_root / name for name in sorted(names) if name.startswith("widget/")]
    return {
        path.name: {"bytes": path.stat().st_size, "gzip_bytes": gzipped_size(path)}
        for path in served
        if path.suffix in (".js", ".css")
    }


def served_headers(base_url: str, path: str) -> dict:
    """What the production server answers for a static file, asking for gzip."""
    request = urllib.request.Request(f"{base_url}{path}", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
        return {
            "path": path,
            "status": response.status,
            "content_encoding": response.headers.get("Content-Encoding"),
            "bytes": len(body),
            "cache_control": response.headers.get("Cache-Control"),
            "etag": bool(response.headers.get("ETag")),
        }


def hashed_name(static_root: Path, name: str) -> str | None:
    manifest = static_root / "staticfiles.json"
    if not manifest.exists():
        return None
    return json.loads(manifest.read_text()).get("paths", {}).get(name)


class _HostPage(BaseHTTPRequestHandler):
    html = b""

    def do_GET(self):  # noqa: N802 - the http.server API
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.html)))
        self.end_headers()
        self.wfile.write(self.html)

    def log_message(self, *args):
        pass


def host_page_server(port: int, api_base: str) -> ThreadingHTTPServer:
    """A customer's page on its own origin, embedding the widget by its one tag."""
    html = (
        "<!doctype html><html><head><meta charset='utf-8'><title>A customer's site</title></head>"
        "<body><h1>A customer's page</h1><p>Some content.</p>"
        f'<script src="{api_base}/static/widget/widget.js" data-api-base="{api_base}" defer></script>'
        "</body></html>"
    ).encode()
    handler = type("HostPage", (_HostPage,), {"html": html})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def browser_requests(host_url: str, *, timeout_ms: int = 15000) -> dict:
    """Load the host page in Chromium; the requests made until the launcher is visible."""
    from playwright.sync_api import sync_playwright

    requests: list = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requests.append(request))
            started = time.perf_counter()
            page.goto(host_url)
            page.get_by_role("button", name="Open chat").wait_for(state="visible", timeout=timeout_ms)
            shown_ms = (time.perf_counter() - started) * 1000
            before = list(requests)
            page.wait_for_timeout(300)  # anything fired right after is still "before" in spirit: count it apart
            after = requests[len(before) :]
            widget = [r for r in before if r.url != host_url]
            received = 0
            for r in widget:
                response = r.response()
                if response is not None:
                    received += r.sizes()["responseBodySize"]
            return {
                "launcher_visible_ms": round(shown_ms, 1),
                "requests_before_launcher": len(widget),
                "urls": [r.url for r in widget],
                "requests_right_after": [r.url for r in after],
                "third_party": [r.url for r in before + after if urlsplit(r.url).hostname not in LOCAL_HOSTS],
                "received_bytes": received,
            }
        finally:
            browser.close()
