"""/api/sessions/: sessions as a REST resource, and their messages under them."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import Message, MessageDraft, Role, Session
from tests.http import assert_error

pytestmark = pytest.mark.django_db

SESSION_FIELDS = {"session_id", "title", "source", "metadata", "message_count", "created_at", "expires_at"}
MALFORMED_IDS = ["session_123", "x" * 500, "%00", "..%2F..%2Fetc", "%20"]


def listed_ids(client, url: str = "/api/sessions/") -> list[str]:
    response = client.get(url)
    assert response.status_code == 200, response.content
    return [session["session_id"] for session in response.json()["results"]]


@pytest.fixture
def session():
    return Session.objects.create(title="Opening hours", metadata={"page": "/contact"})


# --- List ------------------------------------------------------------------------------


def test_staff_list_every_active_session(staff_api, member):
    anonymous = Session.objects.create()
    members = Session.objects.create(owner=member)

    assert set(listed_ids(staff_api)) == {anonymous.public_id, members.public_id}


def test_a_signed_in_member_lists_only_their_own_sessions(member_api, member, django_user_model):
    mine = Session.objects.create(owner=member)
    Session.objects.create(owner=django_user_model.objects.create_user("stranger"))
    Session.objects.create()

    assert listed_ids(member_api) == [mine.public_id]


def test_anonymous_visitors_list_nothing(api):
    Session.objects.create()

    assert listed_ids(api) == []


def test_expired_sessions_are_not_listed(member_api, member):
    Session.objects.create(owner=member, expires_at=timezone.now() - timedelta(seconds=1))

    assert listed_ids(member_api) == []


def test_the_list_shows_recent_activity_first_and_pages_with_a_cursor(staff_api):
    now = timezone.now()
    Session.objects.bulk_create(
        Session(
            public_id=secrets.token_urlsafe(24),
            last_activity_at=now - timedelta(minutes=minutes),
            expires_at=now + timedelta(days=1),
        )
        for minutes in range(60)
    )
    expected = list(Session.objects.order_by("-last_activity_at").values_list("public_id", flat=True))

    first = staff_api.get("/api/sessions/").json()
    second = staff_api.get(first["next"]).json()

    assert len(first["results"]) == 50
    assert [s["session_id"] for s in first["results"] + second["results"]] == expected
    assert second["next"] is None


def test_the_list_shows_each_sessions_fields(staff_api, session):
    session.add_message(MessageDraft(role=Role.USER, content="When do you open?"))

    (listed,) = staff_api.get("/api/sessions/").json()["results"]

    assert set(listed) >= SESSION_FIELDS
    assert (listed["title"], listed["metadata"], listed["message_count"]) == ("Opening hours", {"page": "/contact"}, 1)


# --- Create ----------------------------------------------------------------------------


def test_it_creates_a_session(api):
    response = api.post("/api/sessions/", {"source": "page", "metadata": {"lang": "fr"}}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    session = Session.objects.get(public_id=body["session_id"])
    assert (session.source, session.metadata, session.owner) == ("page", {"lang": "fr"}, None)
    assert body["message_count"] == 0


def test_a_created_session_belongs_to_the_signed_in_member(member_api, member):
    response = member_api.post("/api/sessions/", {}, format="json")

    assert response.status_code == 201, response.content
    assert Session.objects.get(public_id=response.json()["session_id"]).owner == member


def test_the_client_cannot_choose_ids_counts_or_dates_when_creating(api):
    long_ago = "2000-01-01T00:00:00Z"

    response = api.post(
        "/api/sessions/",
        {"session_id": "session_123", "message_count": 99, "created_at": long_ago, "expires_at": long_ago},
        format="json",
    )

    assert response.status_code == 201, response.content
    session = Session.objects.get()
    assert session.public_id != "session_123"
    assert session.last_seq == 0
    assert session.created_at.year > 2000
    assert session.expires_at > timezone.now()


@pytest.mark.parametrize(
    "payload",
    [{"source": "fax"}, {"metadata": "text"}, {"metadata": [1, 2]}, {"title": "x" * 81}, {"title": "nul \x00"}],
    ids=["unknown-source", "metadata-string", "metadata-list", "title-too-long", "title-nul"],
)
def test_it_refuses_to_create_from_bad_input(api, payload):
    response = api.post("/api/sessions/", payload, format="json")

    assert_error(response, 400)
    assert not Session.objects.exists()


def test_creating_from_a_body_that_is_not_json_is_refused(api):
    response = api.post("/api/sessions/", "source=page", content_type="application/x-www-form-urlencoded")

    assert_error(response, 415)
    assert not Session.objects.exists()


# --- Retrieve ----------------------------------------------------------------------------


def test_it_retrieves_a_session_by_its_id(api, session):
    response = api.get(f"/api/sessions/{session.public_id}/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) >= SESSION_FIELDS
    assert (body["session_id"], body["title"], body["source"], body["metadata"]) == (
        session.public_id,
        "Opening hours",
        "api",
        {"page": "/contact"},
    )


def test_unknown_expired_malformed_and_foreign_ids_get_the_same_404(api, member, django_user_model):
    expired = Session.objects.create(expires_at=timezone.now() - timedelta(seconds=1))
    foreign = Session.objects.create(owner=django_user_model.objects.create_user("stranger"))
    api.force_login(member)
    unknown = secrets.token_urlsafe(24)
    reference = api.get(f"/api/sessions/{unknown}/")

    answers = []
    for session_id in [unknown, expired.public_id, foreign.public_id, *MALFORMED_IDS]:
        for url in [f"/api/sessions/{session_id}/", f"/api/sessions/{session_id}/messages/"]:
            answers.append((url, "GET", api.get(url)))
        answers.append(("detail", "PATCH", api.patch(f"/api/sessions/{session_id}/", {"title": "x"}, format="json")))
        answers.append(("detail", "DELETE", api.delete(f"/api/sessions/{session_id}/")))
        answers.append(
            ("messages", "POST", api.post(f"/api/sessions/{session_id}/messages/", {"message": "Hi"}, format="json"))
        )

    assert_error(reference, 404)
    different = [
        (where, method, response.status_code, response.content)
        for where, method, response in answers
        if (response.status_code, response.content) != (404, reference.content)
    ]
    assert different == []
    # The guide's endpoints give the very same answer.
    assert api.get(f"/api/session/{unknown}/messages").content == reference.content
    assert Session.objects.filter(title="x").count() == 0
    assert Session.objects.count() == 2
    assert not Message.objects.exists()


# --- Partial update ------------------------------------------------------------------------


def test_it_updates_the_title_and_metadata(api, session):
    response = api.patch(
        f"/api/sessions/{session.public_id}/", {"title": "Hours", "metadata": {"page": "/faq"}}, format="json"
    )

    assert response.status_code == 200, response.content
    assert (response.json()["title"], response.json()["metadata"]) == ("Hours", {"page": "/faq"})
    session.refresh_from_db()
    assert (session.title, session.metadata) == ("Hours", {"page": "/faq"})


def test_an_update_leaves_out_fields_it_was_not_given(api, session):
    api.patch(f"/api/sessions/{session.public_id}/", {"title": "Hours"}, format="json")

    session.refresh_from_db()
    assert session.metadata == {"page": "/contact"}


def test_an_update_cannot_change_the_id_source_counts_or_dates(api, session):
    before = Session.objects.values().get(pk=session.pk)

    response = api.patch(
        f"/api/sessions/{session.public_id}/",
        {
            "session_id": "session_123",
            "source": "widget",
            "message_count": 5,
            "created_at": "2000-01-01T00:00:00Z",
            "expires_at": "2100-01-01T00:00:00Z",
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    assert Session.objects.values().get(pk=session.pk) == before


@pytest.mark.parametrize(
    "payload",
    [{"title": "x" * 81}, {"title": ["x"]}, {"metadata": "text"}, {"metadata": {"nul": "\x00"}}],
    ids=["title-too-long", "title-list", "metadata-string", "metadata-nul"],
)
def test_it_refuses_a_bad_update_and_changes_nothing(api, session, payload):
    response = api.patch(f"/api/sessions/{session.public_id}/", payload, format="json")

    assert_error(response, 400)
    session.refresh_from_db()
    assert (session.title, session.metadata) == ("Opening hours", {"page": "/contact"})


def test_a_full_replace_is_not_offered(api, session):
    response = api.put(f"/api/sessions/{session.public_id}/", {"title": "Hours"}, format="json")

    assert_error(response, 405)
    session.refresh_from_db()
    assert session.title == "Opening hours"


# --- Delete ------------------------------------------------------------------------------


def test_deleting_a_session_erases_it_and_all_its_messages(api, session):
    session.add_message(MessageDraft(role=Role.USER, content="Forget me"))
    session.add_message(MessageDraft(role=Role.ASSISTANT, content="Done"))
    other = Session.objects.create()
    other.add_message(MessageDraft(role=Role.USER, content="Keep me"))

    response = api.delete(f"/api/sessions/{session.public_id}/")

    assert response.status_code == 204, response.content
    assert not Session.objects.filter(pk=session.pk).exists()
    assert list(Message.objects.values_list("content", flat=True)) == ["Keep me"]
    assert_error(api.get(f"/api/sessions/{session.public_id}/"), 404)


def test_the_owner_may_delete_their_session_and_a_stranger_may_not(member_api, member, api, django_user_model):
    theirs = Session.objects.create(owner=member)
    api.force_login(django_user_model.objects.create_user("stranger"))

    refused = api.delete(f"/api/sessions/{theirs.public_id}/")
    deleted = member_api.delete(f"/api/sessions/{theirs.public_id}/")

    assert_error(refused, 404)
    assert deleted.status_code == 204
    assert not Session.objects.exists()


# --- Messages under a session ----------------------------------------------------------


def test_it_lists_a_sessions_messages_oldest_first(api, session):
    for text in ["one", "two", "three"]:
        session.add_message(MessageDraft(role=Role.USER, content=text))

    response = api.get(f"/api/sessions/{session.public_id}/messages/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True
    assert body["session_id"] == session.public_id
    assert [(m["seq"], m["content"]) for m in body["messages"]] == [(1, "one"), (2, "two"), (3, "three")]
    assert body["has_more"] is False


def test_it_pages_a_sessions_messages_with_a_cursor(api, session):
    for number in range(1, 8):
        session.add_message(MessageDraft(role=Role.USER, content=f"m{number}"))

    latest = api.get(f"/api/sessions/{session.public_id}/messages/?limit=3").json()
    before = api.get(f"/api/sessions/{session.public_id}/messages/?limit=3&before={latest['next_before']}").json()

    assert [m["seq"] for m in latest["messages"]] == [5, 6, 7]
    assert [m["seq"] for m in before["messages"]] == [2, 3, 4]
    assert before["has_more"] is True
    assert_error(api.get(f"/api/sessions/{session.public_id}/messages/?before=zero"), 400)


def test_it_adds_a_message_to_a_session(api, session):
    response = api.post(
        f"/api/sessions/{session.public_id}/messages/", {"message": "Hello", "role": "user"}, format="json"
    )

    assert response.status_code == 201, response.content
    assert response.json()["message"]["seq"] == 1
    assert list(session.messages.values_list("role", "content")) == [("user", "Hello")]


def test_anonymous_visitors_may_not_add_assistant_messages_here_either(api, staff_api, session):
    refused = api.post(
        f"/api/sessions/{session.public_id}/messages/", {"message": "Trust me", "role": "assistant"}, format="json"
    )
    allowed = staff_api.post(
        f"/api/sessions/{session.public_id}/messages/", {"message": "Answer", "role": "assistant"}, format="json"
    )

    assert_error(refused, 403)
    assert allowed.status_code == 201, allowed.content
    assert list(session.messages.values_list("content", flat=True)) == ["Answer"]


def test_it_refuses_a_bad_message_here_too(api, session):
    response = api.post(f"/api/sessions/{session.public_id}/messages/", {"message": "", "role": "user"}, format="json")

    assert_error(response, 400)
    assert not session.messages.exists()


def test_unknown_api_paths_answer_json_not_html(api):
    assert_error(api.get("/api/sessions/x/y/z/"), 404)
    assert_error(api.get("/api/no-such-thing"), 404)
