"""CHATBOT_MAX_BODY_BYTES, enforced by the server while the body arrives.

Django reads a request's whole body before any view sees it: under ASGI into a
temporary file that spills to disk past FILE_UPLOAD_MAX_MEMORY_SIZE, under the
development server as far as the declared length. A parser that checks the size
afterwards has already paid for it, and never sees a chunked body's size at all. So
both entry points are wrapped before Django:

* a declared ``Content-Length`` over the limit is answered 413 at once, without
  reading a byte of the body;
* any other body (chunked, or under the limit) is counted as it arrives and cut with a
  413 the moment it passes the limit; one that fits is handed to Django with its
  ``Content-Length`` set, so a chunked JSON body is read like any other (DRF ignores a
  body without one).

A refused request's connection is closed (``Connection: close``): the rest of its body
is never read. The answer is the API's error body, whatever the path.
"""

from __future__ import annotations

import io
import json

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream

# The longest chunk-size line (hex size plus extensions) or trailer line we read.
MAX_CHUNK_LINE = 1024
# The admin's upload of knowledge base files (staff only, checked by the view): the one
# path whose body may be as large as CHATBOT_KB_MAX_UPLOAD_BYTES.
KB_UPLOAD_PATH = "/admin/knowledge/source/upload/"


def limit_for(path: str) -> int:
    if path == KB_UPLOAD_PATH:
        return settings.CHATBOT_KB_MAX_UPLOAD_BYTES
    return settings.CHATBOT_MAX_BODY_BYTES


def refusal(limit: int) -> bytes:
    from conversations.errors import error_body  # not at import: asgi.py loads this before django.setup()

    return json.dumps(
        error_body("body_too_large", f"The request body may be at most {limit} bytes."), separators=(",", ":")
    ).encode()


def malformed() -> bytes:
    from conversations.errors import error_body

    return json.dumps(error_body("invalid", "The chunked request body is malformed."), separators=(",", ":")).encode()


class ASGIBodyLimit:
    """Wrap an ASGI application (the Procfile's uvicorn command serves this)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared, chunked = None, False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = int(value) if value.isdigit() else -1
            elif name == b"transfer-encoding":
                chunked = True
        if not chunked and not declared:  # no body: nothing to count
            return await self.app(scope, receive, send)
        limit = limit_for(scope["path"])
        if declared is not None and declared > limit:
            return await answer(send, 413, refusal(limit))

        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left before its body was complete
            body += message.get("body", b"")
            if len(body) > limit:
                return await answer(send, 413, refusal(limit))
            if not message.get("more_body", False):
                break
        if chunked:
            headers = [(name, value) for name, value in scope["headers"] if name != b"transfer-encoding"]
            scope = {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}

        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()  # Django listens for the client leaving
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        return await self.app(scope, replay, send)


async def answer(send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class WSGIBodyLimit:
    """Wrap a WSGI application (``manage.py runserver`` serves this).

    Django's development server hands the application the raw connection for a chunked
    body (it does not decode chunked transfer coding, and wraps the socket in a
    LimitedStream of length 0), so the chunks are decoded here. A server that decodes
    them itself says so with ``wsgi.input_terminated``; its body is only counted.
    """

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        limit = limit_for(environ.get("PATH_INFO", ""))
        declared = environ.get("CONTENT_LENGTH") or ""
        stream = environ["wsgi.input"]
        if declared.isdigit() and int(declared) > limit:
            return refuse(environ, start_response, 413, refusal(limit), stream, consumed=0)
        if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return self.app(environ, start_response)
        if environ.get("wsgi.input_terminated"):
            body = stream.read(limit + 1)
            if len(body) > limit:
                return refuse(environ, start_response, 413, refusal(limit), stream, consumed=None)
        elif isinstance(stream, LimitedStream):
            decoder = ChunkedBody(stream, limit)
            stream.limit = decoder.wire_budget
            try:
                body = decoder.read()
            except BodyTooLargeError:
                return refuse(environ, start_response, 413, refusal(limit), stream, consumed=decoder.consumed)
            except ValueError:
                return refuse(environ, start_response, 400, malformed(), stream, consumed=decoder.consumed)
            stream.limit = decoder.consumed  # the next request's bytes are not this body's
        else:
            return self.app(environ, start_response)
        environ = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return self.app(environ, start_response)


def refuse(environ, start_response, status: int, body: bytes, stream, *, consumed: int | None):
    # The development server reads a request's unread body off the connection after the
    # answer (its LimitedStream, up to the declared length): a declared 100 MB would keep
    # the thread reading. Nothing more of this body is wanted, so the stream ends here.
    if isinstance(stream, LimitedStream) and consumed is not None:
        stream.limit = consumed
    reason = {400: "Bad Request", 413: "Content Too Large"}[status]
    start_response(f"{status} {reason}", [("Content-Type", "application/json")])
    # WSGI may not name Connection itself; an answer of unknown length (an iterator,
    # not a list) makes the server close the connection after it, as it must here.
    return iter([body])


class BodyTooLargeError(Exception):
    pass


class ChunkedBody:
    """Decode an HTTP/1.1 chunked body from ``stream``, refusing it as soon as its data
    would pass ``limit`` bytes; ``consumed`` counts the bytes read off the wire.

    The framing is bounded too: a body sent one byte a chunk, or with long chunk
    extensions, may take at most ``wire_budget`` bytes on the wire in all.
    """

    def __init__(self, stream, limit: int):
        self.stream = stream
        self.limit = limit
        self.wire_budget = 2 * limit + 2 * MAX_CHUNK_LINE
        self.consumed = 0

    def line(self) -> bytes:
        line = self.stream.readline(MAX_CHUNK_LINE)
        self.consumed += len(line)
        if self.consumed >= self.wire_budget:
            raise BodyTooLargeError
        if not line.endswith(b"\n"):
            raise ValueError("chunk line too long or cut off")
        return line

    def exactly(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            part = self.stream.read(size - len(data))
            if not part:
                raise ValueError("chunk cut off")
            self.consumed += len(part)
            data += part
        return bytes(data)

    def read(self) -> bytes:
        body = bytearray()
        while True:
            size_field = self.line().split(b";", 1)[0].strip()
            size = int(size_field, 16)  # ValueError when it is no hex number
            if size < 0 or size_field.startswith((b"-", b"+", b"0x", b"0X")):
                raise ValueError("bad chunk size")
            if size == 0:
                break
            if len(body) + size > self.limit:
                raise BodyTooLargeError
            body += self.exactly(size)
            if self.exactly(2) != b"\r\n":
                raise ValueError("chunk not followed by CRLF")
        while self.line().strip():  # trailer fields, up to the empty line
            pass
        return bytes(body)
