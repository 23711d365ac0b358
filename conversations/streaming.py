"""Server-Sent Events for a turn that runs in a thread of its own.

The turn (``chat.stream_turn``) runs in a producer thread and pushes events into an
``EventChannel``; the HTTP response only reads from it. So when the visitor's browser
goes away mid-answer, only the reading stops: the thread finishes, and the turn is
stored. The channel can be read by a plain iterator (WSGI, the development server) or
an async iterator (ASGI), because Django buffers a stream of the wrong kind whole.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor

from rest_framework.utils.encoders import JSONEncoder  # datetimes as DRF writes them

_END = object()


class EventChannel:
    def __init__(self):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._async_queue: asyncio.Queue | None = None
        self._lock = threading.Lock()

    def put(self, event: str, payload) -> None:
        """Called by the producer, from any thread."""
        self._deliver((event, payload))

    def close(self) -> None:
        self._deliver(_END)

    def _deliver(self, item) -> None:
        with self._lock:
            if self._async_queue is not None:
                self._loop.call_soon_threadsafe(self._async_queue.put_nowait, item)
            else:
                self._queue.put(item)

    def __iter__(self) -> Iterator[tuple[str, object]]:
        while (item := self._queue.get()) is not _END:
            yield item

    async def __aiter__(self) -> AsyncIterator[tuple[str, object]]:
        with self._lock:
            # From now on the producer hands items to this event loop; move over what
            # it delivered before we started reading.
            self._loop = asyncio.get_running_loop()
            self._async_queue = asyncio.Queue()
            while not self._queue.empty():
                self._async_queue.put_nowait(self._queue.get())
        while (item := await self._async_queue.get()) is not _END:
            yield item


def run_in_thread(produce: Callable[[Callable[[str, object], None]], None], *, executor: Executor) -> EventChannel:
    """Start ``produce(emit)`` on ``executor`` and return the channel it emits into.

    A ThreadPoolExecutor's threads are joined when the interpreter exits, so a server
    shutting down still waits for the turn to be stored.
    """
    channel = EventChannel()

    def target():
        try:
            produce(channel.put)
        finally:
            channel.close()

    executor.submit(target)
    return channel


def sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, cls=JSONEncoder, ensure_ascii=False)}\n\n".encode()
