"""How Chromium is launched on these machines, for the browser tests and the benchmark.

Debian's Chromium, since Playwright's own browser download cannot work offline. Without
the networking flags its background connections are refused by the closed network and
slow everything down (see FIELD-NOTES.md).
"""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
