"""Who may do what, as small functions views can call."""

from __future__ import annotations

import secrets

from django.conf import settings

from conversations.models import Role


def has_server_api_key(request) -> bool:
    """True when the request carries ``Authorization: Bearer <CHATBOT_SERVER_API_KEY>``."""
    expected = settings.CHATBOT_SERVER_API_KEY
    if not expected:
        return False
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(token.strip().encode(), expected.encode())


def can_write_role(request, role: str) -> bool:
    """Anyone holding a session may add what its visitor says; only staff and the
    server itself may put words in the assistant's (or the system's) mouth."""
    if role == Role.USER:
        return True
    return request.user.is_staff or has_server_api_key(request)
