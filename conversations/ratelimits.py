"""Rate limits on the endpoints that cost money or storage, counted in the cache.

With REDIS_URL every process and host shares the counters, so a limit holds however
far the app is scaled out. If the cache is unreachable the limits fail open: a chat
that answers without a limit for a minute beats a site whose chat is down because its
rate limiter is. Each such request logs a warning.
"""

from __future__ import annotations

import ipaddress
import logging

from django.conf import settings
from django_ratelimit.core import get_usage

from conversations.errors import ApiError

logger = logging.getLogger(__name__)


def client_ip(request) -> str:
    """The visitor's address, believing X-Forwarded-For only as far as our own proxies.

    With CHATBOT_PROXY_COUNT = n, the n-th address from the right is the one the
    outermost trusted proxy saw; anything left of it was written by the client and can
    be spoofed. IPv6 addresses count per /64, the block one household usually gets.
    """
    address = request.META.get("REMOTE_ADDR", "")
    proxies = settings.CHATBOT_PROXY_COUNT
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            address = forwarded[-proxies]
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False).network_address)
    return str(parsed)


def enforce(request, *, scope: str, key: str, rate: str) -> None:
    """Count one request against ``rate`` for ``key``; raise a 429 ApiError when over."""
    if not settings.CHATBOT_RATELIMIT_ENABLE or not rate:
        return
    try:
        usage = get_usage(request, group=f"chatbot.{scope}", key=lambda group, request: key, rate=rate, increment=True)
    except Exception as error:  # the cache is down: serve rather than refuse (see above)
        logger.warning("Rate limit %s not checked, the cache is unavailable: %s", scope, error)
        return
    if usage and usage["should_limit"]:
        retry_after = max(1, int(usage["time_left"]))
        raise ApiError(
            429,
            "rate_limited",
            f"Too many requests. Try again in {retry_after} seconds.",
            retryable=True,
            headers={"Retry-After": str(retry_after)},
        )


def limit_chat_turn(request, *, session_id: str | None) -> None:
    ip = client_ip(request)
    enforce(request, scope="chat-ip", key=ip, rate=settings.CHATBOT_RATELIMIT_CHAT_IP)
    if session_id:
        enforce(request, scope="chat-session", key=session_id, rate=settings.CHATBOT_RATELIMIT_CHAT_SESSION)
    else:  # the turn creates a session
        enforce(request, scope="create-ip", key=ip, rate=settings.CHATBOT_RATELIMIT_SESSION_CREATE_IP)


def limit_message_write(request, *, session_id: str) -> None:
    enforce(request, scope="write-ip", key=client_ip(request), rate=settings.CHATBOT_RATELIMIT_WRITE_IP)
    enforce(request, scope="write-session", key=session_id, rate=settings.CHATBOT_RATELIMIT_WRITE_SESSION)


def limit_session_create(request) -> None:
    enforce(request, scope="create-ip", key=client_ip(request), rate=settings.CHATBOT_RATELIMIT_SESSION_CREATE_IP)
