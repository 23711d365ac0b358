"""Helpers for the browser tests: customer sites on other origins, database calls from
a test that drives a browser, where screenshots go, the keyboard focus, staff in the
admin, and axe-core's audit."""

from __future__ import annotations

import html
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from django.contrib.auth.models import Permission
from django.core.files.storage import FileSystemStorage
from django.db import connections, transaction
from playwright.sync_api import expect

from conversations.models import MessageDraft, Session
from widget.storage import MinifiedManifestStaticFilesStorage

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
# Installed from the npm registry by ./dev.sh test (package-lock.json pins the version).
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"

# A stylesheet that would wreck a widget living in the page's own DOM: it reaches every
# element of the page, and the widget's host element, with !important.
HOSTILE_CSS = """
* { font: italic 30px/3 "Comic Sans MS", cursive !important; color: #f00 !important;
    letter-spacing: 3px !important; text-transform: uppercase !important; }
button, textarea, ol, li, section, div, form { all: unset !important; background: #ff0 !important; }
"""


def in_db_thread(call):
    """Run ``call`` (ORM code) in another thread and return its result.

    Playwright's sync API keeps an event loop running on the test's thread, and Django
    refuses database calls from a thread with a running loop; in a thread of their own
    they run as they would in a view.
    """

    def run():
        try:
            return call()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def session_with_messages(turns: list[tuple[str, str] | tuple[str, str, dict]], *, source: str = "widget") -> Session:
    """A stored conversation of (role, content) or (role, content, metadata) turns, as
    its channel would have left it. ORM code: call it through ``in_db_thread``."""
    session = Session.objects.create(source=source)
    drafts = [MessageDraft(role, text, *metadata, channel=source) for role, text, *metadata in turns]
    with transaction.atomic():
        session.append_messages(drafts)
    return session


def show_in_widget(page, session: Session, site_url: str) -> None:
    """Open ``site_url`` as a returning visitor whose widget remembers ``session``."""
    page.goto(site_url)
    page.wait_for_function("() => window.Chatbot && window.Chatbot.open")
    api_base = page.evaluate("() => document.querySelector('script[data-api-base]').dataset.apiBase")
    page.evaluate("([key, id]) => localStorage.setItem(key, id)", [f"chatbot:session:{api_base}", session.public_id])
    page.reload()


class CustomerSite:
    """A customer's website on its own origin (127.0.0.1, a port of its own), serving
    whatever pages a test gives it."""

    def __init__(self):
        self.pages: dict[str, str] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                body = site.pages.get(self.path.split("?")[0])
                payload = (body or "not found").encode()
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"

    def serve(self, path: str, body: str) -> str:
        self.pages[path] = body
        return self.origin + path

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# What the one tag brings into a page: the loader, the shared conversation and their styles.
WIDGET_FILES = ["widget.js", "conversation.js", "conversation.css", "widget.css"]


def served_widget_files(directory: Path) -> Path:
    """The widget's files as production serves them, written under ``directory``: put
    through the production staticfiles storage (minified, hashed, compressed) as
    collectstatic does, but only these four, so it takes a moment rather than minutes.
    Returns the folder that holds them under their plain names (widget.js loads
    conversation.js by that name)."""
    source = FileSystemStorage(location=ROOT / "static")
    storage = MinifiedManifestStaticFilesStorage(location=directory, base_url="/static/")
    paths = {}
    for name in WIDGET_FILES:
        path = f"widget/{name}"
        with source.open(path) as file:
            storage.save(path, file)
        paths[path] = (source, path)
    for _name, _hashed, processed in storage.post_process(paths):
        if isinstance(processed, Exception):
            raise processed
    return directory / "widget"


def widget_tag(api_base: str, **data: str) -> str:
    """The one tag, as a customer pastes it, with any data- options."""
    options = "".join(f' data-{name.replace("_", "-")}="{html.escape(value)}"' for name, value in data.items())
    return f'<script src="{api_base}/static/widget/widget.js" data-api-base="{api_base}"{options} defer></script>'


def customer_page(body: str, *, title: str = "Customer site", css: str = HOSTILE_CSS) -> str:
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        f"<link rel='icon' href='data:,'><style>{css}</style></head>"
        f"<body><h1>{title}</h1><p><a href='#top'>A link on the customer's page</a></p>{body}</body></html>"
    )


