"""What can go wrong in a conversation, in the domain's words.

Services raise these and know nothing of HTTP; ``conversations.errors`` is the one place
that turns each into a status code, an error body and a stream's ``error`` event. The
model seam's own error, ``conversations.llm.ModelError``, is mapped there as well.
"""

from __future__ import annotations


class ConversationError(Exception):
    message = "The request could not be served."

    def __init__(self, message: str | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message


class SessionNotFound(ConversationError):
    """Unknown, expired, malformed and someone else's ids alike: no oracle."""

    message = "No such session, or it has expired."


class ClientMessageIdReused(ConversationError):
    message = "This client_message_id was already used for a different message."


class MessageTooLong(ConversationError):
    def __init__(self, *, length: int, limit: int):
        super().__init__(f"The message is {length} characters; at most {limit} are allowed.")


class Busy(ConversationError):
    """This process cannot take another turn now; nothing was written. Retry later."""

    message = "The assistant is busy right now. Nothing was saved; retry in a moment."

    def __init__(self, *, retry_after: int, message: str | None = None, session_id: str | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.session_id = session_id


class StaffOnly(ConversationError):
    """Only staff may take a conversation over, reply in it or hand it back."""

    message = "Only staff may answer a conversation."


class EmptyReply(ConversationError):
    message = "The reply is empty."


class HandoffDisabled(ConversationError):
    """The site does not offer a person (CHATBOT_HANDOFF_ENABLED is off)."""

    message = "Talking to a person is not available here."


class OverBudget(ConversationError):
    """A daily token budget this turn draws on is used up (``conversations.spend``);
    nothing was written. ``budget`` names which one; ``retry_after`` is the seconds until
    it starts afresh (the next UTC midnight)."""

    MESSAGES = {
        "session": "This conversation has used up today's allowance. It can continue after midnight UTC.",
        "address": "You have used up today's allowance. Try again after midnight UTC.",
        "global": "The assistant has used up today's allowance for this site. Try again after midnight UTC.",
    }

    def __init__(self, *, budget: str, retry_after: int):
        super().__init__(self.MESSAGES[budget])
        self.budget = budget
        self.retry_after = retry_after
