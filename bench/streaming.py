"""Streaming overhead: from the upstream's first chunk leaving to the client's first delta.

The fake OpenAI server from the tests (unchanged) runs in this process; a subclass
notes the moment each stream's first chunk has been written and flushed. The client,
also in this process, notes when the first ``event: delta`` arrives. Both clocks are
``time.perf_counter`` in one process, so the difference is what our server adds: the
SDK reading the chunk, the producer thread handing it over, the SSE encoding and the
write to the socket.
"""

from __future__ import annotations

import json
import socket
import threading
import time

from tests.fake_openai import FakeOpenAI


class TimedFakeOpenAI(FakeOpenAI):
    def __init__(self):
        self.first_chunk_at: dict[str, float] = {}
        self._marks_lock = threading.Lock()
        super().__init__()

    def _handler_class(self):
        fake = self
        base = super()._handler_class()

        class Timed(base):
            def _stream(self, body, behaviour):
                self._probe = (body.get("messages") or [{}])[-1].get("content", "")
                self._first = True
                return super()._stream(body, behaviour)

            def _event(self, data):
                super()._event(data)
                if self._first:
                    self._first = False
                    with fake._marks_lock:
                        fake.first_chunk_at[self._probe] = time.perf_counter()

        return Timed


def first_delta(host: str, port: int, *, query: str, session_id: str | None, timeout: float = 30.0) -> dict:
    """POST a streamed turn; return when the first delta arrived and the session id."""
    body = json.dumps({"query": query, "stream": True, **({"session_id": session_id} if session_id else {})}).encode()
    request = (
        f"POST /api/chat HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: text/event-stream\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    received = b""
    delta_at = None
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(request)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
            if delta_at is None and b"event: delta" in received:
                delta_at = time.perf_counter()
    text = received.decode("utf-8", "replace")
    if " 200 " not in text.split("\r\n", 1)[0] or "event: done" not in text:
        raise RuntimeError(f"streamed turn failed: {text[:500]!r}")
    start = text.index("event: session")
    session_line = text[start:].split("\n", 2)[1]
    return {"delta_at": delta_at, "session_id": json.loads(session_line.removeprefix("data: "))["session_id"]}
