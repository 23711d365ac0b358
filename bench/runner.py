"""The benchmark of issue 6, start to finish: ``bench/run`` (or ``python -m bench``).

1. A fresh PostgreSQL database, ``migrate``, ``collectstatic``, seeded histories.
2. The production server (the Procfile's ``web`` line, DEBUG off, rate limits off, the
   offline responder) measured with wrk and a raw-socket client: turns, the constant
   view ceiling, history cost, the alternatives, the widget.
3. The same server pointed at the fake OpenAI server: streaming overhead.
4. Results to bench/results/ (JSON and Markdown); everything started is stopped.

Every measurement is repeated; each reports the median with min and max over repeats.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis

from bench import admin_scale, alternatives, live, load, report, widget
from bench.server import REPO, ProductionServer, free_port

RESULTS = REPO / "bench" / "results"
RAW = RESULTS / "raw"  # logs and scratch files, not committed
SIZES = (10, 1_000, 10_000)


@dataclass
class Config:
    repeats: int = 3
    seconds: float = 5.0  # per wrk run
    turn_sessions: int = 1000  # sessions of 50 messages for the throughput runs
    history_requests: int = 200  # per size, per repeat, for turns and for page reads
    alternative_requests: dict = None  # per size, per repeat
    stream_requests: int = 30
    writers: int = 8
    writes_each: int = 100

    @classmethod
    def full(cls) -> Config:
        return cls(alternative_requests={10: 100, 1_000: 50, 10_000: 20})

    @classmethod
    def quick(cls) -> Config:
        return cls(
            repeats=1,
            seconds=2.0,
            turn_sessions=200,
            history_requests=40,
            alternative_requests={10: 20, 1_000: 10, 10_000: 5},
            stream_requests=10,
        )


def summary(values: list[float]) -> dict:
    """Median with min and max of one figure over the repeats."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "values": [round(v, 4) for v in values],
    }


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def latency_summary(per_repeat: list[list[float]]) -> dict:
    """p50 and p99 (ms) of each repeat's samples, summarised over the repeats."""
    return {
        "p50_ms": summary([percentile(s, 50) * 1000 for s in per_repeat]),
        "p99_ms": summary([percentile(s, 99) * 1000 for s in per_repeat]),
        "requests_per_repeat": len(per_repeat[0]),
    }


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- Setting up -----------------------------------------------------------------------


def database_urls(admin_url: str, name: str) -> tuple[str, str]:
    base = admin_url.rsplit("/", 1)[0]
    return f"{base}/{name}", base


