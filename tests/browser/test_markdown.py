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
    # Links only to the allowlisted hosts (HOSTS); anything else stays text.
    "[ours](https://EXAMPLE.com/x) [port](https://docs.example.com:8443/y) [default](https://example.com:443/z)",
    "[other port](https://example.com:8080/) [evil](https://evil.example/login) https://evil.example/x.",
    "[look-alike](https://example.com.evil.example/) [user](https://example.com@evil.example/) "
    "[backslash](https://example.com\\@evil.example/) [escape](https://example%2ecom/)",
    "[http](http://example.com/) http://docs.example.com:8443/a bare https://example.com",
    "[mail](mailto:help@example.com) [mail elsewhere](mailto:help@evil.example) [bad](mailto:x@y@example.com)",
    "**[bold ours](https://example.com/b)** and *https://evil.example/em*",
    # Bidirectional controls and invisible characters are removed.
    "Your file \u202eexe.txt\u202c and zero\u200bwidth \u2066isolate\u2069 \ufeffbom; emoji 👩\u200d💻 kept",
]
HOSTS = ["docs.example.com:8443", "example.com"]


def test_the_browser_and_the_server_render_markdown_alike(new_page, live_server):
    page = new_page()
    page.goto(f"{live_server.url}/chat")
    page.wait_for_function("() => window.Chatbot && window.Chatbot.renderMarkdown")

    in_browser = page.evaluate(
        """([samples, hosts]) => samples.map(text => {
            const box = document.createElement("div");
            box.append(Chatbot.renderMarkdown(text, hosts));
            return box.innerHTML;
        })""",
        [SAMPLES, HOSTS],
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
        [str(render_markdown(text, hosts=frozenset(HOSTS))) for text in SAMPLES],
    )

    for text, browser_html, server_html in zip(SAMPLES, in_browser, from_server, strict=True):
        assert browser_html == server_html, text
