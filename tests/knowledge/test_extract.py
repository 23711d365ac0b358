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


def sphinx_page(theme: str) -> bytes:
    """A long page as Sphinx writes it: the site's header, sidebar and footer around docutils
    sections, each with a permalink in its heading and its heading's anchor as its id (here
    "...fields.related", "built-in-template-tags"), and the API in definition lists."""

    def section(anchor: str, level: int, title: str, content: str) -> str:
        permalink = f'<a class="headerlink" href="#{anchor}">¶</a>'
        heading = f"<h{level}>{title}{permalink}</h{level}>"
        return f'<div class="section" id="s-{anchor}"><span id="{anchor}"></span>{heading}{content}</div>'

    def attribute(name: str, text: str) -> str:
        definition = f'<dt id="{name}"><code>{name}</code><a class="headerlink" href="#{name}">¶</a></dt>'
        details = " ".join(f"Note {n} on {name} tells one more thing about how it behaves." for n in range(5))
        return f'<dl class="py attribute">{definition}<dd><p>{text}</p><p>{details}</p></dd></dl>'

    options = "".join(
        section(name, 3, f"<code>{name}</code>", attribute(f"Field.{name}", f"What the {name} option does."))
        for name in ["null", "blank", "choices", "db_column", "db_index", "default", "editable", "unique", "hidden"]
    )
    foreign_key = attribute(
        "ForeignKey.on_delete",
        "When an object referenced by a ForeignKey is deleted, Django will emulate the behavior "
        "of the SQL constraint specified by the on_delete argument.",
    )
    body = section(
        "model-field-reference",
        1,
        "Model field reference",
        "<p>This document contains all the API references of Field.</p>"
        + section("field-options", 2, "Field options", f"<p>These arguments are available to all fields.</p>{options}")
        + section(
            "module-django.db.models.fields.related",
            2,
            "Relationship fields",
            "<p>Django also defines a set of fields that represent relations.</p>"
            + section("foreignkey", 3, "<code>ForeignKey</code>", f"<p>A many-to-one relationship.</p>{foreign_key}"),
        )
        + section(
            "built-in-template-tags", 2, "Built-in template tags", "<p>The autoescape tag controls escaping.</p>"
        ),
    )
    sidebar = (
        '<div class="sphinxsidebar" role="navigation"><h3>Table of contents</h3>'
        '<ul><li><a href="#field-options">Field options</a></li><li><a href="#foreignkey">ForeignKey</a></li></ul>'
        '<h4>Previous topic</h4><p><a href="index.html">Models</a></p><h3>Quick search</h3></div>'
    )
    themes = {
        # Django's own: no container trafilatura knows
        "django": (
            '<div id="bd"><div id="yui-main"><div class="yui-b"><div class="yui-g" id="ref-models-fields">'
            f'{body}</div></div></div><div class="yui-b" id="sidebar">{sidebar}</div></div>'
        ),
        # Sphinx's basic theme and those built on it (alabaster, classic)
        "basic": f'<div class="document"><div class="body" role="main">{body}</div>{sidebar}</div>',
        "read-the-docs": f'<nav>{sidebar}</nav><div role="main"><div itemprop="articleBody">{body}</div></div>',
    }
    navigation = '<div class="nav"><a href="index.html">previous</a> | <a href="indexes.html">next</a></div>'
    return f"""<!doctype html><html><head><title>Model field reference</title></head><body>
<div id="hd"><h1><a href="/">Django documentation</a></h1>{navigation}</div>
{themes[theme]}
<div id="ft">{navigation}</div>
</body></html>""".encode()


@pytest.mark.parametrize("theme", ["django", "basic", "read-the-docs"])
def test_a_sphinx_page_keeps_its_headings_and_every_section(theme):
    page = extract(sphinx_page(theme), name="https://docs.example/ref/models/fields.html", content_type="text/html")

    headings = [line for line in page.markdown.splitlines() if line.startswith("#")]
    assert headings[:4] == ["# Model field reference", "## Field options", "### `null`", "### `blank`"]
    assert headings[-3:] == ["## Relationship fields", "### `ForeignKey`", "## Built-in template tags"]
    assert "When an object referenced by a ForeignKey is deleted" in page.markdown
    assert "The autoescape tag controls escaping." in page.markdown
    assert "Note 4 on Field.hidden" in page.markdown


@pytest.mark.parametrize("theme", ["django", "basic", "read-the-docs"])
def test_a_sphinx_page_drops_its_header_sidebar_footer_and_permalinks(theme):
    page = extract(sphinx_page(theme), name="https://docs.example/ref/models/fields.html", content_type="text/html")

    for boilerplate in ["Django documentation", "Table of contents", "Previous topic", "Quick search", "previous", "¶"]:
        assert boilerplate not in page.markdown
