"""Item 10, the admin at scale: 1,000,000 messages in 50,000 sessions on PostgreSQL.

Seeded by ``bench.seed.create_conversations`` (COPY; a shop's visitors over 30 days,
answers with citations, usage and feedback as real turns store them). Then:

- **message search**: the admin's sessions list over HTTP (``/admin/conversations/
  session/?q=…``) as a signed-in staff member, from the production server, several
  words and a phrase, each timed repeatedly after a warm-up; p50 and p95 over all of
  them, and per word with the sessions it matched. Beside it, in this process, the same
  words counted through the index (``conversations.search``) and through the
  ``icontains`` scan it replaced;
- **the insight page** (``admin:conversations_insight``) for the last 30 days over HTTP
  as the same staff member, repeatedly after a warm-up: p50 and max, and the totals it
  showed (the seeded turns' outcomes, latencies, cited pages, content gaps, usage and
  feedback, stored as ``chat.finish_turn`` stores them);
- **export**: ``manage.py export_transcripts --output /dev/null`` in a process of its
  own, both formats, for an empty range (start-up alone), about 100,000 messages (the
  last 3 days) and all of them; wall time, messages a second, and the process's peak RSS
  sampled every 20 ms from ``/proc``: flat memory is the same peak at 100k and at 1M.
"""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlencode

import psycopg

from bench.server import REPO, ProductionServer
from bench.visitors import RssSampler, percentile

SIZE = 20  # messages a session
DAYS = 30
# Words a support team looks for: topics, products, places, two words at once, an order
# number (one of the seeded ones is added at run time) and a word nobody wrote.
SEARCHES = ("refunded", "warranty", "hammock", "Zürich", "sleeping bag", "tracking Lapland", "snowshoes")
SEARCH_REPEATS = 15
STAFF = ("bench-staff", "bench-staff-password")


class StaffBrowser:
    """A keep-alive HTTP client holding the admin's cookies, signed in as staff."""

    def __init__(self, port: int):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.connection.request(method, path, body, headers)
        response = self.connection.getresponse()
        text = response.read().decode()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, text

    def sign_in(self, username: str, password: str) -> None:
        _, page = self.request("GET", "/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
        status, _ = self.request(
            "POST", "/admin/login/", {"csrfmiddlewaretoken": token, "username": username, "password": password}
        )
        if status != 302 or "sessionid" not in self.cookies:
            raise RuntimeError(f"signing in to the admin failed ({status})")

    def timed(self, path: str) -> tuple[float, int, str]:
        started = time.perf_counter()
        status, text = self.request("GET", path)
        return time.perf_counter() - started, status, text


def milliseconds(samples: list[float]) -> dict:
    return {
        "p50_ms": round(percentile(samples, 0.5) * 1000, 1),
        "p95_ms": round(percentile(samples, 0.95) * 1000, 1),
        "max_ms": round(max(samples) * 1000, 1),
    }


def searches() -> tuple[str, ...]:
    """``SEARCHES`` and an order number a visitor wrote."""
    from conversations.models import Message

    text = Message.objects.filter(content__contains="order #").values_list("content", flat=True).first() or ""
    number = re.search(r"#(\d+)", text)
    return (*SEARCHES, number[1]) if number else SEARCHES


def search_latency(browser: StaffBrowser, *, repeats: int) -> dict:
    """The sessions list with no search (the floor), then searched for each of
    ``searches()``, over HTTP."""
    everything, per_search = [], {}
    floor = [browser.timed("/admin/conversations/session/")[0] for _ in range(repeats + 2)][2:]
    for typed in searches():
        path = "/admin/conversations/session/?" + urlencode({"q": typed})
        for _ in range(2):  # warm-up: the worker's first rendering, PostgreSQL's cache
            browser.timed(path)
        samples = []
        for _ in range(repeats):
            seconds, status, text = browser.timed(path)
            if status != 200:
                raise RuntimeError(f"search {typed!r} answered {status}")
            samples.append(seconds)
        matched = re.search(r"(\d+) results?", text)
        per_search[typed] = {**milliseconds(samples), "sessions_matched": int(matched[1]) if matched else 0}
        everything += samples
    return {
        "all": milliseconds(everything),
        "requests": len(everything),
        "no_search": milliseconds(floor),
        "per_search": per_search,
    }


def index_against_scan() -> dict:
    """Sessions matching each search, counted in this process through the index and
    through the ``icontains`` scan of every message it replaced (the words only)."""
    from django.db import connection, transaction
    from django.db.models import Exists, OuterRef

    from conversations.models import Message, Session
    from conversations.search import sessions_matching

    out = {}
    for typed in searches():
        started = time.perf_counter()
        indexed = sessions_matching(Session.objects.all(), typed).count()
        index_ms = (time.perf_counter() - started) * 1000
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 0")  # the scan may outlast the server's limit
            started = time.perf_counter()
            scan = Message.objects.filter(session=OuterRef("pk"), content__icontains=typed)
            scanned = Session.objects.filter(Exists(scan)).count()
            scan_ms = (time.perf_counter() - started) * 1000
        out[typed] = {
            "index_ms": round(index_ms, 1),
            "index_sessions": indexed,
            "icontains_ms": round(scan_ms, 1),
            "icontains_sessions": scanned,
        }
    return out


def insight_page(browser: StaffBrowser, *, repeats: int) -> dict:
    """The insight page for the last ``DAYS`` days (its own range form, both days
    included), after one warm-up; p50 and max, with the totals it showed for the
    record. Not measured when this branch has no insight page."""
    from django.urls import NoReverseMatch, reverse

    from conversations.insight import DateRange

    try:
        path = reverse("admin:conversations_insight")
    except NoReverseMatch:
        return {"measured": False, "reason": 'reverse("admin:conversations_insight") does not exist in this branch'}
    period = DateRange.last_days(DAYS)
    path += "?" + urlencode({"start": period.start.isoformat(), "end": period.end.isoformat()})
    browser.timed(path)
    samples = []
    for _ in range(repeats):
        seconds, status, _ = browser.timed(path)
        if status != 200:
            return {"measured": False, "reason": f"{path} answered {status}"}
        samples.append(seconds)
    return {
        "measured": True,
        "path": path,
        **milliseconds(samples),
        "requests": repeats,
        "shown": insight_totals(period),
    }


def insight_totals(period) -> dict:
    """What the page counted, so a run shows it read a month of real-looking turns."""
    from conversations.insight import insight_for

    figures = insight_for(period)
    return {
        "conversations": figures.conversations,
        "turns": figures.turns,
        "no_answer_share": round(figures.no_answer_share or 0, 3),
        "rated": figures.rated,
        "median_latency_ms": figures.median_latency_ms,
        "tokens": figures.prompt_tokens + figures.completion_tokens,
        "content_gaps_listed": len(figures.content_gaps),
        "cited_pages_listed": len(figures.cited_pages),
    }


def export_run(env: dict, *, since: date, file_format: str, log_path: Path) -> dict:
    """One ``export_transcripts`` process to /dev/null: wall time and peak RSS."""
    command = [sys.executable, "manage.py", "export_transcripts", "--since", since.isoformat()]
    command += ["--format", file_format, "--output", "/dev/null"]
    started = time.perf_counter()
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        with RssSampler(process.pid) as rss:
            code = process.wait()
    seconds = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"export_transcripts exited with {code}; see {log_path}")
    return {"since": since.isoformat(), "seconds": round(seconds, 2), "peak_rss_mib": round(rss.peak_kib / 1024, 1)}


