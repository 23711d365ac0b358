"""An OpenAI-compatible upstream for the "visitors waiting at once" benchmark.

asyncio, in a process of its own, so that thousands of slow streams cost it little: every
streamed answer is ``CHUNKS`` chunks spread over ``SECONDS`` (a real model's pace), then
the finish and usage chunks and ``[DONE]``, over keep-alive connections with chunked
encoding; a request that does not stream gets ``ANSWER`` whole, at once.
Run: ``python -m bench.upstream PORT``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

CHUNKS = 20
SECONDS = 4.0
ANSWER = "Here is what the documentation says about it [1]."


def chunk(delta: dict | None, finish_reason: str | None = None, usage: dict | None = None) -> bytes:
    data = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "bench-model",
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
    if usage:
        data["usage"] = usage
    event = f"data: {json.dumps(data)}\n\n".encode()
    return f"{len(event):x}\r\n".encode() + event + b"\r\n"


def completion() -> bytes:
    """A whole answer at once, for a turn that does not stream: the same words, citing
    its first source, whatever the prompt (so two servers' turns differ only in what
    they do around the model)."""
    data = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "bench-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 12, "total_tokens": 32},
    }
    payload = json.dumps(data).encode()
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\n"
        + f"Content-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = json.loads(await reader.readexactly(length))
            if not body.get("stream"):
                writer.write(completion())
                await writer.drain()
                continue
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
                b"Connection: keep-alive\r\n\r\n"
            )
            for n in range(CHUNKS):
                writer.write(chunk({"content": f"word{n} "}))
                await writer.drain()
                await asyncio.sleep(SECONDS / CHUNKS)
            writer.write(chunk({}, "stop"))
            writer.write(chunk(None, usage={"prompt_tokens": 20, "completion_tokens": CHUNKS, "total_tokens": 40}))
            event = b"data: [DONE]\n\n"
            writer.write(f"{len(event):x}\r\n".encode() + event + b"\r\n0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(answer, "127.0.0.1", port, backlog=8192)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
