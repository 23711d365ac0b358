"""Every domain error, mapped once (conversations/errors.py) to its HTTP status, its
body and headers, and the same body as a stream's ``error`` event."""

from __future__ import annotations

import json

import pytest
from django.db import OperationalError
from psycopg_pool import PoolTimeout

from conversations import streaming
from conversations.errors import api_error_for
from conversations.exceptions import Busy, ClientMessageIdReused, MessageTooLong, SessionNotFound
from conversations.llm import ModelError, ModelFailure


def pool_exhausted() -> OperationalError:
    try:
        try:
            raise PoolTimeout("couldn't get a connection after 3.00 sec")
        except PoolTimeout as cause:
            raise OperationalError(str(cause)) from cause
    except OperationalError as error:
        return error


RETRY = "Nothing was saved; the request can be retried."
CASES = [
    (SessionNotFound(), 404, "session_not_found", "No such session, or it has expired.", False, {}),
    (
        ClientMessageIdReused(),
        409,
        "client_message_id_reused",
        "This client_message_id was already used for a different message.",
        False,
        {},
    ),
    (
        MessageTooLong(length=5, limit=4),
        413,
        "message_too_long",
        "The message is 5 characters; at most 4 are allowed.",
        False,
        {},
    ),
    (
        Busy(retry_after=7),
        503,
        "busy",
        "The assistant is busy right now. Nothing was saved; retry in a moment.",
        True,
        {"Retry-After": "7"},
    ),
    *[
        (
            ModelError("The model failed.", kind=kind),
            504 if kind == ModelFailure.TIMEOUT else 502,
            kind.value,
            f"The model failed. {RETRY}",
            True,
            {},
        )
        for kind in ModelFailure
    ],
    (RuntimeError("a bug of ours"), 500, "internal_error", "Something went wrong on our side.", True, {}),
]


@pytest.mark.parametrize(
    ("error", "status", "code", "message", "retryable", "headers"),
    CASES,
    ids=[f"{type(case[0]).__name__}-{case[2]}" for case in CASES],
)
def test_each_error_has_one_status_body_and_stream_event(error, status, code, message, retryable, headers):
    mapped = api_error_for(error)

    assert mapped.status_code == status
    assert mapped.headers == headers
    expected_error = {"code": code, "message": message} | ({"retryable": True} if retryable else {})
    if headers.get("Retry-After"):
        expected_error["retry_after"] = int(headers["Retry-After"])
    assert mapped.body() == {"success": False, "error": expected_error}
    event = streaming.sse("error", mapped.body()).decode()
    assert event == f"event: error\ndata: {json.dumps(mapped.body())}\n\n"


def test_a_database_pool_with_no_free_connection_is_busy_not_a_bug(settings):
    settings.CHATBOT_BUSY_RETRY_AFTER = 2

    mapped = api_error_for(pool_exhausted())

    assert (mapped.status_code, mapped.code, mapped.headers) == (503, "busy", {"Retry-After": "2"})


@pytest.mark.parametrize("error", [ModelError("down", kind=ModelFailure.UNAVAILABLE), Busy(retry_after=1)])
def test_a_retryable_error_names_the_session_to_retry_in(error):
    assert api_error_for(error, session_id="S" * 32).body()["session_id"] == "S" * 32


def test_a_not_found_never_names_a_session():
    assert "session_id" not in api_error_for(SessionNotFound(), session_id="S" * 32).body()
