"""Background work of conversations: telling the team that a visitor asked for a person.

The handoff webhook is an outside call to whatever URL the operator configured, so it
never runs inside the visitor's request. In production the database task queue holds it
(the Procfile's worker runs it, and a failed attempt is enqueued again for later). The
immediate backend of development and tests would run a task in the caller, so there the
delivery runs on a thread of its own instead, sleeping between its attempts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.db import close_old_connections
from django.urls import reverse
from django.utils import timezone
from django_tasks import task

from conversations.models import Role, Session
from knowledge.fetching import FetchError, FetchRefused, checked_address

logger = logging.getLogger(__name__)

EVENT = "handoff.requested"
TIMEOUT_SECONDS = 5.0
MAX_RESPONSE_BYTES = 64 * 1024  # what we read of the receiver's answer before hanging up
LAST_MESSAGE_CHARS = 280
_PORTS = {"http": 80, "https": 443}


class WebhookError(Exception):
    """One delivery attempt failed. ``permanent`` failures (a refused address, a 4xx other
    than 429) are not retried: sending the same request again would fail the same way."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


def handoff_payload(session: Session) -> dict:
    """The webhook's body: which conversation, where staff read it, what the visitor last said."""
    last = session.messages.filter(role=Role.USER).order_by("-seq").values_list("content", flat=True).first()
    path = reverse("admin:conversations_session_change", args=[session.pk])
    return {
        "event": EVENT,
        "session_id": session.public_id,
        "transcript_url": settings.CHATBOT_PUBLIC_URL.rstrip("/") + path,
        "last_message": (last or "")[:LAST_MESSAGE_CHARS],
        "waiting_since": session.waiting_since.isoformat() if session.waiting_since else None,
    }


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 over ``<timestamp>.<body>``: signing the timestamp
    too lets a receiver refuse an old request replayed with its valid signature."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def post_webhook(url: str, body: bytes) -> int:
    """POST ``body`` to ``url`` once, signed; return the status. Goes through the crawler's
    address check (private hosts refused unless CHATBOT_WEBHOOK_ALLOW_PRIVATE_HOSTS) and
    connects to the checked address; redirects are not followed; at most
    MAX_RESPONSE_BYTES of the answer are read. Raises WebhookError."""
    parts = urlsplit(url)
    if parts.scheme not in _PORTS or not parts.hostname:
        raise WebhookError(f"{url}: only http and https webhooks are sent", permanent=True)
    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii")
        address = checked_address(
            host, parsed.port or _PORTS[parsed.scheme], allow_private_setting="CHATBOT_WEBHOOK_ALLOW_PRIVATE_HOSTS"
        )
    except httpx.InvalidURL as error:
        raise WebhookError(f"{url}: {error}", permanent=True) from None
    except FetchError as error:
        raise WebhookError(str(error), permanent=isinstance(error, FetchRefused)) from None
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "Host": parsed.netloc.decode("ascii"),
        "User-Agent": "ChatbotWebhook/1.0",
        "X-Chatbot-Event": EVENT,
        "X-Chatbot-Timestamp": timestamp,
    }
    if settings.CHATBOT_HANDOFF_WEBHOOK_SECRET:
        headers["X-Chatbot-Signature"] = signature(settings.CHATBOT_HANDOFF_WEBHOOK_SECRET, timestamp, body)
    with httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False) as client:
        request = client.build_request(
            "POST",
            parsed.copy_with(host=address),
            content=body,
            headers=headers,
            extensions={"sni_hostname": host} if parsed.scheme == "https" else {},
        )
        try:
            response = client.send(request, stream=True)
            try:
                read = 0
                for chunk in response.iter_raw():
                    read += len(chunk)
                    if read >= MAX_RESPONSE_BYTES:
                        break
                return response.status_code
            finally:
                response.close()
        except httpx.HTTPError as error:
            raise WebhookError(f"{url}: {error.__class__.__name__}: {error}") from None


def deliver_handoff(*, session_pk: int) -> bool:
    """One attempt at telling the webhook that session ``session_pk`` waits for a person.
    Returns False when there is nothing to tell any more (the session is gone, or someone
    took it over meanwhile). Touches the database (a read) and the network."""
    session = Session.objects.filter(pk=session_pk).first()
    if session is None or session.waiting_since is None:
        return False
    body = json.dumps(handoff_payload(session)).encode()
    status = post_webhook(settings.CHATBOT_HANDOFF_WEBHOOK_URL, body)
    if status >= 500 or status == 429:
        raise WebhookError(f"the handoff webhook answered {status}")
    if status >= 300:
        raise WebhookError(f"the handoff webhook answered {status}", permanent=True)
    return True


def retry_delay(attempt: int) -> float:
    """Seconds before the attempt after ``attempt``: CHATBOT_HANDOFF_WEBHOOK_RETRY_SECONDS, doubling."""
    return settings.CHATBOT_HANDOFF_WEBHOOK_RETRY_SECONDS * 2 ** (attempt - 1)


def _attempt(session_pk: int, attempt: int) -> str:
    """One attempt, logged: ``delivered``, ``skipped``, ``retry`` or ``failed``."""
    try:
        delivered = deliver_handoff(session_pk=session_pk)
    except WebhookError as error:
        last = error.permanent or attempt >= settings.CHATBOT_HANDOFF_WEBHOOK_ATTEMPTS
        logger.warning(
            "handoff webhook for session %s, attempt %d of %d: %s%s",
            session_pk,
            attempt,
            settings.CHATBOT_HANDOFF_WEBHOOK_ATTEMPTS,
            error,
            " (giving up)" if last else "",
        )
        return "failed" if last else "retry"
    return "delivered" if delivered else "skipped"


@task()
def notify_handoff(session_pk: int, attempt: int = 1) -> str:
    """Send the handoff webhook; after a failure worth retrying, enqueue the next attempt
    to run after ``retry_delay(attempt)``, up to CHATBOT_HANDOFF_WEBHOOK_ATTEMPTS."""
    outcome = _attempt(session_pk, attempt)
    if outcome == "retry":
        run_after = timezone.now() + timedelta(seconds=retry_delay(attempt))
        notify_handoff.using(run_after=run_after).enqueue(session_pk, attempt + 1)
    return outcome


def _deliver_on_thread(session_pk: int) -> None:
    try:
        for attempt in range(1, settings.CHATBOT_HANDOFF_WEBHOOK_ATTEMPTS + 1):
            if _attempt(session_pk, attempt) != "retry":
                return
            time.sleep(retry_delay(attempt))
    finally:
        close_old_connections()


def request_handoff_notice(*, session_pk: int) -> None:
    """Have the handoff webhook sent, outside this request: enqueued when the task backend
    can run it later (the database queue), else on a thread of its own (the immediate
    backend, which would run it here and now). Call it after the transaction commits."""
    if notify_handoff.get_backend().supports_defer:
        notify_handoff.enqueue(session_pk)
    else:
        threading.Thread(target=_deliver_on_thread, args=(session_pk,), name="handoff-webhook", daemon=True).start()