def save_screenshot(page, name: str, *, publish: bool = False, **options) -> Path:
    """Write a screenshot to test-artifacts/; with CHATBOT_UPDATE_SCREENSHOTS=1, the
    ``publish``ed ones also to docs/screenshots/, the copies the README shows."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), **options)
    if publish and os.environ.get("CHATBOT_UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_SCREENSHOTS / path.name)
    return path


class ChatUI:
    """The conversation UI on a page: the widget (its locators reach into the shadow
    root) or /chat, which share their markup."""

    REPLY = ".cb-list > .cb-msg-assistant:not(.cb-greeting):not(.cb-typing):not([aria-busy])"

    def __init__(self, page):
        self.page = page
        self.launcher = page.get_by_role("button", name="Open chat", exact=True)
        self.textbox = page.get_by_role("textbox", name="Message", exact=True)
        self.send_button = page.get_by_role("button", name="Send", exact=True)
        self.replies = page.locator(self.REPLY)

    def button(self, name: str):
        return self.page.get_by_role("button", name=name, exact=True)

    def open_full_page(self):
        """Click "Open full page" and return the tab it opens, loaded."""
        with self.page.context.expect_page() as opened:
            self.button("Open full page").click()
        full = opened.value
        full.wait_for_load_state()
        return full

    def send(self, text: str, *, replies_after: int | None = None) -> None:
        self.textbox.fill(text)
        self.textbox.press("Enter")
        if replies_after is not None:
            self.wait_for_replies(replies_after)

    def wait_for_replies(self, count: int) -> None:
        expect(self.replies).to_have_count(count)

    def transcript(self) -> list[tuple[str, str]]:
        """(role, text) of every message shown, greeting and typing indicator aside."""
        messages = self.page.locator(".cb-list > .cb-msg:not(.cb-greeting):not(.cb-typing)")
        return [
            tuple(pair)
            for pair in messages.evaluate_all(
                "nodes => nodes.map(n => [n.classList.contains('cb-msg-user') ? 'user' : 'assistant',"
                " n.querySelector('.cb-bubble').textContent])"
            )
        ]


# --- The keyboard focus ----------------------------------------------------------------

# The accessible name of the focused element, looking into shadow roots.
FOCUSED = """() => {
  let node = document.activeElement;
  while (node && node.shadowRoot && node.shadowRoot.activeElement) node = node.shadowRoot.activeElement;
  return node && (node.getAttribute("aria-label") || node.textContent.trim());
}"""


def focused_name(page) -> str | None:
    return page.evaluate(FOCUSED)


def tab_to(page, name: str, *, key: str = "Tab", limit: int = 12) -> None:
    for _ in range(limit):
        if focused_name(page) == name:
            return
        page.keyboard.press(key)
    raise AssertionError(f"{name!r} never got the focus; last focused: {focused_name(page)!r}")


# --- Staff in the admin ------------------------------------------------------------------

STAFF_PASSWORD = "pw-for-tests"


def staff_who_reads_transcripts(user_model, username: str = "staff"):
    """A staff member whose only permission is to read chat sessions."""
    staff = user_model.objects.create_user(username, password=STAFF_PASSWORD, is_staff=True)
    staff.user_permissions.add(Permission.objects.get(content_type__app_label="conversations", codename="view_session"))
    return staff


def staff_who_answers(user_model, username: str = "responder", first_name: str = "Rita", last_name: str = "Responder"):
    """A staff member who may change chat sessions: take one over, reply, hand it back."""
    staff = user_model.objects.create_user(
        username, password=STAFF_PASSWORD, is_staff=True, first_name=first_name, last_name=last_name
    )
    staff.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="conversations", codename__in=["view_session", "change_session"]
        )
    )
    return staff


def session_id_in_widget(page, api_base: str) -> str:
    """The id of the conversation the widget on ``page`` (talking to ``api_base``) keeps."""
    return page.evaluate(f"localStorage.getItem('chatbot:session:{api_base}')")


def log_in_to_admin(page, api: str, next_path: str, username: str = "staff") -> None:
    """Sign in through the admin's own login form and land on ``next_path``."""
    page.goto(f"{api}/admin/login/?next={next_path}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{api}{next_path}")


# --- axe-core ----------------------------------------------------------------------------

# Animations that end (the panel sliding in) are waited for, so that colours are not
# measured half faded in; the typing indicator's endless one is not.
SETTLE = """async () => {
  const roots = [document, ...[...document.querySelectorAll("*")].filter((n) => n.shadowRoot).map((n) => n.shadowRoot)];
  const ending = roots.flatMap((root) => root.getAnimations())
    .filter((a) => a.effect && a.effect.getComputedTiming().endTime !== Infinity);
  await Promise.all(ending.map((a) => a.finished.catch(() => null)));
}"""

AXE_RUN = """async () => {
  const results = await axe.run(document, { resultTypes: ["violations"] });
  return results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => n.target.join(" >>> ")),
  }));
}"""


def axe_violations(page) -> list[dict]:
    """axe-core's violations on the page as it is now, of every impact; open shadow
    roots (the widget's) and frames (/chat framed by a site) are audited with the rest.

    The script goes in as an inline <script>, which our pages' Content-Security-Policy
    refuses: open those pages in a context made with ``bypass_csp=True``.
    """
    for frame in page.frames:
        if not frame.evaluate("() => typeof window.axe === 'object'"):
            frame.add_script_tag(path=str(AXE))
        frame.evaluate(SETTLE)
    return page.evaluate(AXE_RUN)


def assert_no_axe_violations(page, where: str) -> None:
    violations = axe_violations(page)
    report = "\n".join(f"  [{v['impact']}] {v['id']}: {v['help']}\n    at {v['targets']}" for v in violations)
    assert violations == [], f"axe-core {where}: {len(violations)} rule(s) violated\n{report}"
