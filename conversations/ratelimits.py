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
    """The visitor's address as a rate-limit key, believing X-Forwarded-For only as far
    as our own proxies.

    With CHATBOT_PROXY_COUNT = n, the n-th entry from the right is the one the outermost
    trusted proxy saw; anything left of it was written by the client and can be spoofed.
    That entry is parsed, not used verbatim: ``ip:port`` and ``[ipv6]:port`` lose their
    port (a new port per connection must not buy a new budget) and an IPv4-mapped IPv6
    address (``::ffff:192.0.2.1``, as dual-stack listeners report IPv4 visitors) counts
    as the IPv4 address it is. An entry that is not an address at all is not trusted:
    the peer's own address (REMOTE_ADDR, our proxy) is the key instead, a budget the
    client cannot multiply. IPv6 addresses count per /64, the block one household
    usually gets.
    """
    peer = parse_address(request.META.get("REMOTE_ADDR", ""))
    proxies = settings.CHATBOT_PROXY_COUNT
    address = peer
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            address = parse_address(forwarded[-proxies]) or peer
    if address is None:
        return request.META.get("REMOTE_ADDR", "")  # not an address (a test client, a unix socket)
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False).network_address)
    return str(address)


def parse_address(entry: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as proxies and servers write it (``1.2.3.4``, ``1.2.3.4:5678``,
    ``2001:db8::1``, ``[2001:db8::1]:5678``), IPv4-mapped IPv6 unwrapped; None when
    ``entry`` is none of these."""
    entry = entry.strip()
    if entry.startswith("["):
        host, bracket, port = entry[1:].partition("]")
        if not bracket or (port and not (port.startswith(":") and port[1:].isdigit())):
            return None
        entry = host
    elif entry.count(":") == 1:
        entry, _, port = entry.partition(":")
        if not port.isdigit():
            return None
    try:
        address = ipaddress.ip_address(entry)
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


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


def limit_session_write(request, *, session_id: str) -> None:
    """PATCH and DELETE of a session: the same budgets as message writes."""
    limit_message_write(request, session_id=session_id)


def limit_session_create(request) -> None:
    enforce(request, scope="create-ip", key=client_ip(request), rate=settings.CHATBOT_RATELIMIT_SESSION_CREATE_IP)
