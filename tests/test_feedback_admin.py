"""Feedback in the admin: on the transcript beside the answer it rates, as a filter on
the sessions list, and as a read-only list of its own."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission
from django.db import transaction
from django.test import Client

from conversations.feedback import give_feedback
from conversations.models import Feedback, MessageDraft, Rating, Role, Session

pytestmark = pytest.mark.django_db

XSS = "<script>alert('comment')</script>"


def rated_session(rating: Rating, comment: str = "", *, answer: str = "Yes, within five working days.") -> Session:
    session = Session.objects.create()
    with transaction.atomic():
        _, reply = session.append_messages(
            [MessageDraft(Role.USER, "Do you ship to Norway?"), MessageDraft(Role.ASSISTANT, answer)]
        )
    give_feedback(message=reply, rating=rating, comment=comment)
    return session


@pytest.fixture
def feedback_reader(django_user_model):
    """Staff who may read chat sessions and the feedback on them."""
    user = django_user_model.objects.create_user("analyst", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_session", "view_feedback"], content_type__app_label="conversations"
        )
    )
    client = Client()
    client.force_login(user)
    return client


def listed_ids(response) -> set[str]:
    return {session.public_id for session in response.context["cl"].result_list}


def test_the_transcript_shows_the_visitors_feedback_under_the_answer_as_text(staff_client):
    session = rated_session(Rating.NOT_HELPFUL, f"Too slow {XSS}")

    html = staff_client.get(f"/admin/conversations/session/{session.pk}/change/").content.decode()

    answer = re.search(r'<div class="msg msg-assistant" id="msg-2".*?</div>', html, re.S).group(0)
    assert "Visitor's feedback: Not helpful" in answer
    assert "Too slow &lt;script&gt;alert(&#x27;comment&#x27;)&lt;/script&gt;" in answer
    assert XSS not in html


def test_an_answer_without_feedback_shows_none(staff_client):
    session = rated_session(Rating.HELPFUL)
    Feedback.objects.all().delete()

    html = staff_client.get(f"/admin/conversations/session/{session.pk}/change/").content.decode()

    assert "Visitor's feedback" not in html


def test_the_sessions_list_filters_by_negative_and_positive_feedback(staff_client):
    down = rated_session(Rating.NOT_HELPFUL, "Wrong")
    up = rated_session(Rating.HELPFUL)
    unrated = Session.objects.create()

    negative = staff_client.get("/admin/conversations/session/", {"feedback": "negative"})
    positive = staff_client.get("/admin/conversations/session/", {"feedback": "positive"})
    everything = staff_client.get("/admin/conversations/session/")

    assert listed_ids(negative) == {down.public_id}
    assert listed_ids(positive) == {up.public_id}
    assert listed_ids(everything) == {down.public_id, up.public_id, unrated.public_id}
    assert "Has negative feedback" in everything.content.decode()


def test_the_feedback_list_shows_rating_comment_and_a_link_to_the_answer(feedback_reader):
    session = rated_session(Rating.NOT_HELPFUL, f"Wrong {XSS}", answer="Yes, in **3 days** <b>guaranteed</b>.")

    response = feedback_reader.get("/admin/conversations/feedback/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Not helpful" in html
    assert "Wrong &lt;script&gt;" in html and XSS not in html
    link = f'<a href="/admin/conversations/session/{session.pk}/change/#msg-2">'
    assert f"{link}Yes, in **3 days** &lt;b&gt;guaranteed&lt;/b&gt;.</a>" in html


def test_the_feedback_list_filters_by_rating(feedback_reader):
    rated_session(Rating.NOT_HELPFUL, "down one")
    rated_session(Rating.HELPFUL, "up one")

    down = feedback_reader.get("/admin/conversations/feedback/", {"rating__exact": Rating.NOT_HELPFUL})

    assert [feedback.comment for feedback in down.context["cl"].result_list] == ["down one"]


def test_the_feedback_list_is_read_only(admin_client):
    rated_session(Rating.HELPFUL)
    feedback = Feedback.objects.get()

    assert admin_client.get("/admin/conversations/feedback/add/").status_code == 403
    assert admin_client.post(f"/admin/conversations/feedback/{feedback.pk}/change/", {"rating": -1}).status_code == 403
    assert admin_client.post(f"/admin/conversations/feedback/{feedback.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Feedback.objects.get().rating == Rating.HELPFUL


def test_the_feedback_list_costs_the_same_few_queries_however_long_it_is(
    feedback_reader, django_assert_max_num_queries
):
    for number in range(30):
        rated_session(Rating.HELPFUL, f"comment {number}")

    with django_assert_max_num_queries(12):
        response = feedback_reader.get("/admin/conversations/feedback/")

    assert len(response.context["cl"].result_list) == 30


def test_staff_who_may_read_sessions_only_do_not_see_the_feedback_list(staff_client):
    assert staff_client.get("/admin/conversations/feedback/").status_code == 403
