"""The anchor of the "visitors waiting at once" benchmark: a bare ASGI relay through
``openai.AsyncOpenAI``, no framework and no database. It streams the upstream's deltas
as SSE, which is the least any server doing our job must do; run with the Procfile's
uvicorn flags: ``uvicorn bench.relay:app``. Bench-only: nothing imports it.
"""

from __future__ import annotations

import json
import os

import httpx
import openai

_client: openai.AsyncOpenAI | None = None


def client() -> openai.AsyncOpenAI:
    global _client
    if _client is None:
        limits = httpx.Limits(max_connections=10_000, max_keepalive_connections=100)
        _client = openai.AsyncOpenAI(
            api_key="sk-bench",
            base_url=os.environ["OPENAI_BASE_URL"],
            max_retries=0,
            timeout=60.0,  # as the product's OPENAI_TIMEOUT
            http_client=openai.DefaultAsyncHttpxClient(limits=limits),
        )
    return _client


def sse(event: str, data: dict) -> dict:
    body = f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()
    return {"type": "http.response.body", "body": body, "more_body": True}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        return await send({"type": "lifespan.shutdown.complete"})
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/healthz":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        return await send({"type": "http.response.body", "body": b"ok"})
    query = json.loads(body)["query"]
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    parts = []
    stream = await client().chat.completions.create(
        model="bench-model", messages=[{"role": "user", "content": query}], stream=True
    )
    async for chunk in stream:
        for choice in chunk.choices:
            if choice.delta and choice.delta.content:
                parts.append(choice.delta.content)
                await send(sse("delta", {"text": choice.delta.content}))
    await send(sse("done", {"answer": "".join(parts)}))
    await send({"type": "http.response.body", "body": b"", "more_body": False})