def recreate_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def server_env(
    *, database_url: str, redis_url: str, allowed_origin: str, settings_module: str, extra: dict | None = None
) -> dict:
    """The production configuration, as an operator would set it, minus TLS and limits."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "VIRTUAL_ENV")
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": settings_module,  # bench.settings: production + /bench/ceiling
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CHATBOT_ALLOWED_ORIGINS": allowed_origin,
            "SECURE_SSL_REDIRECT": "false",  # plain HTTP on loopback
            "CHATBOT_RATELIMIT_ENABLE": "false",  # the bench is one client hammering
            "CHATBOT_DAILY_TOKENS_PER_ADDRESS": "0",  # ...and its upstreams charge nothing
            "CHATBOT_DAILY_TOKENS_PER_SESSION": "0",
            "CHATBOT_DAILY_TOKENS_GLOBAL": "0",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
    )
    env.update(extra or {})
    return env


def manage(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, check=True, capture_output=True)


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        "unknown",
    )
    memory = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line)
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(int(memory) / 1024 / 1024, 1)}


def versions(database_url: str, redis_client: redis.Redis | None) -> dict:
    import django
    import uvicorn

    with psycopg.connect(database_url) as connection:
        postgres = connection.execute("SHOW server_version").fetchone()[0]
    return {
        "python": sys.version.split()[0],
        "django": django.get_version(),
        "uvicorn": uvicorn.__version__,
        "postgresql": postgres,
        "redis": redis_client.info("server")["redis_version"] if redis_client else None,
    }


def load_average() -> float:
    return os.getloadavg()[0]


# --- The measurements -----------------------------------------------------------------


def turns_and_ceiling(server: ProductionServer, cfg: Config, ids_file: Path) -> dict:
    """Items 1 and 2: turns at 16 and 1 clients, and the constant views, interleaved."""
    runs: dict[str, list] = {k: [] for k in ("ceiling_16", "ceiling_plain_16", "turn_16", "turn_1", "ceiling_1")}
    base = server.base_url
    for repeat in range(cfg.repeats):
        log(f"turns and ceiling, repeat {repeat + 1}/{cfg.repeats}")
        plan = [
            ("ceiling_16", f"{base}/bench/ceiling", 16, "get"),
            ("turn_16", f"{base}/api/chat", 16, "turn"),
            ("ceiling_plain_16", f"{base}/bench/ceiling-plain", 16, "get"),
            ("turn_1", f"{base}/api/chat", 1, "turn"),
            ("ceiling_1", f"{base}/bench/ceiling", 1, "get"),
        ]
        for name, url, connections, mode in plan:
            result = load.run_wrk(
                url, connections=connections, seconds=cfg.seconds, mode=mode, ids_file=ids_file, workdir=RAW
            )
            if result.errors:
                raise RuntimeError(f"{name}: {result.errors} failed requests; see {server.log_path}")
            runs[name].append(result)
    out = {}
    for name, results in runs.items():
        out[name] = {
            "rate": summary([r.rate for r in results]),
            "p50_ms": summary([r.p50_ms for r in results]),
            "p99_ms": summary([r.p99_ms for r in results]),
            "min_ms": min(r.min_ms for r in results),
            "max_ms": max(r.max_ms for r in results),
        }
    out["turn_share_of_ceiling"] = summary(
        [t.rate / c.rate for t, c in zip(runs["turn_16"], runs["ceiling_16"], strict=True)]
    )
    out["turn_share_of_plain_ceiling"] = summary(
        [t.rate / c.rate for t, c in zip(runs["turn_16"], runs["ceiling_plain_16"], strict=True)]
    )
    return out


def turns_per_session(size: int) -> int:
    """How many timed turns one seeded session may take: its history may grow by 5%
    at most, so a "10-message session" is never measured at 30 messages."""
    return max(1, int(size * 0.05 / 2))


def history_cost(server: ProductionServer, cfg: Config, turn_ids: dict, read_ids: dict) -> dict:
    """Item 3: one client, a turn and a read of the latest 50, per session size."""
    client = load.RawClient("127.0.0.1", server.port)
    out = {}
    try:
        for size in SIZES:
            sessions = iter(turn_ids[size])
            per_session = turns_per_session(size)
            current, used = next(sessions), 0
            turn_samples, page_samples = [], []
            for repeat in range(cfg.repeats):
                log(f"history cost, {size} messages, repeat {repeat + 1}/{cfg.repeats}")
                samples = []
                for _ in range(cfg.history_requests):
                    if used == per_session:
                        current, used = next(sessions), 0
                    body = {"query": "What did we talk about so far?", "session_id": current}
                    samples.append(client.timed("POST", "/api/chat", body))
                    used += 1
                turn_samples.append(samples)
                reads = read_ids[size]
                page_samples.append(
                    [
                        client.timed("GET", f"/api/session/{reads[i % len(reads)]}/messages?limit=50")
                        for i in range(cfg.history_requests)
                    ]
                )
            out[size] = {"turn": latency_summary(turn_samples), "page": latency_summary(page_samples)}
    finally:
        client.close()
    for kind in ("turn", "page"):
        small, large = out[SIZES[0]][kind]["p50_ms"]["values"], out[SIZES[-1]][kind]["p50_ms"]["values"]
        out[f"{kind}_ratio_10000_to_10"] = summary([b / a for a, b in zip(small, large, strict=True)])
    return out


def alternatives_cost(cfg: Config, dsn: str, redis_client: redis.Redis, lc_ids: dict, guide_ids: dict) -> dict:
    """Item 4, in-process: load and per-turn cost of LangChain and the guide."""
    out = {}
    with alternatives.langchain_connection(dsn) as connection:
        for size in SIZES:
            count = cfg.alternative_requests[size]
            runs = {"langchain_load": [], "langchain_turn": [], "guide_load": [], "guide_turn": []}
            for repeat in range(cfg.repeats):
                log(f"alternatives, {size} messages, repeat {repeat + 1}/{cfg.repeats}")
                for name, call, ids in (
                    ("langchain_load", lambda s: alternatives.langchain_load(connection, s), lc_ids[size]["read"]),
                    (
                        "langchain_turn",
                        lambda s: alternatives.langchain_turn(connection, s, "Hi"),
                        lc_ids[size]["turn"],
                    ),
                    ("guide_load", lambda s: alternatives.guide_load(redis_client, s), guide_ids[size]["read"]),
                    ("guide_turn", lambda s: alternatives.guide_turn(redis_client, s, "Hi"), guide_ids[size]["turn"]),
                ):
                    samples = []
                    for i in range(count):
                        started = time.perf_counter()
                        call(ids[i % len(ids)])
                        samples.append(time.perf_counter() - started)
                    runs[name].append(samples)
            out[size] = {name: latency_summary(samples) for name, samples in runs.items()}
    return out


def concurrent_writers(server: ProductionServer, cfg: Config, dsn: str, redis_url: str) -> dict:
    """Item 4b: 8 writers appending 100 messages each to one session, at once."""
    total = cfg.writers * cfg.writes_each
    out = {"expected": total}

    # Ours, over HTTP: POST /api/session/<id>/messages.
    creator = load.RawClient("127.0.0.1", server.port)
    session_id = creator.json("POST", "/api/session/create", {}, expect=201)["session_id"]
    creator.close()
    clients = [load.RawClient("127.0.0.1", server.port) for _ in range(cfg.writers)]

    def ours(writer: int, index: int) -> None:
        clients[writer].json(
            "POST", f"/api/session/{session_id}/messages", {"message": f"w{writer}-{index}"}, expect=201
        )

    started = time.perf_counter()
    alternatives.run_writers(cfg.writers, cfg.writes_each, ours)
    out["ours_seconds"] = round(time.perf_counter() - started, 2)
    for client in clients:
        client.close()
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            "SELECT m.seq, m.content FROM conversations_message m JOIN conversations_session s ON s.id = m.session_id "
            "WHERE s.public_id = %s ORDER BY m.seq",
            (session_id,),
        ).fetchall()
    out["ours_kept"] = len({content for _, content in rows})
    out["ours_seq_unbroken"] = [seq for seq, _ in rows] == list(range(1, len(rows) + 1))

    # The guide's Redis list: read, append, write back.
    guide_clients = [redis.Redis.from_url(redis_url) for _ in range(cfg.writers)]
    key = f"writers-{secrets.token_hex(4)}"
    alternatives.run_writers(
        cfg.writers,
        cfg.writes_each,
        lambda w, i: alternatives.guide_save(guide_clients[w], key, {"role": "user", "content": f"w{w}-{i}"}),
    )
    out["guide_kept"] = len(alternatives.guide_load(guide_clients[0], key))
    for client in guide_clients:
        client.close()

    # LangChain: one INSERT per append, so nothing is lost (it just never reads cheaply).
    connections = [alternatives.langchain_connection(dsn) for _ in range(cfg.writers)]
    lc_session = alternatives.langchain_seed(dsn, [], 1)[0]
    alternatives.run_writers(
        cfg.writers,
        cfg.writes_each,
        lambda w, i: alternatives.langchain_history(connections[w], lc_session).add_messages(
            alternatives.as_langchain([("user", f"w{w}-{i}")])
        ),
    )
    out["langchain_kept"] = alternatives.langchain_load(connections[0], lc_session)
    for connection in connections:
        connection.close()
    return out


def widget_weight(server: ProductionServer, host_port: int, static_root: Path, skip_browser: bool) -> dict:
    """Item 5: the bytes and requests before the launcher shows."""
    out: dict = {"files": widget.file_sizes(static_root)}
    if not out["files"]:
        out["error"] = f"{static_root} holds no collected .js or .css file of static/widget/"
        return out
    if not skip_browser and Path(widget.CHROMIUM).exists():
        host = widget.host_page_server(host_port, server.base_url)
        try:
            out["browser"] = widget.browser_requests(f"http://127.0.0.1:{host_port}/")
        except Exception as error:  # reported, not hidden: the rest of the bench still counts
            out["browser_error"] = repr(error)
        finally:
            host.shutdown()
            host.server_close()
    else:
        out["browser_error"] = "skipped (--skip-browser or no /usr/bin/chromium)"
    prefix = f"{server.base_url}/static/widget/"
    requested = [u.removeprefix(prefix) for u in out.get("browser", {}).get("urls", []) if u.startswith(prefix)]
    # Without a browser, count every widget file: an upper bound.
    names = requested or list(out["files"])
    out["counted_files"] = names
    out["gzip_bytes"] = sum(out["files"][n]["gzip_bytes"] for n in names if n in out["files"])
    out["served"] = [widget.served_headers(server.base_url, "/static/widget/widget.js")]
    hashed = widget.hashed_name(static_root, "widget/widget.css")
    if hashed:
        out["served"].append(widget.served_headers(server.base_url, f"/static/{hashed}"))
    return out


def streaming_overhead(cfg: Config, env_for, log_path: Path) -> dict:
    """Item 6: the server pointed at the fake OpenAI server on loopback."""
    from bench.streaming import TimedFakeOpenAI, first_delta

    upstream = TimedFakeOpenAI().start()
    # 12 chunks 10 ms apart: the first delta stands alone, as it does with a real model.
    upstream.reset(reply="Streaming overhead probe: every word here arrives in its own small chunk.", chunk_delay=0.01)
    env = env_for(
        {
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": upstream.base_url,
            "CHAT_MODEL": "fake-model",
            "OPENAI_MAX_RETRIES": "0",
        }
    )
    samples_per_repeat = []
    try:
        with ProductionServer(env=env, workers=2, log_path=log_path) as server:
            session_id = None
            for n in range(5):  # warm up the SDK client and the pool in both workers
                session_id = first_delta("127.0.0.1", server.port, query=f"warm-up {n}", session_id=None)["session_id"]
            for repeat in range(cfg.repeats):
                log(f"streaming overhead, repeat {repeat + 1}/{cfg.repeats}")
                samples = []
                for n in range(cfg.stream_requests):
                    probe = f"probe {repeat}-{n}-{secrets.token_hex(4)}"
                    result = first_delta("127.0.0.1", server.port, query=probe, session_id=session_id)
                    samples.append(result["delta_at"] - upstream.first_chunk_at[probe])
                samples_per_repeat.append(samples)
    finally:
        upstream.stop()
    out = latency_summary(samples_per_repeat)
    out["min_ms"] = min(min(s) for s in samples_per_repeat) * 1000
    out["max_ms"] = max(max(s) for s in samples_per_repeat) * 1000
    return out


def visitors_at_once(cfg: Config, env_for, database_url: str) -> dict:
    """Item 7: thousands of streamed answers in flight on one worker, and the bare relay."""
    from bench import visitors

    sizes = visitors.SIZES if cfg.repeats > 1 else (100, 1_000)
    return visitors.measure(env_for, repeats=cfg.repeats, sizes=sizes, log=log, raw=RAW, database_url=database_url)


def live_feed(args, env_for, database_url: str) -> dict:
    """Item 9: subscribers open on one worker, and delivery across two instances."""
    return live.measure(
        env_for, quick=args.quick, log=log, raw=RAW, database_url=database_url, redis_url=args.redis_url
    )


def admin_at_scale(args, env_for, database_url: str) -> dict:
    """Item 10: admin search, the insight page and export at 1,000,000 messages."""
    return admin_scale.measure(env_for, quick=args.quick, log=log, raw=RAW, database_url=database_url)


def write_section(args, started: float, name: str, run) -> int:
    """One item alone (``--only``): measured, then written to raw/<item>[-quick].{json,md},
    or for a full retrieval, live or admin run to <item>.{json,md} beside latest.*."""
    results = {
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
        "mode": "quick" if args.quick else "full",
        "machine": machine(),
        # Item 8 needs no Redis.
        "versions": versions(
            args.admin_url, redis.Redis.from_url(args.redis_url) if name in ("visitors", "live") else None
        ),
        "load_average_at_start": round(load_average(), 2),
    }
    results[name] = run()
    results["load_average_at_end"] = round(load_average(), 2)
    results["duration_s"] = round(time.time() - started, 1)
    if name in ("retrieval", "live", "admin") and not args.quick:
        target = RESULTS / name
    else:
        target = RAW / (f"{name}-quick" if args.quick and name != "visitors" else name)
    target.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    if name == "visitors":
        markdown = report.visitors_markdown(results[name])
    elif name == "live":
        markdown = live.markdown(results)
    elif name == "admin":
        markdown = admin_scale.markdown(results)
    else:
        markdown = report.run_header(results) + "\n\n" + report.retrieval_markdown(results[name])
    target.with_suffix(".md").write_text(markdown)
    print(markdown)
    log(f"done in {results['duration_s']} s: {target.with_suffix('.md').relative_to(REPO)}")
    return 0


def retrieval_quality_and_cost(cfg: Config, admin_url: str) -> dict:
    """Item 8: ranking quality on the Django docs fixture, and retrieval's cost at scale."""
    from bench import retrieval

    return retrieval.measure(admin_url=admin_url, quick=cfg.repeats == 1, log=log, raw=RAW)


# --- The run --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: one short repeat (results go to raw/)")
    parser.add_argument("--skip-browser", action="store_true", help="do not start Chromium for the widget count")
    parser.add_argument("--db-name", default="bench_chatbot")
    parser.add_argument(
        "--settings",
        default="bench.settings",
        help="the server's settings module; another one (on PYTHONPATH) measures a candidate change, "
        "and its results go to raw/<module>.{json,md}",
    )
    parser.add_argument(
        "--admin-url", default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"))
    parser.add_argument(
        "--only",
        choices=["visitors", "retrieval", "live", "admin"],
        help="only this section (results go to raw/<section>.{json,md}; a full retrieval run to retrieval.{json,md})",
    )
    args = parser.parse_args(argv)
    cfg = Config.quick() if args.quick else Config.full()
    RAW.mkdir(parents=True, exist_ok=True)
    if args.only not in ("retrieval", "live", "admin") and not load.wrk_available():
        raise SystemExit("bench: wrk is not installed (apt-get install wrk)")
    started = time.time()

    if args.only == "retrieval":  # its own databases: none of items 1-7's setup
        return write_section(args, started, "retrieval", lambda: retrieval_quality_and_cost(cfg, args.admin_url))

    database_url, _ = database_urls(args.admin_url, args.db_name)
    redis_client = redis.Redis.from_url(args.redis_url)
    redis_client.flushdb()  # the bench's own Redis database number, nobody else's
    host_port = free_port()
    allowed_origin = f"http://127.0.0.1:{host_port}"

    def env_for(extra: dict | None = None) -> dict:
        return server_env(
            database_url=database_url,
            redis_url=args.redis_url,
            allowed_origin=allowed_origin,
            settings_module=args.settings,
            extra=extra,
        )

    log(f"database {args.db_name}: create, migrate, collectstatic")
    recreate_database(args.admin_url, args.db_name)
    setup_env = env_for()
    manage(setup_env, "migrate", "--noinput")
    manage(setup_env, "collectstatic", "--noinput")

    # This process reads and seeds the same database through Django.
    os.environ.update({k: v for k, v in setup_env.items() if k != "PATH"})
    import django

    django.setup()
    from django.conf import settings

    from bench import seed

    if args.only == "visitors":
        return write_section(args, started, "visitors", lambda: visitors_at_once(cfg, env_for, database_url))
    if args.only == "live":
        return write_section(args, started, "live", lambda: live_feed(args, env_for, database_url))
    if args.only == "admin":
        return write_section(args, started, "admin", lambda: admin_at_scale(args, env_for, database_url))

    log("seeding histories")
    turn_sessions = seed.create_sessions(cfg.turn_sessions, 50, label="turns")
    ids_file = RAW / "turn-session-ids.txt"
    ids_file.write_text("\n".join(turn_sessions) + "\n")
    turns_needed = cfg.history_requests * cfg.repeats
    history_turn_ids = {
        size: seed.create_sessions(math.ceil(turns_needed / turns_per_session(size)), size, label=f"turn-{size}")
        for size in SIZES
    }
    history_read_ids = {size: seed.create_sessions(3, size, label=f"read-{size}") for size in SIZES}
    alternatives.langchain_setup(database_url)
    lc_ids, guide_ids = {}, {}
    for size in SIZES:
        messages = seed.history(size)
        lc_ids[size] = {
            "read": alternatives.langchain_seed(database_url, messages, 3),
            "turn": alternatives.langchain_seed(database_url, messages, 3),
        }
        guide_ids[size] = {
            "read": alternatives.guide_seed(redis_client, messages, 3, prefix=f"read-{size}"),
            "turn": alternatives.guide_seed(redis_client, messages, 3, prefix=f"turn-{size}"),
        }
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")

    results: dict = {
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
        "mode": "quick" if args.quick else "full",
        "config": {k: v for k, v in cfg.__dict__.items()},
        "machine": machine(),
        "versions": versions(database_url, redis_client),
        "server_command": ProductionServer(env={}, log_path=RAW / "unused.log").command,
        "settings_module": args.settings,
        "server_workers": 2,
        "database_pool_max_size": settings.DATABASES["default"].get("OPTIONS", {}).get("pool", {}).get("max_size"),
        "load_average_at_start": round(load_average(), 2),
    }

    server = ProductionServer(env=env_for(), workers=2, log_path=RAW / "server.log")
    with server:
        log(f"server up at {server.base_url}; warming up")
        for url, mode in ((f"{server.base_url}/bench/ceiling", "get"), (f"{server.base_url}/api/chat", "turn")):
            load.run_wrk(url, connections=16, seconds=2, mode=mode, ids_file=ids_file, workdir=RAW)
        results["turns"] = turns_and_ceiling(server, cfg, ids_file)
        results["history"] = history_cost(server, cfg, history_turn_ids, history_read_ids)
        results["alternatives"] = alternatives_cost(cfg, database_url, redis_client, lc_ids, guide_ids)
        log("concurrent writers")
        results["writers"] = concurrent_writers(server, cfg, database_url, args.redis_url)
        log("widget")
        results["widget"] = widget_weight(server, host_port, Path(settings.STATIC_ROOT), args.skip_browser)
    log("streaming overhead")
    results["streaming"] = streaming_overhead(cfg, env_for, RAW / "server-streaming.log")
    results["visitors"] = visitors_at_once(cfg, env_for, database_url)
    results["retrieval"] = retrieval_quality_and_cost(cfg, args.admin_url)
    results["load_average_at_end"] = round(load_average(), 2)
    results["duration_s"] = round(time.time() - started, 1)
    redis_client.flushdb()
    redis_client.close()

    if args.settings != "bench.settings":
        target = RAW / args.settings
    elif args.quick:
        target = RAW / "quick"
    else:
        target = RESULTS / "latest"
    target.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    markdown = report.markdown(results)
    target.with_suffix(".md").write_text(markdown)
    print(markdown)
    log(f"done in {results['duration_s']} s: {target.with_suffix('.md').relative_to(REPO)}")
    return 0
