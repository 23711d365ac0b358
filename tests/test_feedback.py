"""POST /api/session/<id>/messages/<message id>/feedback: a visitor rates the bot's
answers, changes their mind or takes it back; the messages page shows it."""

from __future__ import annotations

import json
import re

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from conversations.feeds import messages_after
from conversations.models import Feedback, MessageDraft, Rating, Role, Session
from conversations.staffing import reply_as_staff
from tests.http import assert_error

pytestmark = pytest.mark.django_db


def talked(session: Session, *turns: tuple[str, str]) -> list[int]:
    """Store (role, text) messages in ``session``; their ids, in order."""
    with transaction.atomic():
        messages = session.append_messages([MessageDraft(role, text) for role, text in turns])
    return [message.pk for message in messages]


@pytest.fixture
def session():
    return Session.objects.create()


@pytest.fixture
def answer(session) -> int:
    """The id of the bot's answer to the session's first question."""
    _, answer_id = talked(session, (Role.USER, "Do you ship to Norway?"), (Role.ASSISTANT, "Yes, in 3 days."))
    return answer_id


def rate(api, session_id: str, message_id, body: dict):
    return api.post(f"/api/session/{session_id}/messages/{message_id}/feedback", body, format="json")


def shown_feedback(api, session: Session, message_id: int):
    messages = api.get(f"/api/session/{session.public_id}/messages").json()["messages"]
    return next(m["feedback"] for m in messages if m["id"] == message_id)


def test_a_visitor_rates_an_answer_and_gets_the_stored_feedback_back(api, session, answer):
    response = rate(api, session.public_id, answer, {"rating": "up"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True
    assert (body["session_id"], body["message_id"]) == (session.public_id, answer)
    assert (body["feedback"]["rating"], body["feedback"]["comment"]) == ("up", "")
    stored = Feedback.objects.get(message_id=answer)
    assert (stored.rating, stored.comment) == (Rating.HELPFUL, "")


def test_not_helpful_may_come_with_a_comment(api, session, answer):
    response = rate(api, session.public_id, answer, {"rating": "down", "comment": "It takes a week, not 3 days."})

    assert response.status_code == 200, response.content
    assert response.json()["feedback"]["comment"] == "It takes a week, not 3 days."
    stored = Feedback.objects.get(message_id=answer)
    assert (stored.rating, stored.comment) == (Rating.NOT_HELPFUL, "It takes a week, not 3 days.")


def test_changing_ones_mind_updates_the_one_row_in_place(api, session, answer):
    rate(api, session.public_id, answer, {"rating": "down", "comment": "Wrong price."})
    first = Feedback.objects.get(message_id=answer)

    response = rate(api, session.public_id, answer, {"rating": "up"})

    assert response.status_code == 200
    assert response.json()["feedback"]["rating"] == "up"
    (changed,) = Feedback.objects.filter(message_id=answer)
    assert changed.pk == first.pk
    assert (changed.rating, changed.comment) == (Rating.HELPFUL, "")  # the comment went with its rating
    assert changed.created_at == first.created_at
    assert changed.updated_at > first.updated_at


def test_a_rating_of_null_withdraws_the_feedback(api, session, answer):
    rate(api, session.public_id, answer, {"rating": "up"})

    response = rate(api, session.public_id, answer, {"rating": None})

    assert response.status_code == 200
    assert response.json()["feedback"] is None
    assert not Feedback.objects.filter(message_id=answer).exists()
    assert rate(api, session.public_id, answer, {"rating": None}).status_code == 200  # again: no change


def test_the_messages_page_shows_the_feedback_on_each_answer(api, session, answer):
    question, second = talked(session, (Role.USER, "And to Sweden?"), (Role.ASSISTANT, "Also."))
    rate(api, session.public_id, answer, {"rating": "down", "comment": "Too vague"})

    messages = api.get(f"/api/session/{session.public_id}/messages").json()["messages"]

    feedback = {m["id"]: m["feedback"] for m in messages}
    assert (feedback[answer]["rating"], feedback[answer]["comment"]) == ("down", "Too vague")
    assert feedback[second] is None
    assert feedback[question] is None


def test_a_page_of_messages_costs_the_same_queries_however_many_answers_are_rated(api, session, answer):
    path = f"/api/session/{session.public_id}/messages"
    rate(api, session.public_id, answer, {"rating": "up"})
    with CaptureQueriesContext(connection) as one_rated:
        api.get(path)
    for n in range(10):
        _, reply = talked(session, (Role.USER, f"Question {n}"), (Role.ASSISTANT, f"Answer {n}"))
        rate(api, session.public_id, reply, {"rating": "down"})

    with CaptureQueriesContext(connection) as eleven_rated:
        messages = api.get(path).json()["messages"]

    assert sum(m["feedback"] is not None for m in messages) == 11
    assert len(eleven_rated) == len(one_rated)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"rating": "sideways"},
        {"rating": 1},
        {"rating": True},
        {"rating": "down", "comment": "x" * 1001},
        {"rating": "down", "comment": 42},
        {"rating": "down", "comment": "nul \x00 byte"},
        {"rating": None, "comment": "A comment without a rating"},
    ],
)
def test_bad_input_is_a_400_and_changes_nothing(api, session, answer, body):
    rate(api, session.public_id, answer, {"rating": "up"})

    response = rate(api, session.public_id, answer, body)

    assert_error(response, 400)
    assert Feedback.objects.get(message_id=answer).rating == Rating.HELPFUL


