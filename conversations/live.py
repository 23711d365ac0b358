"""The live feed's hub: what is stored in a session reaches every view that has it open.

``publish`` is called wherever a session changes (a message stored, a turn starting to be
answered, staff taking over); it sends after the transaction commits, so a feed never
shows what a rollback takes back. Open feeds (``conversations.feeds``) ``subscribe`` to
their session here.

With ``REDIS_URL`` the events go through Redis pub/sub, one channel per session
(``chatbot:live:<pk>``), so a message stored by any instance reaches the feeds open on
every other. Each process keeps one subscriber connection and fans each event out to its
own feeds: an open feed costs a queue in memory, not a connection, a thread or a
database connection. Redis rather than PostgreSQL's LISTEN/NOTIFY: a listening
connection would be one taken from the small database pool for good, per process, and
NOTIFY runs inside the writing transaction, where the turn's one-statement write is
kept short on purpose.

Without Redis an in-process hub relays the events (development: one process).
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from rest_framework.utils.encoders import JSONEncoder  # datetimes as DRF writes them

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "chatbot:live:"


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a session's feed, with its Server-Sent Events frame written once for
    every feed it goes to. ``seq`` is the message's, for ``message`` events."""

    name: str
    seq: int | None
    frame: bytes

    @classmethod
    def of(cls, name: str, data: dict | str, seq: int | None = None) -> Event:
        text = data if isinstance(data, str) else encode(data)
        head = f"id: {seq}\n" if seq is not None else ""
        return cls(name, seq, f"{head}event: {name}\ndata: {text}\n\n".encode())


def encode(data: dict) -> str:
    return json.dumps(data, cls=JSONEncoder, ensure_ascii=False, separators=(",", ":"))


def publish(session_pk: int, event: str, data: dict, *, seq: int | None = None) -> None:
    """Send ``event`` to every open feed of the session once the current transaction
    commits (at once outside one). A lost event costs a feed nothing it cannot recover:
    messages are read back from the database by seq, so failures are logged, never
    raised into the request that stored the message."""
    send = partial(_send, session_pk, event, encode(data), seq)
    # Outside a transaction, at once: on_commit would first take a database connection
    # (to read autocommit), and keep it past the point where the request gave its own back.
    if connection.in_atomic_block:
        transaction.on_commit(send)
    else:
        send()


def publish_message(message) -> None:
    from conversations.serializers import message_data

    publish(message.session_id, "message", message_data(message), seq=message.seq)


def publish_status(session) -> None:
    publish(session.pk, "status", session.live_status())


# Not an event a feed sends: it tells every feed open on the session to end, because the
# id it was opened with no longer reaches it (``Session.rotate_public_id``). It carries
# nothing, so a feed on the revoked id never learns the new one.
REVOKED = "revoked"


def publish_revoked(session_pk: int) -> None:
    publish(session_pk, REVOKED, {})


def _send(session_pk: int, event: str, text: str, seq: int | None) -> None:
    try:
        hub().send(session_pk, event, text, seq)
    except Exception:
        logger.warning("Could not publish a live %s event", event, exc_info=True)


class Subscription:
    """One open feed's inbox: events are delivered from any thread, read on one side.

    ``loop`` given: read with ``await get(timeout)`` on that loop (ASGI); else with the
    blocking ``get_blocking(timeout)`` (the development server's thread).
    """

    __slots__ = ("session_pk", "_loop", "_queue")

    def __init__(self, session_pk: int, loop: asyncio.AbstractEventLoop | None = None):
        self.session_pk = session_pk
        self._loop = loop
        self._queue = asyncio.Queue() if loop else queue.SimpleQueue()

    def deliver(self, event: Event) -> None:
        if self._loop is None:
            self._queue.put(event)
        elif _running_loop() is self._loop:
            self._queue.put_nowait(event)
        else:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, event)

    async def get(self, timeout: float) -> Event | None:
        """The next event, or None after ``timeout`` seconds without one."""
        try:
            async with asyncio.timeout(timeout):
                return await self._queue.get()
        except TimeoutError:
            return None

    def get_blocking(self, timeout: float) -> Event | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def pending(self) -> list[Event]:
        """What else has arrived, without waiting."""
        events = []
        while not self._queue.empty():
            events.append(self._queue.get_nowait())
        return events


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class LocalHub:
    """The development hub: the feeds of this process, keyed by session, thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._feeds: dict[int, set[Subscription]] = {}

    def send(self, session_pk: int, event: str, text: str, seq: int | None) -> None:
        self._fan_out(session_pk, Event.of(event, text, seq))

    def _fan_out(self, session_pk: int, event: Event) -> None:
        with self._lock:
            feeds = list(self._feeds.get(session_pk, ()))
        for feed in feeds:
            feed.deliver(event)

    def _add(self, subscription: Subscription) -> bool:
        """Add a feed; True if it is its session's first here."""
        with self._lock:
            feeds = self._feeds.setdefault(subscription.session_pk, set())
            feeds.add(subscription)
            return len(feeds) == 1

    def _remove(self, subscription: Subscription) -> bool:
        """Remove a feed; True if it was its session's last here."""
        with self._lock:
            feeds = self._feeds.get(subscription.session_pk)
            if feeds is None:
                return False
            feeds.discard(subscription)
            if feeds:
                return False
            del self._feeds[subscription.session_pk]
            return True

    async def subscribe(self, subscription: Subscription) -> None:
        self._add(subscription)

    async def unsubscribe(self, subscription: Subscription) -> None:
        self._remove(subscription)


