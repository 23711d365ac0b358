"""Errors: the API answers every failure, a bug included, with its JSON error body; pages
answer with a page."""

from __future__ import annotations

import pytest
from django.urls import include, path
from rest_framework.views import APIView

from chatbot.urls import handler404, handler500  # noqa: F401 - Django looks for them here, as in the root URLconf

pytestmark = pytest.mark.django_db


class Broken(APIView):
    def get(self, request):
        raise RuntimeError("a bug")


def broken_page(request):
    raise RuntimeError("a bug")


# The project's URLs, plus an API view and a page with a bug in each.
urlpatterns = [
    path("api/broken", Broken.as_view()),
    path("broken-page", broken_page),
    path("", include("chatbot.urls")),
]


@pytest.mark.urls("tests.test_errors")
@pytest.mark.parametrize("debug", [True, False])
def test_an_unexpected_error_is_a_json_500_that_may_be_retried(client, settings, debug, caplog):
    settings.DEBUG = debug

    response = client.get("/api/broken")

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "success": False,
        "error": {"code": "internal_error", "message": "Something went wrong on our side.", "retryable": True},
    }
    assert any(record.name == "django.request" and record.exc_info for record in caplog.records)


@pytest.mark.urls("tests.test_errors")
def test_an_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/nothing-here")

    assert response.status_code == 404
    assert response.json() == {"success": False, "error": {"code": "not_found", "message": "Not found."}}


def test_an_unknown_page_is_a_friendly_404_page(client):
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert "<h1>Page not found</h1>" in response.content.decode()
    assert 'href="/chat"' in response.content.decode()


@pytest.mark.urls("tests.test_errors")
def test_a_bug_outside_the_api_is_a_plain_500_page(client):
    client.raise_request_exception = False

    response = client.get("/broken-page")

    assert response.status_code == 500
    assert "<h1>Something went wrong</h1>" in response.content.decode()
