"""A session's live feed: ``GET /api/session/<id>/events``, as Server-Sent Events.

A feed sends every message stored after its resume point, in seq order, each once:
it subscribes to the session (``conversations.live``) before it reads the database, so
a message stored in between is both read and received, and the copy received is
dropped by its seq; a message received past a gap (one whose event was lost) brings the
missing ones from the database first. ``typing`` and ``status`` events are relayed as
they come; a comment line is sent when nothing else is, so proxies keep the stream open.
A feed ends when the id it was opened with stops reaching the session (rotated, or the
session erased): the ``revoked`` event ends it at once on every instance, and its
opening read, made after it subscribed, catches a rotation that came before.

Under ASGI the feed is read on the event loop: it holds no request thread, and its
database reads run on a database thread that gives its connection back after each one.
Under the development server a plain iterator blocks its thread, which is fine there.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator

from django.conf import settings
from django.http import StreamingHttpResponse

from conversations import inflight, live
from conversations.live import Event, Subscription
from conversations.models import Message, Session
from conversations.serializers import message_data

RETRY = b"retry: 3000\n\n"  # how long a browser waits before it reconnects, in ms
PING = b": ping\n\n"
# Messages read from the database at a time, catching up.
READ_BATCH = 200


def messages_after(*, session_pk: int, after: int) -> list[Event]:
    """The session's messages with a seq above ``after``, as feed events (database)."""
    events: list[Event] = []
    while True:
        newer = Message.objects.filter(session_id=session_pk, seq__gt=after).select_related("feedback")
        batch = list(newer.order_by("seq")[:READ_BATCH])
        events += [Event.of("message", message_data(message), message.seq) for message in batch]
        if len(batch) < READ_BATCH:
            return events
        after = batch[-1].seq


def opening(*, session_pk: int, public_id: str, after: int) -> list[Event] | None:
    """What a feed sends first: the session's status, then what it missed (database);
    None when ``public_id`` no longer reaches the session, and the feed must end."""
    session = Session.objects.select_related("handled_by").filter(pk=session_pk, public_id=public_id).first()
    if session is None:
        return None
    return [Event.of("status", session.live_status()), *messages_after(session_pk=session_pk, after=after)]


class Relay:
    """Which received events a feed sends: each message once, in seq order."""

    def __init__(self, after: int):
        self.last = after

    def missing(self, events: list[Event]) -> bool:
        """Whether ``events`` skip a seq, so the database must fill the gap first."""
        expected = self.last
        for event in events:
            if event.seq is None or event.seq <= expected:
                continue
            if event.seq != expected + 1:
                return True
            expected = event.seq
        return False

    def frames(self, events: list[Event]) -> bytes:
        sent = []
        for event in events:
            if event.seq is None:
                sent.append(event.frame)
            elif event.seq > self.last:
                sent.append(event.frame)
                self.last = event.seq
        return b"".join(sent)


def first_heartbeat() -> float:
    """Feeds opened together would ping together: each starts at a random phase, so a
    worker's heartbeats are spread over the interval instead of written in one go."""
    return random.uniform(0.1, 1.0) * settings.CHATBOT_LIVE_HEARTBEAT_SECONDS  # noqa: S311 - not a secret


def revoked(events: list[Event]) -> bool:
    return any(event.name == live.REVOKED for event in events)


async def async_feed(session_pk: int, public_id: str, after: int) -> AsyncIterator[bytes]:
    subscription = Subscription(session_pk, asyncio.get_running_loop())
    hub = live.hub()
    await hub.subscribe(subscription)
    try:
        yield RETRY
        relay = Relay(after)
        first = await inflight.on_database_thread(opening)(session_pk=session_pk, public_id=public_id, after=after)
        if first is None:
            return
        yield relay.frames(first)
        wait = first_heartbeat()
        while True:
            event = await subscription.get(wait)
            wait = settings.CHATBOT_LIVE_HEARTBEAT_SECONDS
            if event is None:
                yield PING
                continue
            batch = [event, *subscription.pending()]
            if revoked(batch):
                return
            if relay.missing(batch):
                batch[:0] = await inflight.on_database_thread(messages_after)(session_pk=session_pk, after=relay.last)
            if frames := relay.frames(batch):
                yield frames
    finally:
        await hub.unsubscribe(subscription)


def blocking_feed(session_pk: int, public_id: str, after: int) -> Iterator[bytes]:
    subscription = Subscription(session_pk)
    hub = live.hub()
    loop = inflight.background_loop()  # where a Redis hub keeps its subscriber
    asyncio.run_coroutine_threadsafe(hub.subscribe(subscription), loop).result()
    try:
        yield RETRY
        relay = Relay(after)
        first = opening(session_pk=session_pk, public_id=public_id, after=after)
        inflight.release_connection()
        if first is None:
            return
        yield relay.frames(first)
        wait = first_heartbeat()
        while True:
            event = subscription.get_blocking(wait)
            wait = settings.CHATBOT_LIVE_HEARTBEAT_SECONDS
            if event is None:
                yield PING
                continue
            batch = [event, *subscription.pending()]
            if revoked(batch):
                return
            if relay.missing(batch):
                batch[:0] = messages_after(session_pk=session_pk, after=relay.last)
                inflight.release_connection()
            if frames := relay.frames(batch):
                yield frames
    finally:
        asyncio.run_coroutine_threadsafe(hub.unsubscribe(subscription), loop).result()


def feed_response(*, session: Session, after: int, is_asgi: bool) -> StreamingHttpResponse:
    """The open feed of ``session`` from the seq ``after`` on."""
    feed = async_feed if is_asgi else blocking_feed
    body = feed(session.pk, session.public_id, after)
    response = StreamingHttpResponse(body, content_type="text/event-stream; charset=utf-8")
    response["X-Accel-Buffering"] = "no"  # nginx must not hold the stream back
    return response
