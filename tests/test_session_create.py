"""POST /api/session/create: the integration guide's way to start a conversation."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pytest

from conversations.models import Session
from tests.http import assert_error

pytestmark = pytest.mark.django_db


def test_it_creates_a_session_with_no_body_like_the_guides_curl(api):
    response = api.post("/api/session/create")

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"success", "session_id", "created_at", "expires_at"}
    assert body["success"] is True
    session = Session.objects.get(public_id=body["session_id"])
    assert session.source == "api"
    assert session.metadata == {}
    assert session.owner is None


def test_it_answers_with_the_creation_time_and_an_expiry_30_days_later(api):
    body = api.post("/api/session/create", {}, format="json").json()

    created_at = datetime.fromisoformat(body["created_at"])
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert created_at.tzinfo is not None
    assert expires_at - created_at == pytest.approx(timedelta(days=30), abs=timedelta(seconds=5))


def test_the_session_id_is_long_random_and_url_safe(api):
    first = api.post("/api/session/create").json()["session_id"]
    second = api.post("/api/session/create").json()["session_id"]

    assert re.fullmatch(r"[A-Za-z0-9_-]{22,}", first)
    assert first != second
    assert first[:6] != second[:6]


def test_it_stores_the_source_and_metadata_it_is_given(api):
    response = api.post(
        "/api/session/create", {"source": "widget", "metadata": {"page": "/pricing", "lang": "en"}}, format="json"
    )

    assert response.status_code == 201, response.content
    session = Session.objects.get(public_id=response.json()["session_id"])
    assert session.source == "widget"
    assert session.metadata == {"page": "/pricing", "lang": "en"}


def test_it_never_takes_the_session_id_from_the_client(api):
    response = api.post("/api/session/create", {"session_id": "session_123", "public_id": "session_123"}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["session_id"] != "session_123"
    assert not Session.objects.filter(public_id="session_123").exists()


def test_a_signed_in_users_session_is_theirs(member_api, member):
    response = member_api.post("/api/session/create")

    assert Session.objects.get(public_id=response.json()["session_id"]).owner == member


@pytest.mark.parametrize(
    "payload",
    [
        {"source": "email"},
        {"source": ["widget"]},
        {"metadata": "not an object"},
        {"metadata": ["a", "list"]},
        {"metadata": 42},
        {"metadata": {"a": {"b": {"c": {"d": {"e": {"f": "too deep"}}}}}}},
        {"metadata": {"blob": "x" * 10_000}},
        {"metadata": {"text": "nul \x00 byte"}},
    ],
    ids=[
        "unknown-source",
        "source-list",
        "metadata-string",
        "metadata-list",
        "metadata-number",
        "metadata-too-deep",
        "metadata-too-big",
        "metadata-nul",
    ],
)
def test_it_refuses_bad_input_and_creates_nothing(api, payload):
    response = api.post("/api/session/create", payload, format="json")

    assert_error(response, 400)
    assert not Session.objects.exists()


def test_it_refuses_a_json_array_body(api):
    response = api.post("/api/session/create", "[]", content_type="application/json")

    assert_error(response, 400)
    assert not Session.objects.exists()


def test_it_refuses_malformed_json(api):
    response = api.post("/api/session/create", '{"source": ', content_type="application/json")

    assert_error(response, 400)
    assert not Session.objects.exists()


def test_it_refuses_a_body_that_is_not_json(api):
    response = api.post("/api/session/create", "source=widget", content_type="application/x-www-form-urlencoded")

    assert_error(response, 415)
    assert not Session.objects.exists()


def test_the_metadata_size_limit_comes_from_settings(api, settings):
    settings.CHATBOT_MAX_METADATA_BYTES = 64
    padding = 64 - len(json.dumps({"a": ""}))

    fits = api.post("/api/session/create", {"metadata": {"a": "x" * padding}}, format="json")
    too_big = api.post("/api/session/create", {"metadata": {"a": "x" * (padding + 1)}}, format="json")

    assert fits.status_code == 201, fits.content
    assert_error(too_big, 400)
    assert Session.objects.count() == 1


def test_the_metadata_depth_limit_counts_nested_objects_and_arrays(api, settings):
    settings.CHATBOT_MAX_METADATA_DEPTH = 2

    for fits in [{"a": 1}, {"a": {"b": "c"}}, {"a": ["b", "c"]}]:
        response = api.post("/api/session/create", {"metadata": fits}, format="json")
        assert response.status_code == 201, (fits, response.content)
    for too_deep in [{"a": {"b": {"c": 1}}}, {"a": [["b"]]}, {"a": [{"b": 1}]}]:
        assert_error(api.post("/api/session/create", {"metadata": too_deep}, format="json"), 400)
    assert Session.objects.count() == 3


def test_it_answers_other_methods_with_a_json_405(api):
    response = api.get("/api/session/create")

    assert_error(response, 405)
