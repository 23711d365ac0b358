"""Pages and files become (title, Markdown): the main text, with its headings, lists and tables."""

from __future__ import annotations

import pytest

from knowledge.extract import ExtractError, extract
from tests.knowledge.site import PRODUCT_PAGE, pdf_with_text


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