class RedisHub(LocalHub):
    """Redis pub/sub: one subscriber connection for this process, on the loop of the
    first feed; publishing uses a plain connection from any thread.

    A session's channel is subscribed when its first local feed opens and unsubscribed
    when its last closes. Those calls are made one at a time under a lock: redis-py's
    pub/sub object is not safe for concurrent subscribe calls, and a race between two of
    them can lose a subscription.
    """

    def __init__(self, url: str):
        import redis
        import redis.asyncio

        super().__init__()
        timeouts = {"socket_connect_timeout": settings.REDIS_TIMEOUT, "socket_timeout": settings.REDIS_TIMEOUT}
        self._publisher = redis.Redis.from_url(url, **timeouts)
        # No read timeout on the listener: it waits for events as long as it must.
        self._listener = redis.asyncio.Redis.from_url(url, socket_connect_timeout=settings.REDIS_TIMEOUT)
        self._pubsub = self._listener.pubsub(ignore_subscribe_messages=True)
        self._subscribing: asyncio.Lock | None = None
        self._reader: asyncio.Task | None = None

    def send(self, session_pk: int, event: str, text: str, seq: int | None) -> None:
        self._publisher.publish(f"{CHANNEL_PREFIX}{session_pk}", encode({"e": event, "s": seq, "d": text}))

    async def subscribe(self, subscription: Subscription) -> None:
        if self._subscribing is None:
            self._subscribing = asyncio.Lock()
        async with self._subscribing:
            if self._add(subscription):
                try:
                    await self._pubsub.subscribe(f"{CHANNEL_PREFIX}{subscription.session_pk}")
                except BaseException:
                    self._remove(subscription)
                    raise
            if self._reader is None or self._reader.done():
                self._reader = asyncio.get_running_loop().create_task(self._read())

    async def unsubscribe(self, subscription: Subscription) -> None:
        async with self._subscribing:
            if self._remove(subscription):
                try:
                    await self._pubsub.unsubscribe(f"{CHANNEL_PREFIX}{subscription.session_pk}")
                except Exception:
                    logger.warning("Could not unsubscribe a live feed's channel", exc_info=True)

    async def _read(self) -> None:
        """Relay every event the subscriber connection receives to this process's feeds.
        On a Redis failure it retries; redis-py subscribes again when it reconnects."""
        failing = False
        while True:
            try:
                message = await self._pubsub.get_message(timeout=None)
            except asyncio.CancelledError:
                raise
            except Exception:
                if not failing:  # once an outage, not once a retry
                    logger.warning("The live feeds' Redis connection failed; reconnecting", exc_info=True)
                failing = True
                await asyncio.sleep(1)
                continue
            if failing:
                logger.warning("The live feeds' Redis connection is back")
                failing = False
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"].decode()
            payload = json.loads(message["data"])
            session_pk = int(channel.removeprefix(CHANNEL_PREFIX))
            self._fan_out(session_pk, Event.of(payload["e"], payload["d"], payload["s"]))


_hubs: dict[str, LocalHub] = {}
_hubs_lock = threading.Lock()


def hub() -> LocalHub:
    """This process's hub for the configured ``REDIS_URL`` (in-process without one),
    made on first use."""
    url = settings.REDIS_URL
    with _hubs_lock:
        if url not in _hubs:
            _hubs[url] = RedisHub(url) if url else LocalHub()
        return _hubs[url]
