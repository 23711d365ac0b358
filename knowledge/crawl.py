"""Which pages of a site a sync fetches: the sitemap (indexes and ``.xml.gz`` too), only
the site of the URL it was given, only what robots.txt allows, at most
``CHATBOT_KB_MAX_PAGES``.

Every request goes through :class:`knowledge.fetching.Fetcher`. A listing that cannot be
trusted (a sitemap that does not answer or does not parse, a robots.txt that answers
5xx) raises :class:`CrawlError`, so the sync fails and removes nothing: a site that is
down for a minute must not empty the knowledge base.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # noqa: S405 (DOCTYPE and entities are refused before parsing)
import zlib
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin, urlsplit
from urllib.robotparser import RobotFileParser

from django.conf import settings

from knowledge.fetching import Fetcher, FetchError, same_site

SITEMAP_NAMESPACE = "http://www.sitemaps.org/schemas/sitemap/0.9"
# A sitemap index lists sitemaps, which list pages; the protocol allows no deeper nesting,
# and one more level is tolerated for sites that get it wrong.
MAX_INDEX_NESTING = 1
MAX_SITEMAPS = 100
_DECLARATION = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class CrawlError(Exception):
    """The site's listing (sitemap, robots.txt) could not be read; the sync must not act on it."""


@dataclass
class Listing:
    """What a sync should fetch. ``pages``: same-site URLs robots.txt allows, in sitemap
    order, at most CHATBOT_KB_MAX_PAGES. ``listed``: every such URL, including those over
    the limit, so that only pages really gone from the sitemap are removed. ``skipped``:
    ``{"url", "error"}`` for what was listed but not taken, for the run's report."""

    pages: list[str] = field(default_factory=list)
    listed: set[str] = field(default_factory=set)
    skipped: list[dict[str, str]] = field(default_factory=list)


def list_page(fetcher: Fetcher, url: str) -> Listing:
    """A source that is one page: that page, if robots.txt allows it."""
    return _select([url], site_url=url, robots=robots_for(fetcher, url))


def list_sitemap(fetcher: Fetcher, sitemap_url: str) -> Listing:
    """Every page a sitemap (or a sitemap index, nested once) lists on its own site."""
    robots = robots_for(fetcher, sitemap_url)
    pages: list[str] = []
    skipped: list[dict[str, str]] = []
    queue = [(sitemap_url, 0)]
    seen_sitemaps: set[str] = set()
    while queue:
        url, depth = queue.pop(0)
        if url in seen_sitemaps:
            continue
        seen_sitemaps.add(url)
        if len(seen_sitemaps) > MAX_SITEMAPS:
            raise CrawlError(f"{sitemap_url}: more than {MAX_SITEMAPS} sitemaps")
        kind, locations = parse_sitemap(_fetch_sitemap(fetcher, url), url=url)
        if kind == "sitemapindex":
            if depth > MAX_INDEX_NESTING:
                raise CrawlError(f"{url}: sitemap indexes nested deeper than the protocol allows")
            for child in locations:
                if same_site(sitemap_url, child):
                    queue.append((child, depth + 1))
                else:
                    skipped.append({"url": child, "error": "sitemap on another site, not read"})
        else:
            pages.extend(locations)
    listing = _select(pages, site_url=sitemap_url, robots=robots)
    listing.skipped[:0] = skipped
    return listing


def parse_sitemap(body: bytes, *, url: str) -> tuple[str, list[str]]:
    """(``"urlset"`` or ``"sitemapindex"``, the ``<loc>`` values) of a sitemap, gzipped or not.

    Parsed with the standard library, made safe: the text must be UTF-8 (as the protocol
    requires, so no other encoding can hide a declaration), any DOCTYPE or ENTITY
    declaration is refused outright (no entity expansion, no external entities), and a
    gzipped sitemap may inflate to at most CHATBOT_KB_MAX_PAGE_BYTES.
    """
    if body[:2] == b"\x1f\x8b":
        body = _gunzip(body, url=url)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CrawlError(f"{url}: a sitemap must be UTF-8") from None
    if _DECLARATION.search(text):
        raise CrawlError(f"{url}: refused, the sitemap declares a DOCTYPE or entities")
    try:
        root = ET.fromstring(text)  # noqa: S314 (see above)
    except ET.ParseError as error:
        raise CrawlError(f"{url}: not a sitemap ({error})") from None
    kind = _local_name(root.tag)
    if kind not in ("urlset", "sitemapindex"):
        raise CrawlError(f"{url}: not a sitemap (root element <{kind}>)")
    locations = []
    for entry in root:
        for child in entry:
            if child.tag in (f"{{{SITEMAP_NAMESPACE}}}loc", "loc") and child.text and child.text.strip():
                locations.append(child.text.strip())
    return kind, locations


def robots_for(fetcher: Fetcher, url: str) -> RobotFileParser:
    """The site's robots.txt rules. None (404 and other 4xx) allows everything; 401/403
    forbid everything, as the standard library reads them; a 5xx or no answer is a
    CrawlError, since the site may have meant to forbid what we would fetch."""
    parts = urlsplit(url)
    robots_url = f"{parts.scheme}://{parts.netloc}/robots.txt"
    parser = RobotFileParser(robots_url)
    try:
        response = fetcher.get(robots_url)
    except FetchError as error:
        raise CrawlError(f"robots.txt: {error}") from None
    if response.status == 200:
        parser.parse(response.body.decode("utf-8", errors="replace").splitlines())
    elif response.status in (401, 403):
        parser.disallow_all = True
    elif response.status >= 500:
        raise CrawlError(f"{robots_url} answered {response.status}")
    else:
        parser.allow_all = True
    return parser


def _select(urls: list[str], *, site_url: str, robots: RobotFileParser) -> Listing:
    listing = Listing()
    limit = settings.CHATBOT_KB_MAX_PAGES
    for raw in urls:
        url = urldefrag(urljoin(site_url, raw)).url
        if url in listing.listed:
            continue
        if urlsplit(url).scheme not in ("http", "https") or not same_site(site_url, url):
            listing.skipped.append({"url": url, "error": "on another site, not fetched"})
        elif not robots.can_fetch(settings.CHATBOT_KB_USER_AGENT, url):
            listing.skipped.append({"url": url, "error": "disallowed by robots.txt"})
        else:
            listing.listed.add(url)
            if len(listing.pages) < limit:
                listing.pages.append(url)
    if len(listing.listed) > limit:
        listing.skipped.append(
            {
                "url": site_url,
                "error": f"{len(listing.listed)} pages listed; only {limit} fetched (CHATBOT_KB_MAX_PAGES)",
            }
        )
    return listing


def _fetch_sitemap(fetcher: Fetcher, url: str) -> bytes:
    try:
        response = fetcher.get(url)
    except FetchError as error:
        raise CrawlError(str(error)) from None
    if response.status != 200:
        raise CrawlError(f"{url} answered {response.status}")
    return response.body


def _gunzip(data: bytes, *, url: str) -> bytes:
    limit = settings.CHATBOT_KB_MAX_PAGE_BYTES
    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    try:
        inflated = inflater.decompress(data, limit + 1)
    except zlib.error as error:
        raise CrawlError(f"{url}: not valid gzip ({error})") from None
    if len(inflated) > limit:
        raise CrawlError(f"{url}: inflates past CHATBOT_KB_MAX_PAGE_BYTES ({limit} bytes)")
    return inflated


def _local_name(tag: str) -> str:
    return tag.rpartition("}")[2]
