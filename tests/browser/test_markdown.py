"""The browser's renderer (conversation.js) and the server's (widget/markdown.py) give
the same DOM, so a reply looks the same when streamed and when reloaded."""

from __future__ import annotations

import pytest

from widget.markdown import render_markdown

pytestmark = pytest.mark.browser

SAMPLES = [
    "Plain text & <b>tags</b> and 'quotes' \"too\"",
    "**bold**, __bold__, *em*, `code <x>`, ** not bold, a * b * c",
    "Nested **bold with *em* and `code`** here",
    "Line one\nline two\r\nline three\rline four\n\n\nNew paragraph",
    "- one\n- two\n* three\n+ four\n1. first\n2) second\n\n10. tenth",
    "Intro\n- item right after text\nafter the list",
    "```js\nconst a = b < c && d > e;\n\n  indented\n```\nafter the fence",
    "```\nnever closed\n<script>",
    "# Heading\n###### Small **heading**\n#NotAHeading",
    "[docs](https://example.com/a?b=1&c=2) [mail](mailto:hi@example.com) [bad](javascript:alert(1))",
    "[**bold link**](https://example.com) [x](data:text/html,hi) [y](//evil.example) [z](HTTPS://EXAMPLE.COM)",
    "See https://example.com/path?q=1. Or (https://example.com/x), or https://example.com/y!",
    "Autolink inside [a https://example.com link](https://example.org) stays text",
    '<img src=x onerror=alert(1)> <a href="javascript:alert(2)">x</a>',
    "Unicode: café — 你好 — 🙂 **ünïcödé**",
    "*** \n---\n   \n- \n1.",
]


def test_the_browser_and_the_server_render_markdown_alike(new_page, live_server):
    page = new_page()
    page.goto(f"{live_server.url}/chat")
    page.wait_for_function("() => window.Chatbot && window.Chatbot.renderMarkdown")

    in_browser = page.evaluate(
        """samples => samples.map(text => {
            const box = document.createElement("div");
            box.append(Chatbot.renderMarkdown(text));
            return box.innerHTML;
        })""",
        SAMPLES,
    )
    # The server's HTML, parsed and serialized by the same browser, to compare like with like.
    from_server = page.evaluate(
        """fragments => fragments.map(html => {
            const box = document.createElement("template");
            box.innerHTML = html;
            const out = document.createElement("div");
            out.append(box.content);
            return out.innerHTML;
        })""",
        [str(render_markdown(text)) for text in SAMPLES],
    )

    for text, browser_html, server_html in zip(SAMPLES, in_browser, from_server, strict=True):
        assert browser_html == server_html, text
