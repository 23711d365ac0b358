"""Item 9, the live feed: many open subscriptions on one worker, and a message stored
through one instance reaching the feeds on another.

Two instances of the production command (A and B, one worker each) share PostgreSQL
and Redis. ``bench.subscribers``, a process of its own, opens the feeds on B (several
per session); B's worker memory is read before and after, and the connections B holds
to PostgreSQL (by ``application_name``) and Redis while they are open. Then a message a
second is stored through A (``POST /api/session/<id>/messages`` with the server API key)
in turn across the sessions; every subscriber notes when it read each one. Lost,
doubled and out-of-order messages are counted per subscriber.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import redis

from bench.server import REPO, ProductionServer
from bench.visitors import RssSampler, percentile, raise_open_file_limit

FEEDS_PER_SESSION = 50
SIZES = (1_000, 5_000)


def post(base_url: str, path: str, body: dict, *, api_key: str = "") -> dict:
    import urllib.request

    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(base_url + path, json.dumps(body).encode(), headers)  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def connections_of(database_url: str, application: str) -> dict:
    """The instance's connections to PostgreSQL: all of them (its pool keeps idle ones)
    and those doing something (not idle)."""
    with psycopg.connect(database_url) as connection:
        total, busy = connection.execute(
            "SELECT count(*), count(*) FILTER (WHERE state <> 'idle') FROM pg_stat_activity "
            "WHERE application_name = %s",
            [application],
        ).fetchone()
    return {"total": total, "busy": busy}


def subscribe(port: int, ids_file: Path, out_file: Path) -> tuple[subprocess.Popen, int, int]:
    """Start ``bench.subscribers``; return it and the feeds it opened and failed to open."""
    client = subprocess.Popen(  # noqa: S603 - our own module
        [sys.executable, "-m", "bench.subscribers", str(port), str(ids_file), str(out_file)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    ready = client.stdout.readline().split()
    return client, int(ready[1]), int(ready[2])


def stop(client: subprocess.Popen) -> None:
    client.stdin.write("stop\n")
    client.stdin.flush()
    client.wait(timeout=60)


def redis_clients(client: redis.Redis) -> dict:
    """The clients of the bench's Redis database (others may share the server)."""
    db = str(client.connection_pool.connection_kwargs.get("db", 0))
    clients = [c for c in client.client_list() if c.get("db") == db]
    return {
        "clients": len(clients) - 1,  # not this one
        "subscribed": sum(1 for c in clients if int(c.get("sub", 0)) or int(c.get("psub", 0))),
        "channels": sum(int(c.get("sub", 0)) for c in clients),
    }


def one_run(a: ProductionServer, b: ProductionServer, *, count: int, seconds: int, api_key: str, ctx: dict) -> dict:
    sessions = [post(a.base_url, "/api/session/create", {})["session_id"] for _ in range(count // FEEDS_PER_SESSION)]
    ids_file, out_file = ctx["raw"] / f"live-ids-{count}.txt", ctx["raw"] / f"live-received-{count}.json"
    ids_file.write_text("".join(f"{s}\n" for _ in range(FEEDS_PER_SESSION) for s in sessions))
    # Warm-up: the first feeds import and allocate what every later one shares.
    (ctx["raw"] / "live-warm-ids.txt").write_text("".join(f"{s}\n" for s in sessions[:50]))
    stop(subscribe(b.port, ctx["raw"] / "live-warm-ids.txt", ctx["raw"] / "live-warm.json")[0])
    time.sleep(1)
    rss = RssSampler(b.process.pid)
    before = {
        "rss_kib": rss.rss_kib(),
        "postgres": connections_of(ctx["database_url"], "bench-live-b"),
        "redis": redis_clients(ctx["redis"]),
    }
    client, opened, failed_to_open = subscribe(b.port, ids_file, out_file)
    time.sleep(2)  # let the worker settle before reading its memory
    during = {
        "rss_kib": rss.rss_kib(),
        "postgres": connections_of(ctx["database_url"], "bench-live-b"),
        "redis": redis_clients(ctx["redis"]),
    }
    ctx["log"](f"live: {opened} feeds open on B ({failed_to_open} failed); storing through A for {seconds} s")
    sent: dict[tuple[str, int], float] = {}
    for n in range(seconds):
        session_id = sessions[n % len(sessions)]
        at = time.time()
        stored = post(
            a.base_url,
            f"/api/session/{session_id}/messages",
            {"role": "assistant", "message": f"live probe {n}"},
            api_key=api_key,
        )
        sent[(session_id, stored["message"]["seq"])] = at
        time.sleep(max(0.0, at + 1 - time.time()))
    time.sleep(2)  # the last message's way to every feed
    stop(client)
    received = json.loads(out_file.read_text())
    delays, lost, doubled, out_of_order = [], 0, 0, 0
    for session_id, events in received["feeds"]:
        seqs = [seq for seq, _ in events]
        expected = {seq for (sid, seq) in sent if sid == session_id}
        lost += len(expected - set(seqs))
        doubled += len(seqs) - len(set(seqs))
        out_of_order += sum(1 for x, y in zip(seqs, seqs[1:], strict=False) if y < x)
        delays += [(at - sent[(session_id, seq)]) * 1000 for seq, at in events if (session_id, seq) in sent]
    return {
        "subscribers": count,
        "sessions": len(sessions),
        "opened": opened,
        "failed_to_open": failed_to_open,
        "rss_before_mib": round(before["rss_kib"] / 1024, 1),
        "rss_open_mib": round(during["rss_kib"] / 1024, 1),
        "kib_per_subscriber": round((during["rss_kib"] - before["rss_kib"]) / max(1, opened), 1),
        "postgres_connections_b": {"before": before["postgres"], "open": during["postgres"]},
        "redis": {"before": before["redis"], "open": during["redis"]},
        "messages_stored": len(sent),
        "deliveries_expected": len(sent) * FEEDS_PER_SESSION,
        "deliveries": len(delays),
        "delivery_p50_ms": round(percentile(delays, 0.5) or 0, 1),
        "delivery_p99_ms": round(percentile(delays, 0.99) or 0, 1),
        "delivery_max_ms": round(max(delays, default=0), 1),
        "lost": lost,
        "doubled": doubled,
        "out_of_order": out_of_order,
    }


def anchor_run(env: dict, *, count: int, raw: Path) -> dict:
    """The same feeds held open by ``bench/sse_anchor.py`` under the same uvicorn command:
    what a stream costs before Django, the database and Redis add theirs."""
    server = ProductionServer(env=env, workers=1, log_path=raw / "server-live-anchor.log")
    server.command = server.command.replace("chatbot.asgi:application", "bench.sse_anchor:app")
    ids_file, out_file = raw / f"live-ids-{count}.txt", raw / "live-anchor.json"
    (raw / "live-warm-ids.txt").write_text("".join(f"warm-up-{n}\n" for n in range(50)))
    with server:
        stop(subscribe(server.port, raw / "live-warm-ids.txt", out_file)[0])
        time.sleep(1)
        rss = RssSampler(server.process.pid)
        before = rss.rss_kib()
        client, opened, _ = subscribe(server.port, ids_file, out_file)
        time.sleep(2)
        during = rss.rss_kib()
        stop(client)
    return {
        "opened": opened,
        "rss_before_mib": round(before / 1024, 1),
        "rss_open_mib": round(during / 1024, 1),
        "kib_per_subscriber": round((during - before) / max(1, opened), 1),
    }


def measure(env_for, *, quick: bool, log, raw: Path, database_url: str, redis_url: str) -> dict:
    """Each size on freshly started instances, so one run's memory does not hide the next's."""
    limit = raise_open_file_limit()
    api_key = secrets.token_urlsafe(24)
    seconds = 10 if quick else 30
    sizes = (1_000,) if quick else SIZES
    out: dict = {"open_file_limit": limit, "seconds": seconds, "feeds_per_session": FEEDS_PER_SESSION, "sizes": {}}
    ctx = {"raw": raw, "log": log, "database_url": database_url, "redis": redis.Redis.from_url(redis_url)}
    for count in sizes:
        servers = {
            name: ProductionServer(
                env=env_for({"CHATBOT_SERVER_API_KEY": api_key, "PGAPPNAME": f"bench-live-{name}"}),
                workers=1,
                log_path=raw / f"server-live-{name}.log",
            )
            for name in ("a", "b")
        }
        log(f"live: {count} subscribers")
        for server in servers.values():
            server.launch()
        try:
            for server in servers.values():
                server.wait_ready()
            out["sizes"][count] = one_run(
                servers["a"], servers["b"], count=count, seconds=seconds, api_key=api_key, ctx=ctx
            )
        finally:
            for server in servers.values():
                server.stop()
        log(f"live: {count} streams held by the bare ASGI anchor")
        out["sizes"][count]["anchor"] = anchor_run(env_for(), count=count, raw=raw)
    return out


def markdown(results: dict) -> str:
    live = results["live"]
    lines = [
        f"# Item 9: the live feed ({results['mode']} run, {results['started_at']})",
        "",
        f"Machine: {results['machine']['cpu']}, {results['machine']['cores']} cores, "
        f"{results['machine']['memory_gib']} GiB; load average {results['load_average_at_start']} at the start, "
        f"{results['load_average_at_end']} at the end. Two instances, one uvicorn worker each; "
        f"{live['feeds_per_session']} feeds per session; a message a second through A for {live['seconds']} s.",
        "",
        "| subscribers on B | opened | KiB each | B's RSS before → open (MiB) | B's PostgreSQL connections "
        "total / busy (before → open) | Redis clients (before → open) | delivery p50 / p99 / max (ms) | deliveries | "
        "lost | doubled | out of order |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    anchor = [
        "",
        "The anchor, `bench/sse_anchor.py` (a bare ASGI app holding the same streams open under the same "
        "uvicorn command; no Django, database or Redis):",
        "",
        "| streams | opened | KiB each | RSS before → open (MiB) |",
        "|---|---|---|---|",
    ]
    for count, run in live["sizes"].items():
        pg, rd = run["postgres_connections_b"], run["redis"]
        lines.append(
            f"| {count} | {run['opened']} | {run['kib_per_subscriber']} | {run['rss_before_mib']} → "
            f"{run['rss_open_mib']} | {pg['before']['total']} / {pg['before']['busy']} → {pg['open']['total']} / "
            f"{pg['open']['busy']} | {rd['before']['clients']} → "
            f"{rd['open']['clients']} | {run['delivery_p50_ms']} / {run['delivery_p99_ms']} / "
            f"{run['delivery_max_ms']} | {run['deliveries']} of {run['deliveries_expected']} | {run['lost']} | "
            f"{run['doubled']} | {run['out_of_order']} |"
        )
        bare = run["anchor"]
        anchor.append(
            f"| {count} | {bare['opened']} | {bare['kib_per_subscriber']} | {bare['rss_before_mib']} → "
            f"{bare['rss_open_mib']} |"
        )
    return "\n".join(lines + anchor) + "\n"
