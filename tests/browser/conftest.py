"""Fixtures for the browser tests: headless Chromium driven by Playwright, the app on a
live server, and customer sites on other origins that embed it.

The Playwright instance lives for one test. Its sync API keeps an event loop running
on the test's thread, and a browser kept for the whole session would make Django refuse
database calls in every later test of the same xdist worker; starting it costs under a
second. Database calls inside a browser test go through ``support.in_db_thread``.
"""

from __future__ import annotations

import os
from io import StringIO

import pytest
from django.core.management import call_command
from playwright.sync_api import sync_playwright
from pytest_django.live_server_helper import LiveServer

from knowledge.index import remove_sources
from knowledge.models import Source
from tests.browser.support import AXE, CustomerSite, assert_no_axe_violations, in_db_thread
from tests.chromium import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="session")
def live_server():
    """pytest-django's live server, on 127.0.0.1 rather than "localhost", so that no name
    lookup is involved and every origin in these tests is an explicit address."""
    server = LiveServer("127.0.0.1")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def customer_site():
    """A site on the allowlist: it embeds the widget and frames /chat."""
    site = CustomerSite()
    yield site
    site.stop()


@pytest.fixture(scope="session")
def stranger_site():
    """A site that is not on the allowlist."""
    site = CustomerSite()
    yield site
    site.stop()


@pytest.fixture(autouse=True)
def production_like(settings, customer_site):
    """The allowlist names the customer site only, as it would in production, and the
    built-in offline responder answers unless a test asks for the fake model: no test
    can reach a real model, whatever the environment says."""
    settings.CHATBOT_ALLOWED_ORIGINS = [customer_site.origin]
    settings.CORS_ALLOWED_ORIGINS = [customer_site.origin]
    settings.CORS_ALLOW_ALL_ORIGINS = False
    settings.OPENAI_API_KEY = ""


@pytest.fixture
def browser(live_server):
    """Headless Chromium. Depends on the live server so the database outlives it."""
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing; CI must run the browser tests (.ci/run installs it)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); the browser tests need it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def axe():
    """``axe(page, where)`` fails the test with every axe-core violation on the page.
    axe-core comes from npm (``./dev.sh test`` runs ``npm ci``), never from a CDN."""
    if not AXE.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{AXE} is missing; CI must run the accessibility tests (./dev.sh test runs npm ci)")
        pytest.skip(f"{AXE} is missing (npm ci); the accessibility tests need it")
    return assert_no_axe_violations


class Watch:
    """What went wrong in the pages of a test: dialogs (alert() from an XSS payload)
    and uncaught script errors."""

    def __init__(self):
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self._watched: set[int] = set()

    def page(self, page):
        if id(page) in self._watched:
            return page
        self._watched.add(id(page))

        def on_dialog(dialog):
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        return page


@pytest.fixture
def watch():
    return Watch()


@pytest.fixture
def new_page(browser, watch):
    """A page in a fresh browser context (its own storage, like a new visitor).
    Popups it opens are watched too; no test may end with an uncaught script error."""

    def open_page(viewport=None, init_script=None, **context_options):
        context = browser.new_context(viewport=viewport or {"width": 1280, "height": 800}, **context_options)
        context.set_default_timeout(10_000)
        context.on("page", watch.page)
        if init_script:
            context.add_init_script(init_script)
        return watch.page(context.new_page())

    yield open_page
    assert watch.errors == []


@pytest.fixture
def demo_knowledge_base(live_server):
    """The demo site in the knowledge base, linked where the live server serves it, as
    ``./dev.sh serve`` leaves it; taken out again, since the live server's database
    outlives the test."""
    in_db_thread(lambda: call_command("kb_demo", "--base-url", live_server.url, stdout=StringIO()))
    yield
    in_db_thread(lambda: remove_sources(Source.objects.all()))
