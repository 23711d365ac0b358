"""Hostile and broken requests get a clear JSON 4xx, and nothing is written."""

from __future__ import annotations

import json

import pytest

from conversations.models import Message, Session
from tests.http import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def nothing_is_written(db):
    yield
    assert Session.objects.count() == 0
    assert Message.objects.count() == 0


def post_raw(client, body, content_type="application/json", path="/api/chat"):
    return client.post(path, data=body, content_type=content_type)


@pytest.mark.parametrize("path", ["/api/chat", "/api/session/create", "/api/sessions/"])
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
)
def test_only_json_bodies_are_accepted(client, path, content_type):
    assert_error(post_raw(client, "query=hi", content_type, path), 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"query": "unterminated', b"\xff\xfe\xfa invalid utf-8", b'{"query": "\xc3\x28"}', b""],
    ids=["malformed", "truncated", "binary", "invalid utf-8 in a string", "empty"],
)
def test_unreadable_bodies_are_a_400(client, body):
    assert_error(post_raw(client, body), 400)


def test_a_deeply_nested_body_is_a_400_not_a_crash(client):
    assert_error(post_raw(client, "[" * 30_000 + "]" * 30_000), 400)  # under the size cap


def test_a_body_over_the_size_limit_is_a_413(client, settings):
    settings.CHATBOT_MAX_BODY_BYTES = 2048

    assert_error(post_raw(client, json.dumps({"query": "x" * 4096})), 413, "body_too_large")


@pytest.mark.parametrize("path", ["/api/chat", "/api/session/create", "/api/sessions/"])
def test_a_body_past_djangos_own_buffer_limit_is_a_413_not_a_500(client, path):
    # Django raises RequestDataTooBig past DATA_UPLOAD_MAX_MEMORY_SIZE; it once came out as a 500.
    assert_error(post_raw(client, json.dumps({"query": "x" * 3_000_000}), path=path), 413, "body_too_large")


@pytest.mark.parametrize("charset", ["utf-7", "UTF-16", "latin-1", "us-ascii"])
def test_json_in_another_charset_than_utf_8_is_a_415(client, charset):
    body = '{"query": "+ADw-script+AD4-alert(1)+ADw-/script+AD4-"}'

    response = post_raw(client, body, f"application/json; charset={charset}")

    assert_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "utf8", '"utf-8"'])
def test_json_that_names_utf_8_is_read(client, charset):
    # Read, then refused for its shape (so nothing is written): not a 415.
    assert_error(post_raw(client, '{"query": 5}', f"application/json; charset={charset}"), 400, "invalid")


@pytest.mark.parametrize(
    "body",
    [
        '{"query": "hi", "query": "<script>"}',
        '{"query": "hi", "metadata": {"a": 1, "a": 2}}',
        '[{"x": 1, "x": 1}]',
    ],
)
def test_json_objects_with_duplicate_keys_are_a_400(client, body):
    response = post_raw(client, body)

    assert_error(response, 400, "parse_error")
    assert "duplicate key" in response.json()["error"]["message"]


@pytest.mark.parametrize("body", ['{"query": NaN}', '{"query": "hi", "metadata": {"x": Infinity}}'])
def test_non_json_numbers_are_a_400(client, body):
    assert_error(post_raw(client, body), 400, "parse_error")


@pytest.mark.parametrize(
    "body",
    [
        [],
        "just a string",
        {"query": 5},
        {"query": ["hi"]},
        {"query": None},
        {"query": "hi", "stream": "yes"},
        {"query": "hi", "channel": "sms"},
        {"query": "hi", "client_message_id": 12},
        {"message": "the wrong field name"},
    ],
)
def test_wrong_shapes_and_types_are_a_400(client, body):
    assert_error(post_raw(client, json.dumps(body)), 400, "invalid")


def test_a_nul_byte_in_the_query_is_a_400(client):
    assert_error(post_raw(client, json.dumps({"query": "before\u0000after"})), 400, "invalid")


def test_a_lone_surrogate_in_the_query_is_a_400(client):
    assert_error(post_raw(client, '{"query": "broken \\ud800 text"}'), 400, "invalid")


def test_validation_errors_name_the_field(client):
    response = post_raw(client, json.dumps({"query": "hi", "channel": "sms"}))

    assert "channel" in response.json()["fields"]


def test_unknown_api_paths_and_methods_answer_json(client):
    assert_error(client.get("/api/nothing-here"), 404, "not_found")
    assert_error(client.get("/api/chat"), 405, "method_not_allowed")


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1@evil.example", "bad host"])
def test_a_request_django_refuses_before_any_view_is_a_json_400_under_the_api(client, host):
    assert_error(client.get("/api/sessions/", HTTP_HOST=host), 400, "bad_request")
    assert client.get("/chat", HTTP_HOST=host).status_code == 400  # pages keep Django's own page
