"""Fixtures for the knowledge base's tests."""

from __future__ import annotations

import pytest

from tests.knowledge.site import LoopbackSite


@pytest.fixture
def site(settings):
    """A small website on 127.0.0.1 (tests/knowledge/site.py) that the crawler may fetch:
    loopback is a private address, so this turns CHATBOT_KB_ALLOW_PRIVATE_HOSTS on, as an
    intranet install would. A test that shows the refusal turns it off again."""
    settings.CHATBOT_KB_ALLOW_PRIVATE_HOSTS = True
    with LoopbackSite() as running:
        yield running
