"""Taking a conversation over in the admin: staff who may change a session take it over,
reply in it and hand it back from its transcript page; the sessions list puts the
visitors waiting for a person first. Posting only, with the CSRF token, never by link."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from conversations.models import MessageDraft, Role, Session

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation():
    session = Session.objects.create(source="widget")
    session.add_message(MessageDraft(role=Role.USER, content="Can I talk to someone?"))
    session.refresh_from_db()
    return session


def admin_url(session: Session, action: str) -> str:
    return f"/admin/conversations/session/{session.pk}/{action}/"


def listed_ids(response) -> list[str]:
    return [session.public_id for session in response.context["cl"].result_list]


# --- Who may act --------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["takeover", "handback", "reply"])
def test_it_sends_visitors_who_are_not_logged_in_to_the_login_page(client, conversation, action):
    response = client.post(admin_url(conversation, action), {"text": "hi"})

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    conversation.refresh_from_db()
    assert conversation.handled_by is None
    assert conversation.messages.count() == 1


@pytest.mark.parametrize("action", ["takeover", "handback", "reply"])
def test_it_refuses_staff_who_may_only_view_sessions(staff_client, conversation, action):
    response = staff_client.post(admin_url(conversation, action), {"text": "hi"})

    assert response.status_code == 403
    conversation.refresh_from_db()
    assert conversation.handled_by is None
    assert conversation.messages.count() == 1


@pytest.mark.parametrize("action", ["takeover", "handback", "reply"])
def test_it_answers_a_get_with_405(responder_client, conversation, action):
    response = responder_client.get(admin_url(conversation, action))

    assert response.status_code == 405
    conversation.refresh_from_db()
    assert conversation.handled_by is None


def test_it_refuses_a_post_without_the_csrf_token(responder_client, conversation):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(responder_client.user)

    response = strict.post(admin_url(conversation, "takeover"))

    assert response.status_code == 403
    conversation.refresh_from_db()
    assert conversation.handled_by is None


def test_it_takes_over_with_the_token_from_the_transcript_page(responder_client, conversation):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(responder_client.user)
    page = strict.get(f"/admin/conversations/session/{conversation.pk}/change/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)

    response = strict.post(admin_url(conversation, "takeover"), {"csrfmiddlewaretoken": token})

    assert response.status_code == 302
    assert response["Location"] == f"/admin/conversations/session/{conversation.pk}/change/"
    conversation.refresh_from_db()
    assert conversation.handled_by == responder_client.user


def test_an_unknown_session_is_404(responder_client):
    response = responder_client.post("/admin/conversations/session/999999/takeover/")

    assert response.status_code == 404


# --- Taking over, replying, handing back --------------------------------------------------


def test_it_takes_over_hands_back_and_answers_json_to_fetch(responder_client, conversation):
    conversation.waiting_since = timezone.now()
    conversation.save(update_fields=["waiting_since"])

    taken = responder_client.post(admin_url(conversation, "takeover"), headers={"Accept": "application/json"})

    assert taken.status_code == 200
    assert taken.json() == {
        "success": True,
        "session_id": conversation.public_id,
        "status": {"handled_by": "Rita Responder", "waiting": False},
    }
    conversation.refresh_from_db()
    assert conversation.handled_by == responder_client.user
    assert conversation.waiting_since is None

    back = responder_client.post(admin_url(conversation, "handback"), headers={"Accept": "application/json"})

    assert back.json()["status"] == {"handled_by": None, "waiting": False}
    conversation.refresh_from_db()
    assert conversation.handled_by is None


def test_a_reply_is_stored_as_the_assistant_with_the_staff_members_name(responder_client, conversation):
    response = responder_client.post(
        admin_url(conversation, "reply"), {"text": "Hello, Rita here."}, headers={"Accept": "application/json"}
    )

    assert response.status_code == 200
    reply = conversation.messages.order_by("seq").last()
    assert (reply.role, reply.content, reply.author, reply.author_name) == (
        Role.ASSISTANT,
        "Hello, Rita here.",
        responder_client.user,
        "Rita Responder",
    )


def test_an_empty_reply_is_refused_with_a_json_error(responder_client, conversation):
    response = responder_client.post(
        admin_url(conversation, "reply"), {"text": "  "}, headers={"Accept": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert conversation.messages.count() == 1


def test_an_empty_reply_from_a_plain_form_goes_back_with_a_message(responder_client, conversation):
    response = responder_client.post(admin_url(conversation, "reply"), {"text": ""}, follow=True)

    assert response.redirect_chain == [(f"/admin/conversations/session/{conversation.pk}/change/", 302)]
    assert "The reply is empty." in response.content.decode()


def test_the_transcript_page_shows_who_handles_the_session_and_the_controls(responder_client, conversation):
    before = responder_client.get(f"/admin/conversations/session/{conversation.pk}/change/").content.decode()
    responder_client.post(admin_url(conversation, "takeover"))
    after = responder_client.get(f"/admin/conversations/session/{conversation.pk}/change/").content.decode()

    assert "The assistant answers" in before
    assert "Handled by Rita Responder" in after
    for html in (before, after):
        assert f'action="/admin/conversations/session/{conversation.pk}/reply/"' in html
        assert f'data-events="/api/session/{conversation.public_id}/events"' in html


def test_view_only_staff_see_no_takeover_controls(staff_client, conversation):
    html = staff_client.get(f"/admin/conversations/session/{conversation.pk}/change/").content.decode()

    assert "/takeover/" not in html
    assert "/reply/" not in html


def test_the_admin_pages_allow_no_inline_script(responder_client, conversation):
    for url in ["/admin/conversations/session/", f"/admin/conversations/session/{conversation.pk}/change/"]:
        response = responder_client.get(url)

        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert "connect-src 'self'" in policy
        scripts = re.findall(r"<script([^>]*)>", response.content.decode())
        assert scripts and all("src=" in attributes for attributes in scripts), scripts


# --- The sessions list --------------------------------------------------------------------


@pytest.fixture
def waiting_and_not():
    """Three sessions: the most recently active nobody waits in; two visitors wait."""
    now = timezone.now()
    quiet = Session.objects.create(last_activity_at=now)
    waited_long = Session.objects.create(last_activity_at=now - timedelta(hours=2))
    waited_long.waiting_since = now - timedelta(minutes=30)
    waited_long.save()
    just_asked = Session.objects.create(last_activity_at=now - timedelta(hours=1))
    just_asked.waiting_since = now - timedelta(minutes=1)
    just_asked.save()
    return quiet, waited_long, just_asked


def test_the_list_shows_waiting_sessions_first_the_longest_waiting_at_the_top(staff_client, waiting_and_not):
    quiet, waited_long, just_asked = waiting_and_not

    response = staff_client.get("/admin/conversations/session/")

    assert listed_ids(response) == [waited_long.public_id, just_asked.public_id, quiet.public_id]


def test_the_waiting_filter_lists_only_the_waiting(staff_client, waiting_and_not):
    quiet, waited_long, just_asked = waiting_and_not

    response = staff_client.get("/admin/conversations/session/", {"waiting": "yes"})

    assert listed_ids(response) == [waited_long.public_id, just_asked.public_id]
    assert "Waiting for a person" in response.content.decode()


def test_the_list_page_says_how_many_are_waiting(staff_client, waiting_and_not):
    html = staff_client.get("/admin/conversations/session/").content.decode()

    assert "2 sessions waiting for a person" in html


def test_the_list_page_says_when_no_one_is_waiting(staff_client, conversation):
    html = staff_client.get("/admin/conversations/session/").content.decode()

    assert "No one is waiting for a person." in html


# --- Escaping -----------------------------------------------------------------------------

PAYLOAD = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


def test_a_staff_name_and_a_message_with_html_are_shown_as_text(responder_client, conversation):
    user = responder_client.user
    user.first_name, user.last_name = PAYLOAD, ""
    user.save()
    responder_client.post(admin_url(conversation, "takeover"))
    responder_client.post(admin_url(conversation, "reply"), {"text": PAYLOAD})

    html = responder_client.get(f"/admin/conversations/session/{conversation.pk}/change/").content.decode()

    assert PAYLOAD not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert "Handled by &lt;img" in html