def export_throughput(env: dict, *, raw: Path, log) -> dict:
    """Both formats: start-up alone (a range in the future), the last 3 days (about a
    tenth of the messages), everything."""
    from django.utils import timezone

    from conversations import export
    from conversations.management.commands.export_transcripts import start_of

    today = timezone.localdate()
    ranges = {"empty": today + timedelta(days=1), "last_3_days": today - timedelta(days=2)}
    ranges["all"] = today - timedelta(days=DAYS + 1)
    counts = {name: export.messages_between(start_of(since), None).count() for name, since in ranges.items()}
    out = {}
    for file_format in export.FORMATS:
        runs = {}
        for name, since in ranges.items():
            log(f"admin: export {file_format}, {name} ({counts[name]} messages)")
            runs[name] = {
                **export_run(env, since=since, file_format=file_format, log_path=raw / "export.log"),
                "messages": counts[name],
            }
        startup = runs["empty"]["seconds"]
        for name in ("last_3_days", "all"):
            run = runs[name]
            run["messages_per_s"] = round(run["messages"] / run["seconds"])
            run["messages_per_s_after_startup"] = round(run["messages"] / max(0.001, run["seconds"] - startup))
        out[file_format] = runs
    return out


def measure(env_for, *, quick: bool, log, raw: Path, database_url: str) -> dict:
    from django.contrib.auth import get_user_model

    from bench import seed

    sessions = 5_000 if quick else 50_000
    log(f"admin: seeding {sessions} sessions of {SIZE} messages over {DAYS} days (COPY)")
    started = time.perf_counter()
    messages = seed.create_conversations(sessions, SIZE, days=DAYS)
    seeding_s = time.perf_counter() - started
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
        index_mib = connection.execute("SELECT pg_relation_size('message_content_search_idx') / 1048576.0").fetchone()[
            0
        ]
    get_user_model().objects.create_superuser(STAFF[0], password=STAFF[1])
    out: dict = {
        "sessions": sessions,
        "messages": messages,
        "seeding_s": round(seeding_s, 1),
        "search_index_mib": round(float(index_mib), 1),
    }
    repeats = 5 if quick else SEARCH_REPEATS
    with ProductionServer(env=env_for(), workers=2, log_path=raw / "server-admin.log") as server:
        browser = StaffBrowser(server.port)
        browser.sign_in(*STAFF)
        log("admin: search through the sessions list")
        out["search"] = search_latency(browser, repeats=repeats)
        log("admin: insight page")
        out["insight"] = insight_page(browser, repeats=repeats)
    log("admin: the index against the icontains scan, in process")
    out["search"]["index_against_scan"] = index_against_scan()
    out["export"] = export_throughput(env_for(), raw=raw, log=log)
    return out


def markdown(results: dict) -> str:
    from bench.report import run_header

    admin = results["admin"]
    search, insight, export = admin["search"], admin["insight"], admin["export"]
    jsonl_all = export["jsonl"]["all"]
    flat = {f: export[f]["all"]["peak_rss_mib"] - export[f]["last_3_days"]["peak_rss_mib"] for f in ("jsonl", "csv")}
    slowest = min(export[f]["all"]["messages_per_s"] for f in ("jsonl", "csv"))

    def verdict(met: bool | None) -> str:
        return "not measured" if met is None else ("met" if met else "**missed**")

    lines = [
        f"# Item 10: the admin at {admin['messages']:,} messages ({results['mode']} run)",
        "",
        run_header(results),
        "",
        f"{admin['sessions']:,} sessions of {SIZE} messages over {DAYS} days, seeded in {admin['seeding_s']} s "
        f"(COPY, the search index kept up on insert; {admin['search_index_mib']} MiB).",
        "",
        "| what | figure | target | |",
        "|---|---|---|---|",
        f"| admin message search, p50 over {search['requests']} requests (p95) | {search['all']['p50_ms']} ms "
        f"({search['all']['p95_ms']} ms) | ≤ 100 ms | {verdict(search['all']['p50_ms'] <= 100)} |",
    ]
    if insight["measured"]:
        lines.append(
            f"| insight page, 30 days, p50 over {insight['requests']} loads (max) | {insight['p50_ms']} ms "
            f"({insight['max_ms']} ms) | ≤ 1 s | "
            f"{verdict(insight['p50_ms'] <= 1000)} |"
        )
    else:
        lines.append(f"| insight page, 30 days | not measured: {insight['reason']} | ≤ 1 s | not measured |")
    lines += [
        f"| export, slower format, all {jsonl_all['messages']:,} messages | {slowest:,} messages/s "
        "(wall time, start-up included) | ≥ 50,000/s | " + verdict(slowest >= 50_000) + " |",
        f"| export peak RSS, 1M − 100k messages | JSONL {flat['jsonl']:+.1f} MiB, CSV {flat['csv']:+.1f} MiB | flat | "
        + verdict(max(abs(v) for v in flat.values()) <= 10)
        + " |",
        "",
        "Search, per query (the sessions list over HTTP, signed in as staff; the server's 2 workers):",
        "",
        "| typed | p50 ms | p95 ms | sessions matched | index count in process, ms | icontains scan, ms (sessions) |",
        "|---|---|---|---|---|---|",
        f"| (no search: the page's floor) | {search['no_search']['p50_ms']} | {search['no_search']['p95_ms']} "
        "| all | | |",
    ]
    for typed, figures in search["per_search"].items():
        scan = search["index_against_scan"][typed]
        lines.append(
            f"| `{typed}` | {figures['p50_ms']} | {figures['p95_ms']} | {figures['sessions_matched']:,} | "
            f"{scan['index_ms']} | {scan['icontains_ms']} ({scan['icontains_sessions']:,}) |"
        )
    if insight["measured"]:
        shown = insight["shown"]
        lines += [
            "",
            f"The insight page (`{insight['path']}`, over HTTP as staff) showed {shown['conversations']:,} "
            f"conversations, {shown['turns']:,} turns ({shown['no_answer_share']:.1%} no answer), "
            f"{shown['rated']:,} rated answers, a median latency of {shown['median_latency_ms']} ms, "
            f"{shown['tokens']:,} tokens, {shown['content_gaps_listed']} content gaps and "
            f"{shown['cited_pages_listed']} cited pages listed.",
        ]
    lines += [
        "",
        "Export (`manage.py export_transcripts --output /dev/null`, its own process; RSS peak sampled every 20 ms):",
        "",
        "| format | range | messages | seconds | messages/s | after start-up | peak RSS MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for file_format, runs in export.items():
        for name, run in runs.items():
            lines.append(
                f"| {file_format} | {name.replace('_', ' ')} | {run['messages']:,} | {run['seconds']} | "
                f"{run.get('messages_per_s', '–')} | {run.get('messages_per_s_after_startup', '–')} | "
                f"{run['peak_rss_mib']} |"
            )
    return "\n".join(lines) + "\n"
