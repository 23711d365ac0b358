"""A person answers instead of the bot: staff take a conversation over, reply in it and
hand it back; a visitor asks for a person.

Each service changes the session in one statement (so two staff members, or a visitor
and staff, acting at once leave it in one clear state) and publishes what changed to
the session's live feed (``conversations.live``) once that is committed. They touch the
database and the live hub, never the model. While ``Session.handled_by`` is set, a chat
turn stores the visitor's message alone (``conversations.chat``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from conversations import live
from conversations.exceptions import EmptyReply, HandoffDisabled, MessageTooLong, StaffOnly
from conversations.models import Channel, Message, MessageDraft, Role, Session


def _check_staff(staff) -> None:
    if not (staff.is_authenticated and staff.is_staff):
        raise StaffOnly


def take_over(*, session: Session, staff) -> Session:
    """``staff`` answers this conversation from now on; the bot stops. Taking over from
    another staff member is allowed (the newest wins); a waiting visitor stops waiting."""
    _check_staff(staff)
    Session.objects.filter(pk=session.pk).update(handled_by=staff, waiting_since=None)
    session.handled_by, session.waiting_since = staff, None
    live.publish_status(session)
    return session


def hand_back(*, session: Session, staff) -> Session:
    """The bot answers again. Idempotent: handing back a session nobody handles is no change."""
    _check_staff(staff)
    Session.objects.filter(pk=session.pk).update(handled_by=None)
    session.handled_by = None
    live.publish_status(session)
    return session


def reply_as_staff(*, session: Session, staff, text: str) -> Message:
    """Store ``staff``'s reply as an assistant message with its author, so the transcript,
    the API and the model's context for later turns all hold it as the answer it is."""
    _check_staff(staff)
    if not text.strip():
        raise EmptyReply
    if len(text) > settings.CHATBOT_MAX_QUERY_CHARS:
        raise MessageTooLong(length=len(text), limit=settings.CHATBOT_MAX_QUERY_CHARS)
    # add_message publishes the stored message once its transaction commits.
    return session.add_message(MessageDraft(role=Role.ASSISTANT, content=text, channel=Channel.API, author=staff))


def ask_for_person(*, session: Session) -> Session:
    """Mark the session as waiting for a person, unless one already handles it or it
    already waits (then nothing changes, and the team is not told twice). When the
    handoff webhook is configured, it is sent by the task queue, never in this request."""
    if not settings.CHATBOT_HANDOFF_ENABLED:
        raise HandoffDisabled
    now = timezone.now()
    marked = Session.objects.filter(pk=session.pk, handled_by__isnull=True, waiting_since__isnull=True).update(
        waiting_since=now
    )
    if marked:
        session.waiting_since = now
        live.publish_status(session)
        if settings.CHATBOT_HANDOFF_WEBHOOK_URL:
            from conversations.tasks import request_handoff_notice

            transaction.on_commit(lambda: request_handoff_notice(session_pk=session.pk))
    else:
        session.refresh_from_db(fields=["handled_by", "waiting_since"])
    return session
