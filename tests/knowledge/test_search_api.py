"""GET /api/kb/search and ``manage.py kb_search``: for staff and the server, never visitors."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from tests.http import assert_error


@pytest.fixture
def shop(pages):
    pages.add("/shipping", "Shipping", "# Shipping\n\n## Abroad\n\nWe ship to Canada within five days.")
    pages.add("/returns", "Returns", "Returns are free within 30 days.")
    return pages


def test_staff_get_the_best_passages_first(staff_api, shop):
    response = staff_api.get("/api/kb/search", {"q": "Do you ship to Canada?", "limit": 5})

    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    (first,) = body["results"]
    assert {k: first[k] for k in ("url", "title", "heading", "snippet")} == {
        "url": "https://shop.example/shipping",
        "title": "Shipping",
        "heading": "Abroad",
        "snippet": "We ship to Canada within five days.",
    }
    assert first["score"] > 0


def test_the_server_api_key_may_search(api, shop, settings):
    settings.CHATBOT_SERVER_API_KEY = "server-secret"

    response = api.get("/api/kb/search", {"q": "returns"}, HTTP_AUTHORIZATION="Bearer server-secret")

    assert [r["url"] for r in response.json()["results"]] == ["https://shop.example/returns"]


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key"])
def test_anonymous_callers_are_refused(api, shop, settings, authorization):
    settings.CHATBOT_SERVER_API_KEY = "server-secret"
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}

    response = api.get("/api/kb/search", {"q": "returns"}, **headers)

    assert response.status_code == 403
    assert response.json()["success"] is False
    assert "results" not in response.json()


def test_a_visitor_logged_in_but_not_staff_is_refused(api, shop, django_user_model):
    api.force_login(django_user_model.objects.create_user("visitor", password="pw"))

    assert api.get("/api/kb/search", {"q": "returns"}).status_code == 403


@pytest.mark.parametrize("params", [{}, {"q": ""}, {"q": "ship", "limit": "0"}, {"q": "ship", "limit": "x"}])
def test_a_bad_query_is_a_json_400(staff_api, shop, params):
    assert_error(staff_api.get("/api/kb/search", params), 400)


def test_kb_search_prints_what_a_turn_would_find(shop, capsys):
    call_command("kb_search", "ship to canada")

    out = capsys.readouterr().out
    assert "Shipping > Abroad" in out
    assert "https://shop.example/shipping" in out
    assert "We ship to Canada within five days." in out
