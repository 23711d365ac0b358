"""Every query parameter a client can get wrong (paging cursors, ``before``, ``limit``)
answers 400 with the API's error body, never a 500."""

from __future__ import annotations

from base64 import b64encode

import pytest

from conversations.models import Session
from conversations.views import RecentActivityPagination
from tests.http import assert_error

pytestmark = pytest.mark.django_db


def cursor(querystring: str) -> str:
    """A cursor as DRF writes them: base64 of a query string (o=offset, r=reverse, p=position)."""
    return b64encode(querystring.encode()).decode()


MALFORMED_CURSORS = [
    "cD1nYXJiYWdl",  # base64 of "p=garbage": a position that is not a timestamp
    cursor("p=2020-01-01"),  # a date without a time zone
    cursor("p=2020-13-45 99:99:99+00:00"),  # shaped like a timestamp, but none
    cursor("o=-1"),
    cursor("o=x"),
    cursor("r=maybe"),
    cursor("p=" + "9" * 5000),
    "%%%",  # not base64 at all
    "cD1nYXJiYWdl!!!",  # base64 with junk DRF's decoder would skip
    "cj14",
    "ünïcödé",
    "\x00",
]


@pytest.mark.parametrize("value", MALFORMED_CURSORS)
@pytest.mark.parametrize("client", ["api", "staff_api"])
def test_a_malformed_cursor_is_a_400(request, client, value):
    response = request.getfixturevalue(client).get("/api/sessions/", {"cursor": value})

    assert_error(response, 400, "invalid")
    assert "cursor" in response.json()["fields"]


def test_the_cursors_the_api_writes_still_page(staff_api, monkeypatch):
    monkeypatch.setattr(RecentActivityPagination, "page_size", 2)
    created = {Session.objects.create().public_id for _ in range(3)}

    first = staff_api.get("/api/sessions/")
    second = staff_api.get(first.json()["next"])

    assert second.status_code == 200
    assert {s["session_id"] for s in first.json()["results"] + second.json()["results"]} == created


@pytest.mark.parametrize(
    "query",
    [
        "before=abc",
        "before=0",
        "before=-5",
        "before=1.5",
        "before=%00",
        "before=1e3",
        "limit=0",
        "limit=-1",
        "limit=ten",
        "limit=%F0%9F%99%82",
        "limit=1&limit=x",
    ],
)
@pytest.mark.parametrize("path", ["/api/session/{id}/messages", "/api/sessions/{id}/messages/"])
def test_a_malformed_paging_parameter_is_a_400(api, path, query):
    session = Session.objects.create()

    response = api.get(path.format(id=session.public_id) + "?" + query)

    assert_error(response, 400, "invalid")
