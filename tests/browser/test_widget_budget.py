"""The widget's weight: everything a customer's page downloads for it, gzipped, as
production serves it (minified by the staticfiles storage). (No browser needed; it
lives beside the widget's other tests.)"""

from __future__ import annotations

import gzip

from tests.browser.support import ROOT, WIDGET_FILES, served_widget_files

BUDGET_BYTES = 12 * 1024


def gzipped_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def test_the_widget_fits_its_budget_of_12_kb_gzipped(tmp_path):
    served = served_widget_files(tmp_path)

    sizes = {name: gzipped_size((served / name).read_bytes()) for name in WIDGET_FILES}

    assert sum(sizes.values()) <= BUDGET_BYTES, sizes


def test_what_is_served_is_the_source_minified(tmp_path):
    served = served_widget_files(tmp_path)

    for name in WIDGET_FILES:
        source = (ROOT / "static" / "widget" / name).read_bytes()
        shipped = (served / name).read_bytes()
        assert len(shipped) < len(source), name
        assert b"\n  " not in shipped, f"{name} is served indented"
    assert b"// The widget loader" in (ROOT / "static" / "widget" / "widget.js").read_bytes()
    assert b"// The widget loader" not in (served / "widget.js").read_bytes()
    # Served gzipped as it is stored: WhiteNoise sends collectstatic's .gz copy.
    assert gzip.decompress((served / "widget.js.gz").read_bytes()) == (served / "widget.js").read_bytes()
