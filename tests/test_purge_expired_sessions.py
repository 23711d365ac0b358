"""manage.py purge_expired_sessions: expired sessions and their messages, in batches."""

from __future__ import annotations

import math
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations.models import DailyUsage, Feedback, Message, Rating, Role, Session

pytestmark = pytest.mark.django_db

EXPIRED_SESSIONS = 40
MESSAGES_EACH = 2_500  # 100,000 expired messages in all
BATCH = 5_000


def fill(session: Session, count: int) -> None:
    Message.objects.bulk_create(
        (Message(session=session, seq=i, role="user", content=f"message {i}") for i in range(1, count + 1)),
        batch_size=5_000,
    )


def test_it_deletes_100000_expired_messages_in_batches_and_keeps_live_sessions():
    past = timezone.now() - timedelta(days=1)
    for _ in range(EXPIRED_SESSIONS):
        fill(Session.objects.create(expires_at=past), MESSAGES_EACH)
    live = Session.objects.create()
    fill(live, 30)
    output = StringIO()

    with CaptureQueriesContext(connection) as queries:
        call_command("purge_expired_sessions", batch_size=BATCH, stdout=output)

    assert Session.objects.get() == live
    assert Message.objects.count() == 30
    by_id = 'DELETE FROM "conversations_message" WHERE "conversations_message"."id" IN'
    batches = [q for q in queries if q["sql"].startswith(by_id)]
    assert len(batches) == math.ceil(EXPIRED_SESSIONS * MESSAGES_EACH / BATCH)
    assert (
        f"Purged {EXPIRED_SESSIONS} expired sessions and {EXPIRED_SESSIONS * MESSAGES_EACH} messages"
        in output.getvalue()
    )


def test_what_hangs_off_an_expired_message_goes_with_it_and_its_spend_stays_counted():
    expired = Session.objects.create(expires_at=timezone.now() - timedelta(days=1))
    answer = Message.objects.create(session=expired, seq=1, role=Role.ASSISTANT, content="Two-person tents…")
    Feedback.objects.create(message=answer, rating=Rating.HELPFUL)
    usage = DailyUsage.objects.create(session=expired, day=timezone.now().date(), turns=1, prompt_tokens=900)

    call_command("purge_expired_sessions", stdout=StringIO())

    assert not Message.objects.exists()
    assert not Feedback.objects.exists()
    usage.refresh_from_db()
    assert (usage.session, usage.prompt_tokens) == (None, 900)


def test_it_is_a_no_op_when_nothing_has_expired():
    fill(Session.objects.create(), 5)
    output = StringIO()

    call_command("purge_expired_sessions", stdout=output)

    assert Message.objects.count() == 5
    assert "Purged 0 expired sessions and 0 messages" in output.getvalue()


def test_deleting_a_session_through_the_api_erases_its_messages(api):
    session = Session.objects.create()
    fill(session, 10)

    response = api.delete(f"/api/sessions/{session.public_id}/")

    assert response.status_code == 204
    assert Message.objects.count() == 0
    assert not Session.objects.exists()
