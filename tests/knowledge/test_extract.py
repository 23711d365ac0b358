"""Pages and files become (title, Markdown): the main text, with its headings, lists and tables."""

from __future__ import annotations

import pytest

from knowledge.extract import ExtractError, extract

PRODUCT_PAGE = b"""<!doctype html><html><head><title>Trail 2 tent</title></head><body>
<header><nav><a href="/">Home</a> <a href="/shop">Shop</a> <a href="/contact">Contact us</a></nav></header>
<div id="cookie-banner" class="cookie-consent">We use cookies to improve your experience. Accept all cookies?</div>
<main><article>
<h1>Trail 2 tent</h1>
<p>The Trail 2 is our best tent for two people: light, quick to pitch, and dry in a storm.</p>
<h2>Specifications</h2>
<ul><li>Weight: 1.9 kg</li><li>Sleeps: 2</li></ul>
<table><tr><th>Size</th><th>Price</th></tr><tr><td>2 person</td><td>$299</td></tr></table>
<h2>Care</h2><p>Dry the tent completely before you store it.</p>
</article></main>
<footer>Copyright 2026 Outdoor Shop. All rights reserved. Privacy policy.</footer>
</body></html>"""


def pdf_with_text(title: str, lines: list[str]) -> bytes:
    """The smallest real PDF with a text layer: one page, Helvetica, one line per entry."""
    text = " T* ".join(f"({line}) Tj" for line in lines)
    stream = f"BT /F1 12 Tf 14 TL 72 720 Td {text} ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Title (%s) >>" % title.encode(),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_html_keeps_the_main_text_with_headings_lists_and_tables():
    page = extract(PRODUCT_PAGE, name="https://shop.example/tents/trail-2", content_type="text/html")

    assert page.title == "Trail 2 tent"
    assert "The Trail 2 is our best tent for two people" in page.markdown
    assert "## Specifications" in page.markdown
    assert "- Weight: 1.9 kg" in page.markdown
    assert "| 2 person | $299 |" in page.markdown


def test_html_drops_navigation_footers_and_cookie_banners():
    page = extract(PRODUCT_PAGE, name="https://shop.example/tents/trail-2", content_type="text/html")

    for boilerplate in ["Contact us", "cookies", "All rights reserved"]:
        assert boilerplate not in page.markdown


def test_markdown_is_kept_as_written_and_titled_by_its_first_heading():
    text = "# Shipping\n\nWe ship to Norway in five working days.\n\n## Costs\n\n- Free over $50\n"

    page = extract(text.encode(), name="docs/shipping-policy.md")

    assert page.title == "Shipping"
    assert page.markdown == text.strip()


def test_plain_text_is_titled_by_its_file_name():
    page = extract(b"Returns are free within 30 days.", name="docs/returns-and-refunds.txt")

    assert (page.title, page.markdown) == ("Returns and refunds", "Returns are free within 30 days.")


def test_a_page_served_as_plain_text_is_read_in_its_declared_charset():
    page = extract(
        "Prix: 20 €".encode("latin-1", errors="replace"),
        name="https://shop.example/prix",
        content_type="text/plain; charset=latin-1",
    )

    assert page.markdown.startswith("Prix: 20")


def test_a_pdf_gives_its_text_and_its_title():
    pdf = pdf_with_text("Warranty terms", ["Every tent carries a five year warranty.", "Keep your receipt."])

    page = extract(pdf, name="warranty.pdf")

    assert page.title == "Warranty terms"
    assert "five year warranty" in page.markdown
    assert "Keep your receipt." in page.markdown


def test_an_unreadable_pdf_is_an_extract_error():
    with pytest.raises(ExtractError, match="PDF"):
        extract(b"%PDF-1.4 this is not really a pdf", name="broken.pdf")


def test_an_unsupported_format_is_an_extract_error():
    with pytest.raises(ExtractError, match="not HTML, Markdown"):
        extract(b"\x89PNG...", name="https://shop.example/logo.png", content_type="image/png")


def test_a_page_without_text_is_an_extract_error():
    with pytest.raises(ExtractError, match="no text"):
        extract(b"<html><head><title>Empty</title></head><body></body></html>", name="https://shop.example/")
