"""The ASGI handler: each request's synchronous code runs on a thread of its own, a
finished request's thread serves the next request instead of a new one starting, and a
burst waits for one of a bounded number of threads."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from django.http import HttpResponse
from django.urls import path

from chatbot import asgi
from conversations import inflight

meeting: threading.Barrier | None = None


def thread_of_this_request(request):
    return HttpResponse(str(threading.get_ident()))


def meet(request):
    """Answers only once every request the test sent is in here at the same time."""
    meeting.wait(timeout=5)
    return HttpResponse(str(threading.get_ident()))


urlpatterns = [path("thread", thread_of_this_request), path("meet", meet)]
pytestmark = pytest.mark.urls("tests.test_asgi")


async def get(app, url: str) -> tuple[int, str]:
    """One GET through the ASGI application, as uvicorn would send it."""
    request = [{"type": "http.request", "body": b"", "more_body": False}]
    sent = []

    async def receive():
        if request:
            return request.pop()
        await asyncio.Event().wait()  # the client never hangs up

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": url,
        "raw_path": url.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    return sent[0]["status"], b"".join(message.get("body", b"") for message in sent[1:]).decode()


def run_at_once(app, urls: list[str]) -> list[tuple[int, str]]:
    async def all_of_them():
        return await asyncio.gather(*(get(app, url) for url in urls))

    return asyncio.run(all_of_them())


def test_one_request_after_another_runs_on_the_same_thread():
    app = asgi.ReusedThreadASGIHandler()

    (first_status, first), (second_status, second) = [run_at_once(app, ["/thread"])[0] for _ in range(2)]

    assert first_status == second_status == 200
    assert first == second
    assert int(first) != threading.get_ident()
    assert len(app.idle_threads) == 1


def test_requests_in_flight_at_once_never_share_a_thread():
    global meeting
    meeting = threading.Barrier(3)  # on a shared thread, one would wait for the others forever
    app = asgi.ReusedThreadASGIHandler()

    answers = run_at_once(app, ["/meet"] * 3)

    assert [status for status, _ in answers] == [200, 200, 200]
    assert len({thread for _, thread in answers}) == 3
    assert len(app.idle_threads) == 3


def test_requests_past_the_thread_limit_wait_for_a_thread_instead_of_starting_one(monkeypatch):
    monkeypatch.setattr(asgi, "MAX_REQUEST_THREADS", 2)
    app = asgi.ReusedThreadASGIHandler()

    answers = run_at_once(app, ["/thread"] * 6)

    assert [status for status, _ in answers] == [200] * 6
    assert len({thread for _, thread in answers}) <= 2
    assert len(app.idle_threads) <= 2


@pytest.mark.parametrize(("origin", "readable"), [("https://shop.example", True), ("https://elsewhere.example", False)])
def test_a_chat_turn_past_the_bound_is_refused_on_arrival_readable_by_allowed_sites(settings, origin, readable):
    """Refused before it waits for anything: the application behind is never called."""
    settings.CHATBOT_MAX_TURNS_IN_FLIGHT = 1
    settings.CHATBOT_BUSY_RETRY_AFTER = 4
    settings.CORS_ALLOW_ALL_ORIGINS = False
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example"]
    reached = []

    async def behind(scope, receive, send):
        reached.append(scope["path"])

    sent = []

    async def send(message):
        sent.append(message)

    async def refused_turn():
        scope = {"type": "http", "method": "POST", "path": "/api/chat", "headers": [(b"origin", origin.encode())]}
        await inflight.TurnAdmission(behind)(scope, None, send)

    held = inflight.admissions.admit()
    try:
        asyncio.run(refused_turn())
    finally:
        held.release()

    assert reached == []
    start, body = sent
    headers = dict(start["headers"])
    assert start["status"] == 503
    assert headers[b"retry-after"] == b"4"
    assert json.loads(body["body"])["error"]["code"] == "busy"
    assert (headers.get(b"access-control-allow-origin") == origin.encode()) is readable
