"""Fixtures of the knowledge base's tests.

``pages`` stores pages straight into the index (no crawl), for tests about ranking and
answering rather than fetching.
"""

from __future__ import annotations

import pytest

from knowledge.index import store_document
from knowledge.models import Source, SourceKind


class Pages:
    def __init__(self):
        self.source = Source.objects.create(kind=SourceKind.SITEMAP, location="https://shop.example/sitemap.xml")

    def add(self, path: str, title: str, markdown: str, **fields):
        url = f"https://shop.example{path}" if path.startswith("/") else path
        return store_document(source=self.source, url=url, title=title, markdown=markdown, **fields)


@pytest.fixture
def pages(db):
    return Pages()
