"""Many live-feed subscribers in one cheap process: ``python -m bench.subscribers PORT IDS OUT``.

Run apart from the benchmark so its own memory is not counted in the server's. It opens
one raw-socket ``GET /api/session/<id>/events`` per line of the IDS file (the same id
may appear on several lines), a few hundred connections at a time so the server's listen
backlog never overflows, prints ``ready <open> <failed>`` once every feed has sent its
first event, then notes the wall-clock time of every ``message`` event it reads until a
line arrives on stdin; it then writes ``{"feeds": [[session_id, [[seq, time], …]], …]}``
to OUT and exits.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time

BATCH = 250


class Feed:
    def __init__(self, session_id: str):
        self.session_id = session_id
        self.received: list[tuple[int, float]] = []
        self.open = asyncio.Event()
        self.failed = False

    async def follow(self, port: int) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            self.failed = True
            self.open.set()
            return
        writer.write(
            f"GET /api/session/{self.session_id}/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        buffer = b""
        try:
            head, _, buffer = (await reader.readuntil(b"\r\n\r\n")).partition(b"\r\n\r\n")
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                self.failed = True
                return
            while data := await reader.read(65536):
                now = time.time()
                buffer += data
                *blocks, buffer = buffer.split(b"\n\n")
                for block in blocks:
                    self.open.set()
                    if b"event: message" in block:
                        seq = next(line[4:] for line in block.split(b"\n") if line.startswith(b"id: "))
                        self.received.append((int(seq), now))
        except (OSError, asyncio.IncompleteReadError):
            self.failed = True
        finally:
            self.open.set()
            writer.close()


async def run(port: int, ids: list[str], out: str) -> None:
    feeds = [Feed(session_id) for session_id in ids]
    tasks = []
    for start in range(0, len(feeds), BATCH):
        batch = feeds[start : start + BATCH]
        tasks += [asyncio.create_task(feed.follow(port)) for feed in batch]
        await asyncio.gather(*(feed.open.wait() for feed in batch))
    failed = sum(feed.failed for feed in feeds)
    print(f"ready {len(feeds) - failed} {failed}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    with open(out, "w") as file:
        json.dump({"failed": failed, "feeds": [[feed.session_id, feed.received] for feed in feeds]}, file)
    for task in tasks:
        task.cancel()


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port, ids_path, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    with open(ids_path) as file:
        ids = [line.strip() for line in file if line.strip()]
    asyncio.run(run(port, ids, out))


if __name__ == "__main__":
    main()
