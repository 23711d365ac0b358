"""A visitor asks for a person: POST /api/session/<id>/handoff, and the signed webhook
that tells the team, sent by the task queue (or, in development, a thread), never in the
visitor's request."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.checks import run_checks
from django_tasks_db.models import DBTaskResult

from conversations.models import Session
from conversations.tasks import notify_handoff
from tests import servers
from tests.servers import ROOT, WebhookReceiver

SECRET = "a-long-random-secret-shared-with-the-receiver"


def new_session(client) -> str:
    response = client.post("/api/session/create", {}, format="json")
    assert response.status_code == 201
    return response.json()["session_id"]


def verify(secret: str, body: bytes, timestamp: str, signature: str) -> bool:
    """The README's verification, as a receiver would write it."""
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"sha256={expected}", signature)


@pytest.fixture
def webhook(settings):
    """Point the handoff webhook at a local receiver; returns a function that starts one."""
    settings.CHATBOT_WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    settings.CHATBOT_HANDOFF_WEBHOOK_SECRET = SECRET
    settings.CHATBOT_HANDOFF_WEBHOOK_ATTEMPTS = 1
    settings.CHATBOT_PUBLIC_URL = "https://chat.example.com"

    def start(statuses=(200,), *, hold=False) -> WebhookReceiver:
        receiver = WebhookReceiver(statuses, hold=hold).__enter__()
        started.append(receiver)
        settings.CHATBOT_HANDOFF_WEBHOOK_URL = receiver.url
        return receiver

    started: list[WebhookReceiver] = []
    yield start
    for receiver in started:
        receiver.__exit__(None, None, None)


@pytest.mark.django_db
def test_it_marks_the_session_waiting_and_the_messages_page_says_so(api):
    session_id = new_session(api)

    response = api.post(f"/api/session/{session_id}/handoff")

    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "session_id": session_id,
        "status": {"handled_by": None, "waiting": True},
    }
    assert api.get(f"/api/session/{session_id}/messages").json()["status"] == {"handled_by": None, "waiting": True}


@pytest.mark.django_db
def test_asking_twice_changes_nothing(api):
    session_id = new_session(api)
    api.post(f"/api/session/{session_id}/handoff")
    first = Session.objects.get(public_id=session_id).waiting_since

    assert api.post(f"/api/session/{session_id}/handoff").status_code == 200
    assert Session.objects.get(public_id=session_id).waiting_since == first


@pytest.mark.django_db
def test_it_answers_403_handoff_disabled_when_the_site_offers_no_person(api, settings):
    settings.CHATBOT_HANDOFF_ENABLED = False
    session_id = new_session(api)

    response = api.post(f"/api/session/{session_id}/handoff")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "handoff_disabled"
    assert Session.objects.get(public_id=session_id).waiting_since is None


@pytest.mark.django_db
def test_it_answers_the_same_404_for_unknown_malformed_and_someone_elses_sessions(api, member_api):
    someone_elses = new_session(member_api)
    expected = api.get("/api/session/no-such-session-id-at-all-000000/messages").json()

    for session_id in ("no-such-session-id-at-all-000000", "not a session id", someone_elses):
        response = api.post(f"/api/session/{session_id}/handoff")
        assert response.status_code == 404
        assert response.json() == expected
    assert Session.objects.get(public_id=someone_elses).waiting_since is None


