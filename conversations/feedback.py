"""Feedback on answers: a visitor's thumbs up or down, with an optional comment, on one
of the bot's answers.

One row a message (``Feedback``, one-to-one), changed in place when the visitor changes
their mind and deleted when they take it back, so what the admin and the insight page
count is each visitor's latest verdict, never a tally of clicks. These services touch
the database only; the view decides who may call them (the session's id is the
capability, as for every visitor write).
"""

from __future__ import annotations

from django.utils import timezone

from conversations.exceptions import SessionNotFound
from conversations.models import Feedback, Message, Rating, Session

COMMENT_MAX_CHARS = Feedback._meta.get_field("comment").max_length


def rateable_answer(*, session: Session, message_id: int) -> Message:
    """The bot's answer ``message_id`` in ``session``.

    A message of another session, a visitor's message, a staff reply, a system message
    and an id that was never issued all raise ``SessionNotFound``: the caller answers
    them exactly as an unknown session, so probing ids tells nothing.
    """
    message = session.messages.answers().filter(pk=message_id).first()
    if message is None:
        raise SessionNotFound
    return message


def give_feedback(*, message: Message, rating: Rating, comment: str = "") -> Feedback:
    """Store the visitor's verdict on ``message``, replacing any earlier one in place.

    The comment is replaced too (with "" when none is given): a comment belongs to the
    rating it was written with, so "not helpful, the price is wrong" does not linger
    once the visitor says the answer helped after all.
    """
    now = timezone.now()
    feedback, _ = Feedback.objects.update_or_create(
        message=message,
        defaults={"rating": rating, "comment": comment, "updated_at": now},
        create_defaults={"rating": rating, "comment": comment, "created_at": now, "updated_at": now},
    )
    return feedback


def withdraw_feedback(*, message: Message) -> None:
    """The visitor takes their verdict back: nothing is left of it. Idempotent."""
    Feedback.objects.filter(message=message).delete()
