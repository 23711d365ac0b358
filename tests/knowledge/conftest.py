"""Fixtures of the knowledge base's tests.

``pages`` stores pages straight into the index (no crawl), for tests about ranking and
answering rather than fetching. ``site`` is a real little website on loopback, for tests
of the crawler and of syncing.
"""

from __future__ import annotations

import pytest

from knowledge.index import store_document
from knowledge.models import Source, SourceKind
from tests.knowledge.site import LoopbackSite


class Pages:
    def __init__(self):
        self.source = Source.objects.create(kind=SourceKind.SITEMAP, location="https://shop.example/sitemap.xml")

    def add(self, path: str, title: str, markdown: str, **fields):
        url = f"https://shop.example{path}" if path.startswith("/") else path
        return store_document(source=self.source, url=url, title=title, markdown=markdown, **fields)


@pytest.fixture
def pages(db):
    return Pages()


@pytest.fixture
def site(settings):
    """A small website on 127.0.0.1 (tests/knowledge/site.py) that the crawler may fetch:
    loopback is a private address, so this turns CHATBOT_KB_ALLOW_PRIVATE_HOSTS on, as an
    intranet install would. A test that shows the refusal turns it off again."""
    settings.CHATBOT_KB_ALLOW_PRIVATE_HOSTS = True
    with LoopbackSite() as running:
        yield running