def test_a_comment_of_1000_characters_is_kept_whole(api, session, answer):
    response = rate(api, session.public_id, answer, {"rating": "down", "comment": "y" * 1000})

    assert response.status_code == 200
    assert Feedback.objects.get(message_id=answer).comment == "y" * 1000


def test_a_body_that_is_not_json_is_refused(api, session, answer):
    response = api.post(
        f"/api/session/{session.public_id}/messages/{answer}/feedback", "rating=up", content_type="text/plain"
    )

    assert_error(response, 415)


def test_every_message_that_is_not_this_sessions_answer_gets_the_unknown_sessions_404(
    api, member_api, django_user_model, session, answer
):
    unknown = api.get("/api/session/no-such-session-id-at-all-000000/messages")
    expected = unknown.json()
    (question,) = [m.pk for m in session.messages.filter(role=Role.USER)]
    (notice,) = talked(session, (Role.SYSTEM, "The visitor came from the pricing page."))
    staff = django_user_model.objects.create_user("rita", is_staff=True)
    staff_reply = reply_as_staff(session=session, staff=staff, text="Rita here: 3 days, yes.").pk
    other = Session.objects.create()
    _, elsewhere = talked(other, (Role.USER, "Hi"), (Role.ASSISTANT, "Hello"))
    members = Session.objects.create(owner=django_user_model.objects.get(username="member"))
    _, members_answer = talked(members, (Role.USER, "Mine"), (Role.ASSISTANT, "Yours"))

    probes = [
        ("no-such-session-id-at-all-000000", answer),  # unknown session
        ("not a session id", answer),  # malformed
        (members.public_id, members_answer),  # someone else's session
        (session.public_id, elsewhere),  # an answer in another session
        (session.public_id, question),  # the visitor's own message
        (session.public_id, notice),  # a system message
        (session.public_id, staff_reply),  # a person's reply, not the bot's answer
        (session.public_id, 999_999_999),  # no such message
        (session.public_id, 2**70),  # past any id a database can hold
        (session.public_id, "abc"),  # not a message id at all
    ]
    browser_like = APIClient(enforce_csrf_checks=True)  # a POST no route matches must not meet CSRF's 403
    for session_id, message_id in probes:
        response = rate(browser_like, session_id, message_id, {"rating": "down"})
        assert response.status_code == 404, (session_id, message_id)
        assert response.json() == expected, (session_id, message_id)
    assert not Feedback.objects.exists()
    assert rate(member_api, members.public_id, members_answer, {"rating": "up"}).status_code == 200  # its owner may


def test_an_expired_sessions_answers_cannot_be_rated(api, session, answer):
    Session.objects.filter(pk=session.pk).update(expires_at=session.created_at)

    assert_error(rate(api, session.public_id, answer, {"rating": "up"}), 404)
    assert not Feedback.objects.exists()


def test_it_is_rate_limited_like_message_writes(api, session, answer, settings):
    settings.CHATBOT_RATELIMIT_WRITE_SESSION = "2/m"

    statuses = [rate(api, session.public_id, answer, {"rating": "up"}).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    assert_error(rate(api, session.public_id, answer, {"rating": "down"}), 429, "rate_limited")
    assert Feedback.objects.get(message_id=answer).rating == Rating.HELPFUL


def test_feedback_and_messages_share_one_write_budget(api, session, answer, settings):
    settings.CHATBOT_RATELIMIT_WRITE_SESSION = "2/m"
    message = {"message": "Still there?"}

    assert api.post(f"/api/session/{session.public_id}/messages", message, format="json").status_code == 201
    assert rate(api, session.public_id, answer, {"rating": "up"}).status_code == 200
    assert api.post(f"/api/session/{session.public_id}/messages", message, format="json").status_code == 429


def test_the_schema_documents_the_endpoint(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/session/{session_id}/messages/{message_id}/feedback"]["post"]

    assert {"200", "400", "404", "429"} <= set(operation["responses"])
    message = schema["components"]["schemas"]["Message"]
    assert "feedback" in message["properties"]


def test_the_chat_page_names_each_answer_and_its_rating_for_the_buttons(client, api, session, answer):
    _, second = talked(session, (Role.USER, "And to Sweden?"), (Role.ASSISTANT, "Also."))
    rate(api, session.public_id, answer, {"rating": "down", "comment": "Vague"})

    html = client.get(f"/chat?session={session.public_id}").content.decode()

    data = re.search(r'<script id="cb-answers" type="application/json">(.*?)</script>', html).group(1)
    assert json.loads(data) == {"2": {"id": answer, "rating": "down"}, "4": {"id": second, "rating": None}}


def test_the_live_feed_catching_up_sends_each_answers_feedback(api, session, answer, django_assert_num_queries):
    rate(api, session.public_id, answer, {"rating": "up"})

    with django_assert_num_queries(1):
        events = messages_after(session_pk=session.pk, after=0)

    sent = [json.loads(event.frame.split(b"data: ", 1)[1]) for event in events]
    assert [(m["role"], (m["feedback"] or {}).get("rating")) for m in sent] == [("user", None), ("assistant", "up")]
