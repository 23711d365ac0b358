"""A small OpenAI-compatible server for tests: the real ``openai`` SDK talks to it over
HTTP, so everything on our side of the network is real.

It serves ``POST /v1/chat/completions``, plain and streamed, records every request it
receives, and can be told to misbehave in each way a real upstream does. It also serves
``POST /v1/embeddings`` (recorded apart, in ``embedding_requests``) with deterministic
vectors: see ``fake_embedding``.
"""

from __future__ import annotations

import json
import re
import threading
import time
import zlib
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EMBEDDING_DIMENSIONS = 256
# Words the fake embeds as one meaning, so that a question can be near a page that never
# uses its words ("reimbursement" finds "refund"), as a real embedding model would be.
SYNONYMS = {"reimbursement": "refund", "shelter": "tent"}
EMBEDDING_STOPWORDS = set("a an and are can do for i in is it my of the to we".split())


def fake_embedding(text: str) -> list[float]:
    """A bag of words: each word (a synonym as the word it stands for, a plural as its
    singular) counts on one dimension, so texts sharing words or meanings are near.
    Not normalised, as some servers' vectors are not."""
    vector = [0.0] * EMBEDDING_DIMENSIONS
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        if word in EMBEDDING_STOPWORDS:
            continue
        if len(word) > 3 and word.endswith("s"):
            word = word[:-1]
        word = SYNONYMS.get(word, word)
        vector[zlib.crc32(word.encode()) % EMBEDDING_DIMENSIONS] += 1.0
    return vector


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # hundreds of connections at once


@dataclass
class Behaviour:
    reply: str = "Hello from the fake model."
    echo: bool = False  # reply "echo: <the last message>" instead of `reply`
    citations: list | None = None
    status: int = 200  # anything else answers with an OpenAI-style error body
    delay: float = 0.0  # seconds before answering at all
    chunk_delay: float = 0.0  # seconds between streamed chunks
    chunk_size: int = 4  # characters per streamed chunk
    cut_after_chunks: int | None = None  # drop the connection mid-stream
    stall_after_chunks: int | None = None  # stop sending mid-stream, connection open
    garbage_after_chunks: int | None = None  # a chunk that is not JSON mid-stream
    garbage: bool = False  # answer 200 with a body that is not a completion
    # Answer nothing until this many requests are open at once (or 30 s pass): proves a
    # client holds that many open together, by counting rather than by timing.
    hold_until_in_flight: int | None = None
    empty: bool = False  # answer a completion with no content
    embedding_status: int = 200  # anything else: /embeddings answers with an error body
    embedding_failures_after: int = 0  # ...after answering this many /embeddings requests well
    usage: dict = field(default_factory=lambda: {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18})


class FakeOpenAI:
    def __init__(self):
        self.behaviour = Behaviour()
        self.requests: list[dict] = []
        self.embedding_requests: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests it was answering at one time
        self._lock = threading.Lock()
        self._in_flight_changed = threading.Condition(self._lock)
        self.released = threading.Event()  # ends the stalls of the previous test
        self.server = _Server(("127.0.0.1", 0), self._handler_class())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self, **behaviour) -> None:
        self.released.set()
        self.released = threading.Event()
        with self._lock:
            self.behaviour = Behaviour(**behaviour)
            self.requests.clear()
            self.embedding_requests.clear()
            self.max_in_flight = 0

    @property
    def last_messages(self) -> list[dict]:
        return self.requests[-1]["messages"]

    def _record(self, body: dict) -> Behaviour:
        with self._lock:
            self.requests.append(body)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._in_flight_changed.notify_all()
            behaviour = self.behaviour
            if behaviour.hold_until_in_flight:
                self._in_flight_changed.wait_for(lambda: self.max_in_flight >= behaviour.hold_until_in_flight, 30)
            return behaviour

    def _done(self) -> None:
        with self._lock:
            self.in_flight -= 1
            self._in_flight_changed.notify_all()

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> None:
        """Return once ``count`` requests have arrived (since the last reset)."""
        with self._lock:
            if not self._in_flight_changed.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"{len(self.requests)} of {count} requests reached the fake model")

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                if self.path.endswith("/embeddings"):
                    return self._embeddings()
                try:
                    self._answer()
                finally:
                    fake._done()

            def _answer(self):
                if not self.path.endswith("/chat/completions"):
                    fake._record({})
                    return self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                behaviour = fake._record(body)
                if behaviour.delay:
                    time.sleep(behaviour.delay)
                if behaviour.status != 200:
                    return self._json(
                        behaviour.status,
                        {"error": {"message": f"fake failure {behaviour.status}", "type": "server_error"}},
                    )
                if behaviour.garbage:
                    return self._raw(200, b"<html>definitely not json", "text/html")
                if behaviour.echo:
                    behaviour = replace(behaviour, reply=f"echo: {body['messages'][-1]['content']}")
                if body.get("stream"):
                    return self._stream(body, behaviour)
                return self._json(200, self._completion(body, behaviour))

            def _embeddings(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.embedding_requests.append(body)
                    behaviour = fake.behaviour
                    answered = len(fake.embedding_requests) - 1
                if behaviour.embedding_status != 200 and answered >= behaviour.embedding_failures_after:
                    return self._json(
                        behaviour.embedding_status,
                        {"error": {"message": f"fake failure {behaviour.embedding_status}", "type": "server_error"}},
                    )
                inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                data = [
                    {"object": "embedding", "index": i, "embedding": fake_embedding(text)}
                    for i, text in enumerate(inputs)
                ]
                usage = {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}
                return self._json(200, {"object": "list", "data": data, "model": body.get("model"), "usage": usage})

            def _completion(self, body, behaviour):
                completion = {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "fake-model"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": None if behaviour.empty else behaviour.reply},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": behaviour.usage,
                }
                if behaviour.citations is not None:
                    completion["citations"] = behaviour.citations
                return completion

            def _stream(self, body, behaviour):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                model = body.get("model", "fake-model")
                text = behaviour.reply
                pieces = [text[i : i + behaviour.chunk_size] for i in range(0, len(text), behaviour.chunk_size)]
                try:
                    for index, piece in enumerate(pieces):
                        if behaviour.cut_after_chunks is not None and index >= behaviour.cut_after_chunks:
                            self.wfile.flush()
                            self.connection.shutdown(2)  # drop the stream mid-answer
                            return
                        if behaviour.stall_after_chunks is not None and index >= behaviour.stall_after_chunks:
                            fake.released.wait(30)  # past any client's timeout, until the next reset
                            return
                        if behaviour.garbage_after_chunks is not None and index >= behaviour.garbage_after_chunks:
                            self.wfile.write(b"data: {this is not json\n\n")
                            self.wfile.flush()
                            return
                        self._event(self._chunk(model, {"content": piece}, None, behaviour))
                        if behaviour.chunk_delay:
                            time.sleep(behaviour.chunk_delay)
                    self._event(self._chunk(model, {}, "stop", behaviour))
                    if (body.get("stream_options") or {}).get("include_usage"):
                        usage_chunk = self._chunk(model, None, None, behaviour)
                        usage_chunk["usage"] = behaviour.usage
                        self._event(usage_chunk)
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

            def _chunk(self, model, delta, finish_reason, behaviour):
                chunk = {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
                }
                if behaviour.citations is not None:
                    chunk["citations"] = behaviour.citations
                return chunk

            def _event(self, data):
                self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()

            def _json(self, status, data):
                self._raw(status, json.dumps(data).encode(), "application/json")

            def _raw(self, status, payload, content_type):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler
