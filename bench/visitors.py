"""Visitors waiting at once: N streamed turns asked at the same moment, each starting a
session of its own, against one worker of the production command, with an upstream that
streams every answer as 20 chunks over 4 s (``bench/upstream.py``). The same load goes
to a bare ASGI relay through ``AsyncOpenAI`` (``bench/relay.py``) as the anchor.

The client opens all N connections first, then sends every request at once; it notes
per request when it was sent, when its first delta came and when it ended. A sampler
reads the worker's resident memory every 20 ms.
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

from bench.server import REPO, ProductionServer, free_port

SIZES = (100, 1_000, 3_000)


def raise_open_file_limit() -> int:
    """Each answer in flight holds a visitor's socket and an upstream one in the server
    (and one more here): thousands of them need more than the usual 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def request_bytes(port: int, number: int) -> bytes:
    body = json.dumps({"query": f"visitor {number}: which tent is best for two people?", "stream": True}).encode()
    return (
        f"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: text/event-stream\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


async def visitor(port: int, number: int, connected: asyncio.Event, go: asyncio.Event, outcomes: list) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    outcome = {"status": None, "first_delta": None, "done": False}
    outcomes.append(outcome)
    connected.set()
    await go.wait()
    outcome["sent"] = time.perf_counter()
    writer.write(request_bytes(port, number))
    received = b""
    try:
        while data := await reader.read(65536):
            received += data
            if outcome["first_delta"] is None and b"event: delta" in received:
                outcome["first_delta"] = time.perf_counter()
    except ConnectionError:
        pass
    outcome["ended"] = time.perf_counter()
    head = received.split(b"\r\n", 1)[0].split(b" ")
    outcome["status"] = int(head[1]) if len(head) > 1 else 0
    outcome["done"] = b"event: done" in received
    writer.close()


async def ask_at_once(port: int, count: int) -> tuple[float, list[dict]]:
    go = asyncio.Event()
    outcomes: list[dict] = []
    events = [asyncio.Event() for _ in range(count)]
    tasks = [asyncio.create_task(visitor(port, n, events[n], go, outcomes)) for n in range(count)]
    await asyncio.gather(*(event.wait() for event in events))
    started = time.perf_counter()
    go.set()
    await asyncio.gather(*tasks)
    return started, outcomes


class RssSampler:
    def __init__(self, pid: int):
        self.pid = pid
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_kib = max(self.peak_kib, self.rss_kib())

    def __enter__(self) -> RssSampler:
        self.baseline_kib = self.rss_kib()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def one_run(server: ProductionServer, count: int, database_url: str | None) -> dict:
    asyncio.run(ask_at_once(server.port, 10))  # warm: the SDK client and its first connections
    since = time.time()
    with RssSampler(server.process.pid) as rss:
        started, outcomes = asyncio.run(ask_at_once(server.port, count))
    completed = [o for o in outcomes if o["status"] == 200 and o["done"]]
    refused = [o for o in outcomes if o["status"] == 503]
    first = [(o["first_delta"] - o["sent"]) * 1000 for o in completed if o["first_delta"]]
    result = {
        "visitors": count,
        "completed": len(completed),
        "refused": len(refused),
        "failed": count - len(completed) - len(refused),
        "makespan_s": round(max((o["ended"] for o in completed), default=started) - started, 2),
        "first_delta_p50_ms": percentile(first, 0.5),
        "first_delta_p99_ms": percentile(first, 0.99),
        "refused_p99_ms": percentile([(o["ended"] - o["sent"]) * 1000 for o in refused], 0.99),
        "rss_baseline_mib": round(rss.baseline_kib / 1024, 1),
        "rss_peak_mib": round(rss.peak_kib / 1024, 1),
        "rss_per_answer_kib": round((rss.peak_kib - rss.baseline_kib) / max(1, len(completed)), 1),
    }
    if database_url:
        result |= stored_since(database_url, since)
    return result


def stored_since(database_url: str, since: float) -> dict:
    """Turns stored by the run, and whether any session holds a half-written one."""
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT s.last_seq, count(m.id) FROM conversations_session s "
            "LEFT JOIN conversations_message m ON m.session_id = s.id "
            "WHERE s.created_at >= to_timestamp(%s) GROUP BY s.id",
            [since],
        ).fetchall()
    return {
        "turns_stored": sum(count for _, count in rows) // 2,
        "half_written": sum(1 for last_seq, count in rows if count not in (0, 2) or last_seq != count),
    }


def measure(env_for, *, repeats: int, sizes=SIZES, log, raw: Path, database_url: str) -> dict:
    """Both servers, each size, ``repeats`` times (once at 3,000), the anchor first; each
    run on freshly started servers, so that memory one run kept does not hide the next's."""
    limit = raise_open_file_limit()
    upstream_port = free_port()
    upstream = subprocess.Popen([sys.executable, "-m", "bench.upstream", str(upstream_port)], cwd=REPO)
    upstream_env = {"OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": f"http://127.0.0.1:{upstream_port}/v1"}
    upstream_env |= {"CHAT_MODEL": "bench-model", "OPENAI_MAX_RETRIES": "0"}
    out: dict = {"open_file_limit": limit, "sizes": {}}
    try:
        for size in sizes:
            runs: dict[str, list] = {"relay": [], "ours": []}
            for repeat in range(repeats if size < 3_000 else 1):
                for name in ("relay", "ours"):
                    server = ProductionServer(env=env_for(upstream_env), workers=1, log_path=raw / f"server-{name}.log")
                    if name == "relay":
                        server.command = server.command.replace("chatbot.asgi:application", "bench.relay:app")
                    log(f"visitors at once: {size} on {name}, repeat {repeat + 1}")
                    with server:
                        runs[name].append(one_run(server, size, database_url if name == "ours" else None))
            out["sizes"][size] = runs
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)
    return out
