"""Plain HTTP clients for tests that talk to a real server: JSON, Server-Sent Events, raw sockets."""

from __future__ import annotations

import http.client
import json
import select
import socket
from collections.abc import Iterator
from http.client import HTTPMessage
from urllib.parse import urlsplit


def _connection(base_url: str, timeout: float) -> http.client.HTTPConnection:
    parts = urlsplit(base_url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)


def post_json(base_url: str, path: str, body: dict, *, timeout: float = 10.0) -> tuple[int, dict, HTTPMessage]:
    """POST ``body``; return (status, parsed JSON, headers, which match names in any case)."""
    connection = _connection(base_url, timeout)
    try:
        connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null"), response.headers
    finally:
        connection.close()


def get(base_url: str, path: str, *, timeout: float = 10.0) -> tuple[int, bytes]:
    """GET ``path`` exactly as written (no re-encoding); return (status, body)."""
    connection = _connection(base_url, timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def get_json(base_url: str, path: str, *, timeout: float = 10.0) -> tuple[int, dict]:
    connection = _connection(base_url, timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def delete(base_url: str, path: str, *, timeout: float = 10.0) -> int:
    connection = _connection(base_url, timeout)
    try:
        connection.request("DELETE", path)
        return connection.getresponse().status
    finally:
        connection.close()


class EventStream:
    """An open SSE response; iterate it for (event, data) pairs, close it to hang up."""

    def __init__(self, base_url: str, path: str, body: dict, *, timeout: float = 10.0):
        self.connection = _connection(base_url, timeout)
        self.connection.request(
            "POST", path, json.dumps(body), {"Content-Type": "application/json", "Accept": "text/event-stream"}
        )
        self.socket = self.connection.sock  # the response takes it over; keep it to hang up
        self.response = self.connection.getresponse()
        self.status = self.response.status
        self.content_type = self.response.getheader("Content-Type", "")

    def __iter__(self) -> Iterator[tuple[str, dict]]:
        event, data = "message", []
        while line := self.response.readline():
            line = line.decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].strip())
            elif line == "" and data:
                yield event, json.loads("\n".join(data))
                event, data = "message", []

    def close(self) -> None:
        """Hang up, the way a closed browser tab does."""
        self.socket.shutdown(socket.SHUT_RDWR)
        self.socket.close()


def stream_events(base_url: str, path: str, body: dict) -> list[tuple[str, dict]]:
    stream = EventStream(base_url, path, body)
    try:
        return list(stream)
    finally:
        stream.connection.close()


def assert_error(response, status: int, code: str | None = None) -> None:
    """A Django test-client response is the API's JSON error body with ``status``."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False
    assert set(body["error"]) >= {"code", "message"}
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code


class RawConnection:
    """A bare socket to a server, for requests no HTTP client will send: a declared
    length the body never reaches, a chunked body sent piece by piece."""

    def __init__(self, base_url: str, *, timeout: float = 10.0):
        parts = urlsplit(base_url)
        self.socket = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        self.sent = 0  # body bytes sent so far

    def send_head(self, method: str, path: str, headers: dict[str, str]) -> None:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
        self.socket.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def answered(self) -> bool:
        """Whether the server has started answering (without waiting for it)."""
        return bool(select.select([self.socket], [], [], 0)[0])

    def send_body(self, data: bytes, *, chunked: bool = False) -> bool:
        """Send ``data`` (as one chunk, if ``chunked``); False once the server has hung up."""
        frame = b"%x\r\n%s\r\n" % (len(data), data) if chunked else data
        try:
            self.socket.sendall(frame)
        except (BrokenPipeError, ConnectionResetError):
            return False
        self.sent += len(data)
        return True

    def response(self) -> tuple[int, dict[str, str], bytes]:
        """Read one response: (status, headers with lower-case names, body)."""
        reader = self.socket.makefile("rb")
        status = int(reader.readline().split()[1])
        headers = {}
        while (line := reader.readline().decode("latin-1").strip()) != "":
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = headers.get("content-length")
        body = reader.read(int(length)) if length is not None else reader.read()  # to the close
        return status, headers, body

    def close(self) -> None:
        self.socket.close()


class Feed:
    """An open live feed (GET, Server-Sent Events), read one frame at a time: each is
    (event, data, id), with ("comment", text, None) for a comment line such as a ping.
    A frame that does not come within ``timeout`` seconds raises, so a test waits for
    what it expects and fails when it never comes."""

    def __init__(self, base_url: str, path: str, *, headers: dict[str, str] | None = None, timeout: float = 10.0):
        self.connection = _connection(base_url, timeout)
        self.connection.request("GET", path, headers={"Accept": "text/event-stream", **(headers or {})})
        self.socket = self.connection.sock
        self.response = self.connection.getresponse()
        self.status = self.response.status
        self.headers = self.response.headers

    def next(self) -> tuple[str, object, str | None]:
        event, data, event_id = "message", [], None
        while line := self.response.readline():
            line = line.decode().rstrip("\r\n")
            if line.startswith(":"):
                return "comment", line[1:].strip(), None
            if line.startswith("retry:"):
                return "retry", int(line[len("retry:") :]), None
            if line.startswith("id:"):
                event_id = line[len("id:") :].strip()
            elif line.startswith("event:"):
                event = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].strip())
            elif line == "" and data:
                return event, json.loads("\n".join(data)), event_id
        raise EOFError("the feed ended")

    def next_event(self, *, skip: tuple[str, ...] = ("comment",)) -> tuple[str, object, str | None]:
        """The next frame that is not one of ``skip`` (by default: not a heartbeat)."""
        while (frame := self.next())[0] in skip:
            pass
        return frame

    def messages(self, count: int) -> list[dict]:
        """The next ``count`` message events' data, skipping everything else."""
        return [self.next_event(skip=("comment", "retry", "typing", "status"))[1] for _ in range(count)]

    def close(self) -> None:
        """Hang up, the way a closed browser tab does."""
        self.socket.shutdown(socket.SHUT_RDWR)
        self.socket.close()
        self.connection.close()