@pytest.mark.django_db
def test_it_is_rate_limited_like_message_writes(api, settings):
    settings.CHATBOT_RATELIMIT_WRITE_SESSION = "2/m"
    session_id = new_session(api)

    statuses = [api.post(f"/api/session/{session_id}/handoff").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


@pytest.mark.django_db
def test_the_widget_config_says_whether_a_person_is_offered(api, settings):
    assert api.get("/api/widget/config").json()["handoff"] is True
    settings.CHATBOT_HANDOFF_ENABLED = False
    assert api.get("/api/widget/config").json()["handoff"] is False


@pytest.mark.django_db(transaction=True)
def test_the_webhook_is_delivered_signed(api, webhook):
    receiver = webhook()
    session_id = new_session(api)
    api.post(f"/api/session/{session_id}/messages", {"role": "user", "message": "Where is my parcel?"}, format="json")

    api.post(f"/api/session/{session_id}/handoff")
    receiver.wait_for(answered=1)

    headers, body = receiver.requests[0]
    assert verify(SECRET, body, headers["X-Chatbot-Timestamp"], headers["X-Chatbot-Signature"])
    assert not verify("another-secret", body, headers["X-Chatbot-Timestamp"], headers["X-Chatbot-Signature"])
    session = Session.objects.get(public_id=session_id)
    assert json.loads(body) == {
        "event": "handoff.requested",
        "session_id": session_id,
        "transcript_url": f"https://chat.example.com/admin/conversations/session/{session.pk}/change/",
        "last_message": "Where is my parcel?",
        "waiting_since": session.waiting_since.isoformat(),
    }


@pytest.mark.django_db(transaction=True)
def test_the_visitors_request_has_returned_while_the_webhook_is_still_held(api, webhook):
    receiver = webhook(hold=True)
    session_id = new_session(api)

    response = api.post(f"/api/session/{session_id}/handoff")
    receiver.wait_for(requests=1)

    assert response.status_code == 200
    assert receiver.answered == 0  # the webhook is still held: the request did not wait for it
    receiver.release()
    receiver.wait_for(answered=1)


@pytest.mark.django_db
def test_a_private_address_is_refused_while_the_setting_is_off(api, webhook, settings, caplog):
    receiver = webhook()
    settings.CHATBOT_WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    session = Session.objects.create(waiting_since="2026-12-05T16:00:00Z")

    assert notify_handoff.call(session.pk) == "failed"
    assert receiver.requests == []
    assert "CHATBOT_WEBHOOK_ALLOW_PRIVATE_HOSTS is off" in caplog.text


@pytest.mark.django_db
def test_a_4xx_other_than_429_is_not_retried(webhook, settings):
    settings.CHATBOT_HANDOFF_WEBHOOK_ATTEMPTS = 5
    receiver = webhook((404,))
    session = Session.objects.create(waiting_since="2026-12-05T16:00:00Z")

    assert notify_handoff.call(session.pk) == "failed"
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_nothing_is_sent_for_a_session_no_longer_waiting(webhook):
    receiver = webhook()
    session = Session.objects.create()

    assert notify_handoff.call(session.pk) == "skipped"
    assert receiver.requests == []


@pytest.mark.django_db(transaction=True)
def test_the_worker_retries_a_failed_webhook_later(api, webhook, settings, on_postgres):
    """The production path: the request enqueues on the database queue, and a real
    ``manage.py db_worker`` sends it; the 500 is tried again, after a delay, and delivered."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    settings.CHATBOT_HANDOFF_WEBHOOK_ATTEMPTS = 5
    receiver = webhook((500, 200))
    session_id = new_session(api)

    assert api.post(f"/api/session/{session_id}/handoff").status_code == 200
    assert receiver.requests == []  # enqueued, not sent by the request
    env = {key: value for key, value in os.environ.items() if not key.startswith("CHATBOT_")}
    env |= {
        "DATABASE_URL": servers.test_database_url(),
        "CHATBOT_TASKS_BACKEND": "django_tasks_db.DatabaseBackend",
        "CHATBOT_HANDOFF_WEBHOOK_URL": receiver.url,
        "CHATBOT_HANDOFF_WEBHOOK_SECRET": SECRET,
        "CHATBOT_HANDOFF_WEBHOOK_RETRY_SECONDS": "0.5",
        "CHATBOT_WEBHOOK_ALLOW_PRIVATE_HOSTS": "true",
    }
    worker = [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay", "--interval", "0.1"]
    subprocess.run([*worker, "--max-tasks", "2"], cwd=ROOT, env=env, check=True, timeout=60)  # noqa: S603

    assert receiver.answered == 2
    first, second = receiver.requests
    assert json.loads(first[1]) == json.loads(second[1])
    attempts = sorted(DBTaskResult.objects.all(), key=lambda result: result.enqueued_at)
    assert [(result.args_kwargs["args"], result.return_value) for result in attempts] == [
        ([Session.objects.get(public_id=session_id).pk], "retry"),
        ([Session.objects.get(public_id=session_id).pk, 2], "delivered"),
    ]
    assert attempts[1].run_after - attempts[0].started_at >= timedelta(seconds=0.5)


def test_the_deploy_check_warns_of_an_unsigned_webhook(settings):
    settings.CHATBOT_HANDOFF_WEBHOOK_URL = "https://hooks.example.com/chat"
    settings.CHATBOT_PUBLIC_URL = "https://chat.example.com"

    settings.CHATBOT_HANDOFF_WEBHOOK_SECRET = ""
    assert "conversations.W002" in {message.id for message in run_checks(include_deployment_checks=True)}
    settings.CHATBOT_HANDOFF_WEBHOOK_SECRET = SECRET
    assert "conversations.W002" not in {message.id for message in run_checks(include_deployment_checks=True)}
