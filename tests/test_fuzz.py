"""Fuzzing: Schemathesis generates requests from /api/schema/ and checks every answer;
Hypothesis throws hostile text through store-and-load."""

from __future__ import annotations

import json
from base64 import b64encode

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from conversations.models import Message, Session

# pytest-django has set Django up by now, and serving the schema needs no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@pytest.fixture
def connection_kept_between_requests(transactional_db):
    """Django closes the database connection around each request; inside a test that
    would close the test's own transaction. Django's test client unhooks it the same way."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@schema.parametrize()
@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_request_the_schema_allows_gets_a_server_error_or_an_undocumented_answer(
    case, connection_kept_between_requests, settings
):
    settings.CHATBOT_RATELIMIT_ENABLE = False  # the fuzzer sends far more than a visitor would
    # Every check runs but one: "schema-valid data is accepted". Some of our refusals
    # (NUL characters and lone surrogates, which PostgreSQL cannot store; a forged paging
    # cursor; metadata over its size) are rules OpenAPI cannot express, so the schema
    # admits requests we rightly answer with a 400.
    case.call_and_validate(excluded_checks=[schemathesis.checks.positive_data_acceptance])


storable_text = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=400
).filter(str.strip)
hostile_text = st.one_of(
    storable_text,
    st.sampled_from(
        [
            "<img src=x onerror=alert(1)>",
            "[click](javascript:alert(1))",
            "'; DROP TABLE conversations_message; --",
            "\u202eevil\u202c",
            "🙂" * 50,
            "line one\r\nline two\n\n\ttabbed",
            "  leading and trailing spaces  ",
        ]
    ),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | storable_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(storable_text, children, max_size=3),
    max_leaves=8,
)


@given(content=hostile_text, metadata=st.dictionaries(storable_text, json_values, max_size=3))
@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_storable_text_comes_back_exactly_as_it_was_sent(api, db, settings, content, metadata):
    # Fidelity, not limits, is under test here (test_bad_input covers the limits).
    settings.CHATBOT_RATELIMIT_ENABLE = False
    settings.CHATBOT_MAX_METADATA_DEPTH = 100
    settings.CHATBOT_MAX_METADATA_BYTES = 1_000_000
    session = Session.objects.create()

    posted = api.post(
        f"/api/session/{session.public_id}/messages", {"message": content, "metadata": metadata}, format="json"
    )
    loaded = api.get(f"/api/session/{session.public_id}/messages")

    assert posted.status_code == 201, posted.content
    (message,) = loaded.json()["messages"]
    assert message["content"].encode("utf-8") == content.encode("utf-8")
    assert message["metadata"] == metadata


@pytest.mark.parametrize("content", ["nul \x00 byte", "lone \ud800 surrogate"])
def test_text_the_database_cannot_store_is_refused_before_anything_is_written(api, db, content):
    session = Session.objects.create()

    response = api.post(
        f"/api/session/{session.public_id}/messages",
        data=json.dumps({"message": content}),
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json()["success"] is False
    assert Message.objects.count() == 0


query_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=80)
cursors = st.one_of(
    query_text,
    # Shaped like DRF's own cursors (base64 of o=, r=, p=), with anything inside.
    st.builds(
        lambda fields: b64encode("&".join(f"{k}={v}" for k, v in fields.items()).encode()).decode(),
        st.dictionaries(st.sampled_from(["o", "r", "p"]), query_text, max_size=3),
    ),
)


def assert_answered(response, *, accepted: tuple[int, ...] = (200,)) -> None:
    """Either a page, or the API's 400 error body: never a 500 or an HTML page."""
    assert response.status_code in (*accepted, 400), response.content
    if response.status_code == 400:
        assert response.json()["success"] is False
        assert response.json()["error"]["code"] == "invalid"


@given(cursor=cursors)
@hypothesis_settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_cursor_is_a_page_or_a_400(staff_api, db, cursor):
    assert_answered(staff_api.get("/api/sessions/", {"cursor": cursor}))


@given(before=query_text, limit=query_text)
@hypothesis_settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_before_and_limit_are_a_page_or_a_400(api, db, before, limit):
    session, _ = Session.objects.get_or_create(title="fuzzed paging")
    assert_answered(api.get(f"/api/session/{session.public_id}/messages", {"before": before, "limit": limit}))
