"""Which pages a sync takes from a site: its sitemaps, its own pages, what robots.txt allows."""

from __future__ import annotations

import gzip

import pytest

from knowledge.crawl import CrawlError, list_page, list_sitemap, parse_sitemap
from knowledge.fetching import Fetcher, FetchRefused


def listing_of(sitemap_url: str):
    with Fetcher() as fetcher:
        return list_sitemap(fetcher, sitemap_url)


def test_a_sitemap_index_with_a_gzipped_sitemap_lists_the_pages_of_both(site):
    site.sitemap_index("/sitemap.xml", ["/sitemap-pages.xml", "/sitemap-more.xml.gz"])
    site.sitemap("/sitemap-pages.xml", ["/tents", "/shipping"])
    site.sitemap("/sitemap-more.xml.gz", ["/returns", "/faq"], compress=True)

    listing = listing_of(site.url("/sitemap.xml"))

    assert listing.pages == [site.url(path) for path in ["/tents", "/shipping", "/returns", "/faq"]]
    assert listing.skipped == []


def test_pages_robots_txt_disallows_are_not_taken(site):
    site.robots("User-agent: *\nDisallow: /private/\n")
    site.sitemap("/sitemap.xml", ["/tents", "/private/prices"])

    listing = listing_of(site.url("/sitemap.xml"))

    assert listing.pages == [site.url("/tents")]
    assert listing.skipped == [{"url": site.url("/private/prices"), "error": "disallowed by robots.txt"}]


def test_robots_txt_rules_for_our_user_agent_apply(site, settings):
    settings.CHATBOT_KB_USER_AGENT = "ChatbotKnowledgeBase/1.0"
    site.robots("User-agent: ChatbotKnowledgeBase\nDisallow: /\n\nUser-agent: *\nAllow: /\n")
    site.sitemap("/sitemap.xml", ["/tents"])

    assert listing_of(site.url("/sitemap.xml")).pages == []


@pytest.mark.parametrize(("status", "taken"), [(404, ["/tents"]), (410, ["/tents"]), (401, []), (403, [])])
def test_no_robots_txt_allows_everything_and_a_forbidden_one_nothing(site, status, taken):
    site.status("/robots.txt", status)
    site.sitemap("/sitemap.xml", ["/tents"])

    assert listing_of(site.url("/sitemap.xml")).pages == [site.url(path) for path in taken]


def test_a_robots_txt_that_answers_5xx_stops_the_crawl(site):
    site.status("/robots.txt", 503)
    site.sitemap("/sitemap.xml", ["/tents"])

    with pytest.raises(CrawlError, match="503"):
        listing_of(site.url("/sitemap.xml"))


def test_pages_and_sitemaps_on_other_sites_are_not_taken(site):
    site.sitemap_index("/sitemap.xml", ["/sitemap-pages.xml", "http://elsewhere.example/sitemap.xml"])
    site.sitemap("/sitemap-pages.xml", ["/tents", "https://elsewhere.example/tents", "mailto:shop@example.com"])

    listing = listing_of(site.url("/sitemap.xml"))

    assert listing.pages == [site.url("/tents")]
    assert [entry["url"] for entry in listing.skipped] == [
        "http://elsewhere.example/sitemap.xml",
        "https://elsewhere.example/tents",
        "mailto:shop@example.com",
    ]


def test_at_most_the_page_limit_is_taken_but_every_listed_page_is_known(site, settings):
    settings.CHATBOT_KB_MAX_PAGES = 2
    site.sitemap("/sitemap.xml", ["/a", "/b", "/c", "/a#again"])

    listing = listing_of(site.url("/sitemap.xml"))

    assert listing.pages == [site.url("/a"), site.url("/b")]
    assert listing.listed == {site.url(path) for path in ["/a", "/b", "/c"]}
    assert "CHATBOT_KB_MAX_PAGES" in listing.skipped[-1]["error"]


def test_a_sitemap_that_does_not_answer_stops_the_crawl(site):
    with pytest.raises(CrawlError, match="404"):
        listing_of(site.url("/sitemap.xml"))


def test_a_sitemap_on_a_private_address_is_refused_while_the_setting_is_off(site, settings):
    settings.CHATBOT_KB_ALLOW_PRIVATE_HOSTS = False
    site.sitemap("/sitemap.xml", ["/tents"])

    with pytest.raises(CrawlError, match="private"):
        listing_of(site.url("/sitemap.xml"))
    assert site.requests == []


def test_a_single_page_source_is_that_page_if_robots_allow_it(site):
    site.robots("User-agent: *\nDisallow: /private/\n")

    with Fetcher() as fetcher:
        assert list_page(fetcher, site.url("/tents")).pages == [site.url("/tents")]
        assert list_page(fetcher, site.url("/private/x")).pages == []


def test_a_page_redirecting_to_another_host_is_refused(site):
    port = site.base_url.rpartition(":")[2]
    site.redirect("/tents", f"http://localhost:{port}/tents")

    with Fetcher() as fetcher, pytest.raises(FetchRefused, match="another site"):
        fetcher.get(site.url("/tents"))


# --- Parsing sitemaps safely ---------------------------------------------------------


def test_a_sitemap_with_a_doctype_or_entities_is_refused():
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>&lol2;</loc></url></urlset>'
    )
    external = (
        b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<urlset><url><loc>&x;</loc></url></urlset>"
    )
    for body in [laughs, external, gzip.compress(laughs)]:
        with pytest.raises(CrawlError, match="DOCTYPE"):
            parse_sitemap(body, url="http://shop.example/sitemap.xml")


def test_a_sitemap_in_another_encoding_is_refused():
    body = '<?xml version="1.0" encoding="UTF-16"?><urlset></urlset>'.encode("utf-16")

    with pytest.raises(CrawlError, match="UTF-8"):
        parse_sitemap(body, url="http://shop.example/sitemap.xml")


def test_a_gzipped_sitemap_may_not_inflate_past_the_size_limit(settings):
    settings.CHATBOT_KB_MAX_PAGE_BYTES = 1024
    body = gzip.compress(b"<urlset>" + b" " * 100_000 + b"</urlset>")

    with pytest.raises(CrawlError, match="inflates"):
        parse_sitemap(body, url="http://shop.example/sitemap.xml.gz")


def test_only_sitemap_locations_are_read_not_image_or_other_extensions():
    body = (
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
        b' xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">'
        b"<url><loc> http://shop.example/tents </loc><lastmod>2026-01-01</lastmod>"
        b"<image:image><image:loc>http://shop.example/tent.jpg</image:loc></image:image></url></urlset>"
    )

    assert parse_sitemap(body, url="http://shop.example/sitemap.xml") == ("urlset", ["http://shop.example/tents"])


def test_something_that_is_not_a_sitemap_is_an_error():
    for body in [b"<html><body>Not found</body></html>", b"not xml at all"]:
        with pytest.raises(CrawlError, match="not a sitemap"):
            parse_sitemap(body, url="http://shop.example/sitemap.xml")
