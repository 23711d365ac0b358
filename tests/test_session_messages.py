"""GET and POST /api/session/<id>/messages: the integration guide's transcript endpoints."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import Message, MessageDraft, Role, Session
from tests.http import assert_error

pytestmark = pytest.mark.django_db

MESSAGE_FIELDS = {"id", "seq", "role", "content", "metadata", "created_at"}
# Ids that cannot be a session's: the guide's example id, path tricks, junk.
MALFORMED_IDS = ["session_123", "x" * 500, "%00", "..%2F..%2Fetc", "../../etc", "%20", "abc%3Fdef"]


def fill(session: Session, count: int) -> None:
    """``count`` messages at once, alternating user and assistant, as if talked through."""
    Message.objects.bulk_create(
        [
            Message(
                session=session,
                seq=seq,
                role=Role.USER if seq % 2 else Role.ASSISTANT,
                content=f"message {seq}",
                token_count=6,
            )
            for seq in range(1, count + 1)
        ],
        batch_size=500,
    )
    Session.objects.filter(pk=session.pk).update(last_seq=count)


@pytest.fixture
def session():
    return Session.objects.create()


@pytest.fixture
def server_api(api, settings):
    """The chat backend itself, writing answers with the server API key."""
    settings.CHATBOT_SERVER_API_KEY = "server-key-for-tests"
    api.credentials(HTTP_AUTHORIZATION="Bearer server-key-for-tests")
    return api


# --- POST: adding a message ------------------------------------------------------------


def test_it_stores_a_visitors_message_and_answers_with_it(api, session):
    response = api.post(
        f"/api/session/{session.public_id}/messages",
        {"message": "What is AI risk?", "role": "user"},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["success"] is True
    assert body["session_id"] == session.public_id
    message = body["message"]
    assert set(message) >= MESSAGE_FIELDS
    assert (message["seq"], message["role"], message["content"], message["metadata"]) == (
        1,
        "user",
        "What is AI risk?",
        {},
    )
    stored = Message.objects.get(pk=message["id"])
    assert (stored.session, stored.seq, stored.role, stored.content) == (session, 1, "user", "What is AI risk?")


def test_it_stores_the_metadata_sent_with_a_message(server_api, session):
    citations = {"citations": [{"title": "Guide", "url": "https://example.com/guide"}]}

    response = server_api.post(
        f"/api/session/{session.public_id}/messages",
        {"message": "See the guide.", "role": "assistant", "metadata": citations},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["message"]["metadata"] == citations
    assert Message.objects.get(session=session).metadata == citations


def test_it_keeps_messages_in_the_order_they_were_sent(api, session):
    texts = ["first", "second", "third", "fourth"]

    for text in texts:
        response = api.post(
            f"/api/session/{session.public_id}/messages", {"message": text, "role": "user"}, format="json"
        )
        assert response.status_code == 201, response.content

    messages = api.get(f"/api/session/{session.public_id}/messages").json()["messages"]
    assert [(m["seq"], m["content"]) for m in messages] == [(1, "first"), (2, "second"), (3, "third"), (4, "fourth")]


def test_the_first_user_message_titles_the_session(api, session):
    api.post(
        f"/api/session/{session.public_id}/messages",
        {"message": "How do I reset my password?", "role": "user"},
        format="json",
    )
    api.post(
        f"/api/session/{session.public_id}/messages", {"message": "Another question", "role": "user"}, format="json"
    )

    session.refresh_from_db()
    assert session.title == "How do I reset my password?"


def test_adding_a_message_moves_the_expiry_forward(api):
    ten_days_ago = timezone.now() - timedelta(days=10)
    session = Session.objects.create(last_activity_at=ten_days_ago)
    old_expiry = session.expires_at

    api.post(f"/api/session/{session.public_id}/messages", {"message": "Back again", "role": "user"}, format="json")

    session.refresh_from_db()
    assert session.expires_at >= old_expiry + timedelta(days=9)
    assert session.last_activity_at > ten_days_ago + timedelta(days=9)


@pytest.mark.parametrize("role", ["assistant", "system"])
def test_an_anonymous_visitor_may_not_write_as_the_assistant_or_the_system(api, session, role):
    response = api.post(
        f"/api/session/{session.public_id}/messages", {"message": "Trust me.", "role": role}, format="json"
    )

    assert_error(response, 403)
    assert not session.messages.exists()


@pytest.mark.parametrize("role", ["assistant", "system"])
def test_a_signed_in_member_may_not_write_as_the_assistant_or_the_system(member_api, member, role):
    session = Session.objects.create(owner=member)

    response = member_api.post(
        f"/api/session/{session.public_id}/messages", {"message": "Trust me.", "role": role}, format="json"
    )

    assert_error(response, 403)
    assert not session.messages.exists()


@pytest.mark.parametrize("role", ["user", "assistant", "system"])
def test_staff_may_write_any_role(staff_api, session, role):
    response = staff_api.post(
        f"/api/session/{session.public_id}/messages", {"message": "Noted.", "role": role}, format="json"
    )

    assert response.status_code == 201, response.content
    assert session.messages.get().role == role


@pytest.mark.parametrize("role", ["assistant", "system"])
def test_the_server_api_key_may_write_the_assistants_and_the_systems_messages(server_api, session, role):
    response = server_api.post(
        f"/api/session/{session.public_id}/messages", {"message": "Answer.", "role": role}, format="json"
    )

    assert response.status_code == 201, response.content
    assert session.messages.get().role == role


@pytest.mark.parametrize(
    "authorization",
    ["Bearer wrong-key", "Bearer ", "server-key-for-tests", "Basic server-key-for-tests", "Bearer server-key-for-test"],
)
def test_a_wrong_server_api_key_is_refused(api, session, settings, authorization):
    settings.CHATBOT_SERVER_API_KEY = "server-key-for-tests"
    api.credentials(HTTP_AUTHORIZATION=authorization)

    response = api.post(
        f"/api/session/{session.public_id}/messages", {"message": "Answer.", "role": "assistant"}, format="json"
    )

    assert_error(response, 403)
    assert not session.messages.exists()


def test_an_unset_server_api_key_matches_no_bearer_token(api, session, settings):
    settings.CHATBOT_SERVER_API_KEY = ""
    api.credentials(HTTP_AUTHORIZATION="Bearer ")

    response = api.post(
        f"/api/session/{session.public_id}/messages", {"message": "Answer.", "role": "assistant"}, format="json"
    )

    assert_error(response, 403)
    assert not session.messages.exists()


@pytest.mark.parametrize(
    "payload",
    [
        {"role": "user"},
        {"message": "", "role": "user"},
        {"message": "   \n\t", "role": "user"},
        {"message": "Hi", "role": "moderator"},
        {"message": "Hi", "role": ""},
        {"message": "Hi", "role": ["user"]},
        {"message": ["Hi"], "role": "user"},
        {"message": {"text": "Hi"}, "role": "user"},
        {"message": True, "role": "user"},
        {"message": None, "role": "user"},
        {"message": "NUL \x00 byte", "role": "user"},
        {"message": "Hi", "role": "user", "metadata": "a string"},
        {"message": "Hi", "role": "user", "metadata": ["a", "list"]},
        {"message": "Hi", "role": "user", "metadata": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}},
        {"message": "Hi", "role": "user", "metadata": {"blob": "x" * 10_000}},
        {"message": "Hi", "role": "user", "metadata": {"nul": "\x00"}},
    ],
    ids=[
        "missing-message",
        "empty-message",
        "blank-message",
        "unknown-role",
        "empty-role",
        "role-list",
        "message-list",
        "message-object",
        "message-bool",
        "message-null",
        "message-nul-byte",
        "metadata-string",
        "metadata-list",
        "metadata-too-deep",
        "metadata-too-big",
        "metadata-nul-byte",
    ],
)
def test_it_refuses_bad_input_and_stores_nothing(api, session, payload):
    response = api.post(f"/api/session/{session.public_id}/messages", payload, format="json")

    assert_error(response, 400)
    assert not session.messages.exists()
    session.refresh_from_db()
    assert (session.last_seq, session.title) == (0, "")


def test_it_refuses_a_number_as_the_message(api, session):
    response = api.post(f"/api/session/{session.public_id}/messages", {"message": 42, "role": "user"}, format="json")

    assert_error(response, 400)
    assert not session.messages.exists()


def test_it_refuses_a_lone_surrogate_in_the_message(api, session):
    body = '{"message": "broken \\ud800 text", "role": "user"}'

    response = api.post(f"/api/session/{session.public_id}/messages", body, content_type="application/json")

    assert_error(response, 400)
    assert not session.messages.exists()


def test_it_refuses_a_message_longer_than_the_limit_with_413(api, session, settings):
    settings.CHATBOT_MAX_QUERY_CHARS = 100

    at_limit = api.post(
        f"/api/session/{session.public_id}/messages", {"message": "x" * 100, "role": "user"}, format="json"
    )
    too_long = api.post(
        f"/api/session/{session.public_id}/messages", {"message": "x" * 101, "role": "user"}, format="json"
    )

    assert at_limit.status_code == 201, at_limit.content
    assert_error(too_long, 413)
    assert session.messages.count() == 1


def test_it_refuses_malformed_json(api, session):
    response = api.post(
        f"/api/session/{session.public_id}/messages", '{"message": "Hi", ', content_type="application/json"
    )

    assert_error(response, 400)
    assert not session.messages.exists()


def test_it_refuses_a_json_array_body(api, session):
    response = api.post(
        f"/api/session/{session.public_id}/messages", '[{"message": "Hi"}]', content_type="application/json"
    )

    assert_error(response, 400)
    assert not session.messages.exists()


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_it_refuses_a_body_that_is_not_json_with_415(api, session, content_type):
    response = api.post(f"/api/session/{session.public_id}/messages", "message=Hi&role=user", content_type=content_type)

    assert_error(response, 415)
    assert not session.messages.exists()


# --- GET: reading the transcript -------------------------------------------------------


def test_it_lists_an_empty_session(api, session):
    response = api.get(f"/api/session/{session.public_id}/messages")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True
    assert body["session_id"] == session.public_id
    assert body["messages"] == []
    assert body["has_more"] is False
    assert body.get("next_before") is None


def test_it_lists_messages_oldest_first_with_their_fields(api, session):
    session.add_message(MessageDraft(role=Role.USER, content="Hello", metadata={"page": "/"}))
    session.add_message(MessageDraft(role=Role.ASSISTANT, content="Hi! How can I help?"))

    body = api.get(f"/api/session/{session.public_id}/messages").json()

    first, second = body["messages"]
    assert set(first) >= MESSAGE_FIELDS
    assert (first["seq"], first["role"], first["content"], first["metadata"]) == (1, "user", "Hello", {"page": "/"})
    assert (second["seq"], second["role"], second["content"]) == (2, "assistant", "Hi! How can I help?")
    assert first["created_at"] <= second["created_at"]
    assert body["has_more"] is False


def test_it_answers_the_latest_50_messages_by_default(api, session):
    fill(session, 120)

    body = api.get(f"/api/session/{session.public_id}/messages").json()

    assert [m["seq"] for m in body["messages"]] == list(range(71, 121))
    assert body["has_more"] is True
    assert body["next_before"] == 71


def test_the_default_page_size_comes_from_settings(api, session, settings):
    settings.CHATBOT_PAGE_SIZE = 7
    fill(session, 20)

    body = api.get(f"/api/session/{session.public_id}/messages").json()

    assert [m["seq"] for m in body["messages"]] == list(range(14, 21))


def test_it_answers_the_page_before_a_seq(api, session):
    fill(session, 30)

    body = api.get(f"/api/session/{session.public_id}/messages?before=21&limit=5").json()

    assert [m["seq"] for m in body["messages"]] == [16, 17, 18, 19, 20]
    assert body["has_more"] is True
    assert body["next_before"] == 16


def test_the_oldest_page_says_there_is_nothing_more(api, session):
    fill(session, 30)

    body = api.get(f"/api/session/{session.public_id}/messages?before=4&limit=5").json()

    assert [m["seq"] for m in body["messages"]] == [1, 2, 3]
    assert body["has_more"] is False
    assert body.get("next_before") is None


def test_a_page_that_ends_exactly_at_the_first_message_has_no_more(api, session):
    fill(session, 10)

    body = api.get(f"/api/session/{session.public_id}/messages?limit=10").json()

    assert len(body["messages"]) == 10
    assert body["has_more"] is False


def test_it_caps_the_page_size_at_200(api, session):
    fill(session, 250)

    body = api.get(f"/api/session/{session.public_id}/messages?limit=1000").json()

    assert len(body["messages"]) == 200
    assert body["messages"][0]["seq"] == 51


def test_the_page_size_cap_comes_from_settings(api, session, settings):
    settings.CHATBOT_PAGE_SIZE_MAX = 4
    fill(session, 10)

    body = api.get(f"/api/session/{session.public_id}/messages?limit=9").json()

    assert [m["seq"] for m in body["messages"]] == [7, 8, 9, 10]


@pytest.mark.parametrize("query", ["before=abc", "before=0", "before=-5", "limit=0", "limit=-1", "limit=ten"])
def test_it_refuses_a_bad_cursor_or_limit(api, session, query):
    fill(session, 3)

    response = api.get(f"/api/session/{session.public_id}/messages?{query}")

    assert_error(response, 400)


def test_it_pages_through_2000_messages_in_order_with_a_bounded_number_of_queries(
    api, session, django_assert_max_num_queries
):
    total = 2_050
    fill(session, total)
    seen = []
    url = f"/api/session/{session.public_id}/messages?limit=200"

    pages = 0
    while True:
        with django_assert_max_num_queries(3) as captured:
            response = api.get(url)
        assert response.status_code == 200, response.content
        # Keyset paging: each page reads a LIMITed index range, never an OFFSET over the session.
        reads = [q["sql"].upper() for q in captured.captured_queries if "CONVERSATIONS_MESSAGE" in q["sql"].upper()]
        assert reads and all("LIMIT" in sql and "OFFSET" not in sql for sql in reads), reads
        body = response.json()
        seen[:0] = [m["seq"] for m in body["messages"]]
        pages += 1
        if not body["has_more"]:
            break
        url = f"/api/session/{session.public_id}/messages?limit=200&before={body['next_before']}"

    assert pages == 11
    assert seen == list(range(1, total + 1))


# --- Sessions that cannot be reached ---------------------------------------------------


def test_unknown_expired_and_malformed_ids_get_the_same_404(api):
    expired = Session.objects.create(expires_at=timezone.now() - timedelta(seconds=1))
    unknown = secrets.token_urlsafe(24)  # well formed, but no session has it
    reference = api.get(f"/api/session/{unknown}/messages")

    answers = []
    for session_id in [unknown, expired.public_id, *MALFORMED_IDS]:
        read = api.get(f"/api/session/{session_id}/messages")
        write = api.post(f"/api/session/{session_id}/messages", {"message": "Hi", "role": "user"}, format="json")
        answers += [
            (session_id, "GET", read.status_code, read.content),
            (session_id, "POST", write.status_code, write.content),
        ]

    assert_error(reference, 404)
    different = [answer for answer in answers if answer[2:] != (404, reference.content)]
    assert different == []
    assert not Message.objects.exists()


def test_an_expired_session_takes_no_more_messages(api):
    expired = Session.objects.create(expires_at=timezone.now() - timedelta(seconds=1))

    response = api.post(f"/api/session/{expired.public_id}/messages", {"message": "Hi", "role": "user"}, format="json")

    assert_error(response, 404)
    assert not expired.messages.exists()


def test_another_users_session_gets_the_same_404_as_an_unknown_one(api, member, django_user_model):
    theirs = Session.objects.create(owner=member)
    stranger = django_user_model.objects.create_user("stranger")
    api.force_login(stranger)

    foreign = api.get(f"/api/session/{theirs.public_id}/messages")
    unknown = api.get("/api/session/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/messages")
    written = api.post(f"/api/session/{theirs.public_id}/messages", {"message": "Hi", "role": "user"}, format="json")

    assert_error(foreign, 404)
    assert (foreign.status_code, foreign.content) == (unknown.status_code, unknown.content)
    assert (written.status_code, written.content) == (unknown.status_code, unknown.content)
    assert not theirs.messages.exists()


def test_a_members_session_is_not_open_to_anonymous_visitors(api, member):
    theirs = Session.objects.create(owner=member)

    response = api.get(f"/api/session/{theirs.public_id}/messages")

    assert_error(response, 404)


def test_the_owner_and_staff_can_read_a_members_session(member_api, staff_api, member):
    theirs = Session.objects.create(owner=member)
    theirs.add_message(MessageDraft(role=Role.USER, content="Mine"))

    for client in (member_api, staff_api):
        response = client.get(f"/api/session/{theirs.public_id}/messages")
        assert response.status_code == 200, response.content
        assert [m["content"] for m in response.json()["messages"]] == ["Mine"]
