"""/healthz: what a load balancer asks before it sends a server traffic."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import OperationalError, connection

pytestmark = pytest.mark.django_db


def test_it_answers_200_when_the_database_answers(api):
    response = api.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"success": True, "status": "ok"}


def test_it_asks_the_database(api, django_assert_num_queries):
    with django_assert_num_queries(1):
        api.get("/healthz")


def test_it_answers_503_json_when_the_database_does_not(api):
    with mock.patch.object(connection, "cursor", side_effect=OperationalError("connection refused")):
        response = api.get("/healthz")

    assert response.status_code == 503
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "database_unavailable"
    assert body["error"]["message"]
    assert "connection refused" not in response.content.decode()  # no internals leak


def test_it_answers_503_when_the_database_fails_the_query(api):
    cursor = mock.MagicMock()
    cursor.__enter__.return_value.execute.side_effect = OperationalError("server closed the connection")

    with mock.patch.object(connection, "cursor", return_value=cursor):
        response = api.get("/healthz")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"


def test_it_needs_no_login_and_no_trailing_slash(api):
    assert api.get("/healthz").status_code == 200
    assert api.head("/healthz").status_code == 200
