"""The widget's weight: everything a customer's page downloads for it, gzipped.
(No browser needed; it lives beside the widget's other tests.)"""

from __future__ import annotations

import gzip

from tests.browser.support import ROOT

BUDGET_BYTES = 12 * 1024
# What the one tag brings into a page: the loader, the shared conversation and their styles.
WIDGET_FILES = ["widget.js", "conversation.js", "conversation.css", "widget.css"]


def gzipped_size(name: str) -> int:
    return len(gzip.compress((ROOT / "static" / "widget" / name).read_bytes(), compresslevel=9))


def test_the_widget_fits_its_budget_of_12_kb_gzipped():
    sizes = {name: gzipped_size(name) for name in WIDGET_FILES}

    assert sum(sizes.values()) <= BUDGET_BYTES, sizes
