"""The anchor of the live-feed benchmark (item 9): a bare ASGI app that holds every
``GET /api/session/<id>/events`` open as an event stream, no framework, no database, no
Redis. What one of its open streams costs in memory is uvicorn's and the connection's
share of a feed; run with the Procfile's uvicorn flags: ``uvicorn bench.sse_anchor:app``.
Bench-only: nothing imports it.
"""

from __future__ import annotations

FIRST = b'retry: 3000\n\nevent: status\ndata: {"handled_by": null, "waiting": false}\n\n'


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] == "/healthz":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": FIRST, "more_body": True})
    while (await receive())["type"] != "http.disconnect":
        pass
