"""The insight page at scale: ``python -m bench.insight [--seed] [--repeats N]``.

``--seed`` writes a month of turns (by default 1,000,000 messages in 50,000 sessions)
with COPY, as ``chat.finish_turn`` would have stored them: the turn's outcome and
latency in their columns and in the metadata, the cited pages, a day's usage per
session, feedback on some answers. Then the page for the last 30 days is fetched
through Django's test client as a staff member, ``--repeats`` times, and the median
printed, with EXPLAIN of the queries that count the most rows. Run it against a
database of its own (DATABASE_URL): it adds rows, and ``--seed`` adds more each time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from datetime import timedelta

GAP_QUESTIONS = 400
PAGES = 150


def seed(*, sessions: int, turns: int, days: int) -> None:
    """``sessions`` sessions of ``turns`` turns (two messages each), started at random
    moments of the last ``days`` days: 85% answered, citing one or two of ``PAGES``
    pages, 15% no_answer, asking one of ``GAP_QUESTIONS`` questions. PostgreSQL only."""
    from django.db import connection, transaction
    from django.utils import timezone

    from conversations.models import Citation, ContentGap, DailyUsage, Feedback, Message, Session

    rng = random.Random(12)  # noqa: S311 - a reproducible data set, not a secret
    now = timezone.now()
    starts = [now - timedelta(seconds=rng.uniform(0, days * 86400 - 3600)) for _ in range(sessions)]
    created = Session.objects.bulk_create(
        [Session(created_at=at, last_activity_at=at, expires_at=now + timedelta(days=30), last_seq=2 * turns)
         for at in starts],
        batch_size=5000,
    )  # fmt: skip
    columns = "session_id, seq, role, content, metadata, channel, token_count, created_at, answer_status, latency_ms"
    with transaction.atomic(), connection.cursor() as cursor:
        with cursor.copy(f"COPY {Message._meta.db_table} ({columns}) FROM STDIN") as copy:  # noqa: S608
            for session in created:
                for turn in range(turns):
                    at = session.created_at + timedelta(seconds=30 * turn)
                    if rng.random() < 0.15:
                        question = f"Do you sell item number {rng.randrange(GAP_QUESTIONS)}?"
                        status, latency, cited = "no_answer", None, []
                    else:
                        question = f"How do I use the product, question {turn}?"
                        status, latency = "answered", rng.randint(300, 4000)
                        cited = [
                            {"id": n, "title": f"Page {page}", "url": f"https://shop.example/page-{page}",
                             "heading": "", "snippet": "…"}
                            for n, page in enumerate({rng.randrange(PAGES) for _ in range(rng.randint(1, 2))}, 1)
                        ]  # fmt: skip
                    metadata = {"provider": "openai", "answer_status": status, "citations": cited}
                    if latency is not None:
                        metadata["latency_ms"] = latency
                    copy.write_row((session.pk, 2 * turn + 1, "user", question, "{}", "widget", 12, at, None, None))
                    answer = "An answer quoting the pages [1]." if cited else "I couldn't find that on this site."
                    copy.write_row(
                        (session.pk, 2 * turn + 2, "assistant", answer, json.dumps(metadata), "widget", 60, at,
                         status, latency)
                    )  # fmt: skip
        # The cited pages, usage and feedback, derived from those rows by the database.
        messages = Message._meta.db_table
        cursor.execute(
            f"INSERT INTO {Citation._meta.db_table} (message_id, url, title, cited_at) "  # noqa: S608
            f"SELECT m.id, c->>'url', c->>'title', m.created_at FROM {messages} m, "
            "jsonb_array_elements(m.metadata->'citations') c WHERE m.answer_status = 'answered' "
            "AND m.id > (SELECT COALESCE(MAX(message_id), 0) FROM conversations_citation)"
        )
        cursor.execute(
            f"INSERT INTO {ContentGap._meta.db_table} (message_id, question, normalized, asked_at) "  # noqa: S608
            f"SELECT a.id, q.content, lower(rtrim(q.content, '?')), a.created_at FROM {messages} a "
            f"JOIN {messages} q ON q.session_id = a.session_id AND q.seq = a.seq - 1 "
            "WHERE a.answer_status = 'no_answer' AND a.session_id = ANY(%s)",
            [[s.pk for s in created]],
        )
        cursor.execute(
            f"INSERT INTO {DailyUsage._meta.db_table} (day, session_id, turns, prompt_tokens, completion_tokens) "  # noqa: S608
            f"SELECT (s.created_at AT TIME ZONE %s)::date, s.id, %s, %s, %s FROM {Session._meta.db_table} s "
            "WHERE s.id = ANY(%s) ON CONFLICT DO NOTHING",
            [timezone.get_current_timezone_name(), turns, turns * 900, turns * 120, [s.pk for s in created]],
        )
        cursor.execute(
            f"INSERT INTO {Feedback._meta.db_table} (message_id, rating, comment, created_at, updated_at) "  # noqa: S608
            f"SELECT id, CASE WHEN id % 3 = 0 THEN -1 ELSE 1 END, '', created_at, created_at FROM {messages} "
            "WHERE role = 'assistant' AND id % 20 = 0 ON CONFLICT DO NOTHING"
        )
    # Outside the transaction: visibility maps, so that counting reads the indexes alone.
    tables = [model._meta.db_table for model in (Message, Citation, ContentGap, Session, DailyUsage, Feedback)]
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {', '.join(tables)}")


def measure(repeats: int) -> list[float]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(username="insight-bench", defaults={"is_staff": True})
    user.user_permissions.add(Permission.objects.get(codename="view_session", content_type__app_label="conversations"))
    client = Client()
    client.force_login(user)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get("/admin/conversations/insight/")
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code
    return timings


def explain() -> None:
    """The plans of the queries that count the most rows, as the page runs them."""
    from django.db.models import Count
    from django.db.models.functions import TruncDate

    from conversations.insight import DateRange, turns_in
    from conversations.models import Citation, ContentGap, Session

    period = DateRange.last_days()
    queries = {
        "turn outcomes": turns_in(period)
        .annotate(day=TruncDate("created_at"))
        .values("day", "answer_status")
        .annotate(count=Count("*")),
        "median latency": turns_in(period).filter(latency_ms__isnull=False).values("latency_ms"),
        "conversations": Session.objects.filter(created_at__gte=period.since, created_at__lt=period.until)
        .order_by()
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(count=Count("*")),
        "content gaps": ContentGap.objects.filter(asked_at__gte=period.since, asked_at__lt=period.until)
        .order_by()
        .values("normalized", "question")
        .annotate(count=Count("*")),
        "cited pages": Citation.objects.filter(cited_at__gte=period.since, cited_at__lt=period.until)
        .order_by()
        .values("url", "title")
        .annotate(count=Count("*")),
    }
    for name, queryset in queries.items():
        print(f"--- {name}")
        print(queryset.explain(analyze=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", action="store_true")
    parser.add_argument("--sessions", type=int, default=50_000)
    parser.add_argument("--turns", type=int, default=10, help="turns per session (two messages each)")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    import django

    django.setup()
    if args.seed:
        started = time.perf_counter()
        seed(sessions=args.sessions, turns=args.turns, days=args.days)
        print(f"seeded {args.sessions * args.turns * 2} messages in {time.perf_counter() - started:.1f} s")
    if args.explain:
        explain()
    timings = measure(args.repeats)
    print(f"insight page, last 30 days: median {statistics.median(timings) * 1000:.0f} ms, "
          f"min {min(timings) * 1000:.0f}, max {max(timings) * 1000:.0f} ({len(timings)} loads)")  # fmt: skip


if __name__ == "__main__":
    main()
