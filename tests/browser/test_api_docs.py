"""/api/docs/ works in a browser under its Content-Security-Policy: Swagger UI loads,
shows the API, and the browser reports no violation."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_the_api_docs_render_under_their_content_security_policy(new_page, live_server):
    page = new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )

    response = page.goto(f"{live_server.url}/api/docs/")

    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.get_by_text("Chatbot sessions API").first).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/chat").first).to_be_visible()
    assert violations == []
