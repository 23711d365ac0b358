"""Responses finished after the view has returned: a turn's Server-Sent Events, and,
under ASGI, a turn's JSON answer.

The turn runs in a task of its own (``conversations.inflight``) and pushes its events
into an ``EventChannel``; a response only reads from it. So when the visitor's browser
goes away mid-answer, only the reading stops: the task finishes and the turn is stored.
The channel is read by an async iterator under ASGI and by a plain one under WSGI
(Django buffers a stream of the wrong kind whole). This is the one module that writes
the SSE wire format.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

from django.http import HttpResponse, StreamingHttpResponse
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
            if self._async_queue is None:
                self._queue.put(item)
            elif _running_loop() is self._loop:
                self._async_queue.put_nowait(item)
            else:
                self._loop.call_soon_threadsafe(self._async_queue.put_nowait, item)

    def __iter__(self) -> Iterator[tuple[str, object]]:
        while (item := self._queue.get()) is not _END:
            yield item

    async def batches(self) -> AsyncIterator[list[tuple[str, object]]]:
        """Everything delivered since the last batch, as soon as there is something:
        one write for several deltas when the loop is busy, one per delta when not."""
        with self._lock:
            # From now on the producer hands items to this event loop; move over what
            # it delivered before we started reading.
            self._loop = asyncio.get_running_loop()
            self._async_queue = asyncio.Queue()
            while not self._queue.empty():
                self._async_queue.put_nowait(self._queue.get())
        while True:
            batch = [await self._async_queue.get()]
            while not self._async_queue.empty():
                batch.append(self._async_queue.get_nowait())
            if _END in batch:
                if batch := batch[: batch.index(_END)]:
                    yield batch
                return
            yield batch


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, cls=JSONEncoder, ensure_ascii=False)}\n\n".encode()


def event_stream_response(
    first: bytes, events: EventChannel, encode: Callable[[str, object], bytes], *, is_async: bool
) -> StreamingHttpResponse:
    """``first``, then each of ``events`` encoded, as a ``text/event-stream`` response."""
    if is_async:

        async def body():
            yield first
            async for batch in events.batches():
                yield b"".join(encode(event, payload) for event, payload in batch)
    else:

        def body():
            yield first
            for event, payload in events:
                yield encode(event, payload)

    response = StreamingHttpResponse(body(), content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx must not hold the stream back
    return response


class AwaitedResponse(HttpResponse):
    """A response whose status, body and headers are an awaitable's result.

    The ASGI handler (``chatbot/asgi.py``) awaits ``resolve()`` on the event loop after
    the middleware has run, just before sending: so the request's thread is free while
    the answer is awaited, and the middleware's headers still apply.
    """

    def __init__(self, produce: Callable[[], Awaitable[tuple[int, bytes, dict]]]):
        super().__init__(content_type="application/json")
        self._produce = produce

    async def resolve(self) -> None:
        status, content, headers = await self._produce()
        self.status_code = status
        self.content = content
        self["Content-Length"] = str(len(content))
        for name, value in headers.items():
            self[name] = value
