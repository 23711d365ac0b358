"""Item 8, retrieval over a real site: ``bench/run --only retrieval [--quick]``.

The fixture (``bench.corpus``: 536 pages of the Django documentation, and questions with
gold pages) is served on 127.0.0.1 with a sitemap and ingested; then, on PostgreSQL and
on SQLite, each in a process of its own (Django holds one database a process):

- quality: our ``search`` (ranks) and ``retrieve`` (refusals) for every question, and two
  anchors over the very same chunk rows: PostgreSQL's ``websearch_to_tsquery`` +
  ``ts_rank`` and an in-process BM25 (``bm25s`` with PyStemmer);
- scale: the index grown to 1k, 10k and 100k chunks (the corpus, then copies of its
  pages with their paragraphs shuffled, under other keys), ``retrieve`` timed at each;
  at 10k on PostgreSQL, turns over HTTP with that knowledge base and with an empty one.

A rank is a page's position in the results (each page once: ours returns each page's
best passage, and the anchors' chunk rankings are read the same way): recall@k counts a
question found when a gold page is among the first k, MRR@10 averages 1 / that rank.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import corpus
from bench.server import REPO

SCALES = (1_000, 10_000, 100_000)
QUICK_SCALES = (1_000, 10_000)
TURN_SCALE = 10_000


# --- The parent: one child process per database and phase ---------------------------


def measure(*, admin_url: str, quick: bool, log, raw: Path) -> dict:
    """Both databases, both phases; the children's JSON, merged."""
    import psycopg

    base = admin_url.rsplit("/", 1)[0]
    out: dict = {"corpus": fixture_summary()}
    for backend in ("postgresql", "sqlite"):
        out[backend] = {}
        for phase in ("quality", "scale"):
            name = f"bench_retrieval_{phase}"
            if backend == "postgresql":
                with psycopg.connect(admin_url, autocommit=True) as connection:
                    connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    connection.execute(f'CREATE DATABASE "{name}"')
                url = f"{base}/{name}"
            else:
                path = raw / f"{name}.sqlite3"
                path.unlink(missing_ok=True)
                url = f"sqlite:///{path}"
            target = raw / f"retrieval-{backend}-{phase}.json"
            log(f"retrieval: {phase} on {backend}")
            command = [sys.executable, "-m", "bench.retrieval", phase, "--database-url", url, "--out", str(target)]
            command += ["--extracted", str(raw / "retrieval-extracted.json")]
            if backend == "postgresql" and phase == "scale":
                command += ["--empty-database-url", empty_database(admin_url)]
            if backend == "sqlite" and phase == "quality" and quick:
                # A smoke run crawls once (on PostgreSQL); SQLite stores what that crawl extracted.
                command += ["--store-from", str(raw / "retrieval-extracted.json")]
            try:
                subprocess.run([*command, *(["--quick"] if quick else [])], cwd=REPO, check=True)
            finally:
                drop(admin_url, url)  # up to 7 million postings: nothing to keep once measured
            out[backend][phase] = json.loads(target.read_text())
    out["same_top10"] = same_rankings(out["postgresql"]["quality"], out["sqlite"]["quality"])
    for backend in ("postgresql", "sqlite"):  # every question's top 10 stays in raw/, not in the results
        for ranking in ("ours", "bm25s", "ts_rank"):
            out[backend]["quality"].get(ranking, {}).pop("top10", None)
    return out


def drop(admin_url: str, url: str) -> None:
    import psycopg

    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
        return
    names = [url.rsplit("/", 1)[1]] + (["bench_retrieval_empty"] if url.endswith("_scale") else [])
    with psycopg.connect(admin_url, autocommit=True) as connection:
        for name in names:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty_database(admin_url: str) -> str:
    import psycopg

    name = "bench_retrieval_empty"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


def fixture_summary() -> dict:
    asked = corpus.questions()
    return {
        "archive": str(corpus.ARCHIVE.relative_to(REPO)),
        "archive_bytes": corpus.ARCHIVE.stat().st_size,
        "pages": len(corpus.pages()),
        "questions": len(asked),
        "unanswerable": sum(not q.answerable for q in asked),
    }


def same_rankings(first: dict, second: dict) -> dict:
    """Questions whose top 10 pages (in order) differ between the two databases."""
    a, b = first["ours"]["top10"], second["ours"]["top10"]
    differ = sorted(qid for qid in a if a[qid] != b.get(qid))
    return {"questions": len(a), "differ": len(differ), "differing_ids": differ[:20]}


# --- The child: one database ----------------------------------------------------------


def child(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.retrieval")
    parser.add_argument("phase", choices=["quality", "scale"])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--empty-database-url")
    parser.add_argument("--extracted", required=True, help="JSON of every page's (title, Markdown)")
    parser.add_argument("--store-from", help="store these extracted pages instead of crawling (no re-sync)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    os.environ.update(product_env(args.database_url))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    results = quality(args, quick=args.quick) if args.phase == "quality" else scale(args, quick=args.quick)
    results["backend"] = backend_name()
    Path(args.out).write_text(json.dumps(results, indent=1, default=str) + "\n")
    return 0


def product_env(database_url: str) -> dict:
    """What the product reads, as an operator would set it for this site."""
    return {
        "DJANGO_SETTINGS_MODULE": "chatbot.settings",
        "DATABASE_URL": database_url,
        "DEBUG": "false",  # DEBUG keeps every query in memory
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "CHATBOT_RATELIMIT_ENABLE": "false",
        "CHATBOT_DAILY_TOKENS_PER_ADDRESS": "0",
        "CHATBOT_DAILY_TOKENS_PER_SESSION": "0",
        "CHATBOT_KB_ALLOW_PRIVATE_HOSTS": "true",  # the site is on loopback
        "CHATBOT_KB_MAX_PAGES": "1000",  # the corpus has 536; the default is 500
        "DATABASE_STATEMENT_TIMEOUT_MS": "120000",  # building 100k chunks, not serving
        "REDIS_URL": "",
    }


def backend_name() -> str:
    from django.db import connection

    return connection.vendor


# --- Ingestion: the product's crawler over loopback ---------------------------------


def synced(site: corpus.Site, source) -> dict:
    """One ``knowledge.sync.source_sync`` of the sitemap source, timed: the run's own
    report (requests, added / updated / unchanged / removed / failed) and the 304s the
    site answered."""
    from knowledge.sync import source_sync

    not_modified = site.not_modified
    started = time.perf_counter()
    run = source_sync(source=source)
    seconds = time.perf_counter() - started
    pages = run.added + run.updated + run.unchanged + run.failed
    return {
        "pages": pages,
        "seconds": round(seconds, 2),
        "pages_per_second": round(pages / seconds, 1),
        "status": run.status,
        "requests": run.requests,
        "outcomes": {name: getattr(run, name) for name in ("added", "updated", "unchanged", "removed", "failed")}
        | {"not_modified": site.not_modified - not_modified},
        "errors": run.errors[:5],
    }


def chunk_fingerprint() -> dict:
    """How many chunks there are and the highest id: a chunk rewritten gets a new id."""
    from django.db.models import Count, Max

    from knowledge.models import Chunk

    return Chunk.objects.aggregate(n=Count("pk"), top=Max("pk"))


def chunks_written_since(before: dict) -> int:
    """Chunks written (new ids) plus chunks removed since ``before``."""
    from knowledge.models import Chunk

    written = Chunk.objects.filter(pk__gt=before["top"] or 0).count()
    return written + (before["n"] - (Chunk.objects.count() - written))


# --- Quality ----------------------------------------------------------------------------


def quality(args, *, quick: bool) -> dict:
    from knowledge.models import Chunk, Posting
    from knowledge.sync import source_for_location

    pages = corpus.pages()
    results: dict = {}
    with corpus.Site(pages) as site:
        source = source_for_location(f"{site.base_url}/sitemap.xml")
        if args.store_from:
            results["ingestion"] = store_extracted(site, source, json.loads(Path(args.store_from).read_text()))
        else:
            results.update(crawl_and_resync(site, source, quick=quick))
            extracted = {site.path_of(d.url): (d.title, d.text) for d in source.documents.order_by("url")}
            Path(args.extracted).write_text(json.dumps(extracted))
        paths = {document.pk: site.path_of(document.url) for document in source.documents.all()}
    chunks = list(Chunk.objects.select_related("document").order_by("pk"))
    asked = corpus.questions()
    results |= {
        "chunks": len(chunks),
        "postings": Posting.objects.count(),
        "ours": evaluate(asked, ours_ranker(paths), *ours_retrieval(paths)),
        "bm25s": evaluate(asked, *bm25s_ranker(chunks, paths)),
    }
    if backend_name() == "postgresql":
        results["ts_rank"] = evaluate(asked, *ts_rank_ranker(paths))
    results["extraction_gaps"] = extraction_gaps(asked, pages, chunks, paths)
    return results


def crawl_and_resync(site: corpus.Site, source, *, quick: bool) -> dict:
    """Ingestion, then two re-syncs of the unchanged site: one as it comes (every page
    has validators, so every GET is conditional), one after forgetting the validators of
    a sample of pages, which are then fetched and extracted in full and must be kept by
    their content hash alone."""
    from knowledge.models import Document

    first = synced(site, source)
    before = chunk_fingerprint()
    again = synced(site, source) | {"chunks_written": chunks_written_since(before)}
    sample = list(source.documents.order_by("pk").values_list("pk", flat=True)[: 30 if quick else 100])
    Document.objects.filter(pk__in=sample).update(etag="", last_modified="")
    unconditional = synced(site, source) | {"chunks_written": chunks_written_since(before), "sample": len(sample)}
    return {"ingestion": first, "resync_conditional": again, "resync_unconditional": unconditional}


def store_extracted(site: corpus.Site, source, pages: dict) -> dict:
    """Pages another run's crawl extracted, stored through the product's writer: no HTTP,
    no extraction."""
    from knowledge.index import store_document

    started = time.perf_counter()
    for path, (title, markdown) in sorted(pages.items()):
        store_document(source=source, url=site.url(path), title=title, markdown=markdown)
    seconds = time.perf_counter() - started
    return {
        "pages": len(pages),
        "seconds": round(seconds, 2),
        "pages_per_second": round(len(pages) / seconds, 1),
        "store_only": True,
    }


def ours_ranker(paths: dict[int, str]):
    from knowledge.search import search

    def rank(text: str) -> list[str]:
        return [paths.get(hit.document_id, "?") for hit in search(text, limit=10)]

    return rank


def ours_retrieval(paths: dict[int, str]):
    """(refuses, passages) for a question, from one ``retrieve`` call: refused when it is
    not ``answerable``; passages, the pages of what the turn would put in the prompt."""
    from knowledge.search import retrieve

    seen: dict[str, tuple[bool, list[str]]] = {}

    def look(text: str) -> tuple[bool, list[str]]:
        if text not in seen:
            found = retrieve(text)
            seen[text] = (not found.answerable, [paths.get(hit.document_id, "?") for hit in found.passages])
        return seen[text]

    return (lambda text: look(text)[0]), (lambda text: look(text)[1])


def bm25s_ranker(chunks, paths: dict[int, str]):
    """bm25s over the same chunk rows, each indexed as title + heading + text (the fields
    ours indexes, unweighted). It refuses only when no chunk shares a term with the question."""
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    texts = [f"{c.document.title}\n{c.heading}\n{c.text}" for c in chunks]
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    owner = [paths.get(c.document_id, "?") for c in chunks]

    def search(text: str) -> list[tuple[str, float]]:
        tokens = bm25s.tokenize([text], stopwords="en", stemmer=stemmer, show_progress=False)
        if not tokens.ids[0]:
            return []
        found, scores = retriever.retrieve(tokens, k=50, show_progress=False)
        return [(owner[i], float(s)) for i, s in zip(found[0], scores[0], strict=True) if s > 0]

    return (lambda text: distinct_pages(path for path, _ in search(text))), (lambda text: not search(text))


def ts_rank_ranker(paths: dict[int, str]):
    """PostgreSQL's own full text search over the same chunk rows, the way its manual
    shows: a stored ``tsvector`` with a GIN index, ``websearch_to_tsquery('english', q)``,
    ordered by ``ts_rank``. It refuses when nothing matches (every word must)."""
    from django.db import connection

    from knowledge.models import Chunk, Document

    chunk_table, document_table = Chunk._meta.db_table, Document._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_fts")
        cursor.execute(
            "CREATE TABLE bench_fts AS SELECT c.id, c.document_id, "  # noqa: S608 - table names from the models
            "to_tsvector('english', d.title || ' ' || c.heading || ' ' || c.text) AS tsv "
            f"FROM {chunk_table} c JOIN {document_table} d ON d.id = c.document_id"
        )
        cursor.execute("CREATE INDEX bench_fts_tsv ON bench_fts USING gin (tsv)")
        cursor.execute("ANALYZE bench_fts")

    def search(text: str) -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT document_id FROM bench_fts, websearch_to_tsquery('english', %s) q "
                "WHERE tsv @@ q ORDER BY ts_rank(tsv, q) DESC, id LIMIT 50",
                [text],
            )
            return distinct_pages(paths.get(row[0], "?") for row in cursor.fetchall())

    return search, (lambda text: not search(text))


def distinct_pages(ranked, limit: int = 10) -> list[str]:
    """The first ``limit`` pages of a ranking of chunks, each page once: what ours
    returns (``search`` gives each page's best passage), so all three rank pages alike."""
    pages: list[str] = []
    for path in ranked:
        if path not in pages:
            pages.append(path)
    return pages[:limit]


def evaluate(asked: list[corpus.Question], rank, refuses, passages=None) -> dict:
    """recall@1, recall@5, MRR@10 over the answerable questions; refusal accuracy over all
    (an unanswerable question refused, an answerable one not); with ``passages``, how
    often a gold page is among the passages a turn would be given."""
    found_at, refused, top10, misses, in_passages = {}, {}, {}, [], 0
    timings = []
    for question in asked:
        started = time.perf_counter()
        ranked = rank(question.text)
        refused[question.id] = refuses(question.text)
        timings.append(time.perf_counter() - started)
        top10[question.id] = ranked
        if not question.answerable:
            continue
        if passages is not None:
            in_passages += any(path in question.gold for path in passages(question.text))
        position = next((i + 1 for i, path in enumerate(ranked) if path in question.gold), None)
        found_at[question.id] = position
        if position is None or position > 5:
            misses.append({"id": question.id, "q": question.text, "rank": position, "top3": ranked[:3]})
    answerable = [q for q in asked if q.answerable]
    correct = sum(refused[q.id] != q.answerable for q in asked)
    unanswerable = [q for q in asked if not q.answerable]
    return {
        "recall_at_1": share(sum(found_at[q.id] == 1 for q in answerable), len(answerable)),
        "recall_at_5": share(sum((found_at[q.id] or 99) <= 5 for q in answerable), len(answerable)),
        "mrr_at_10": round(sum(1 / found_at[q.id] for q in answerable if found_at[q.id]) / len(answerable), 4),
        "refusal_accuracy": share(correct, len(asked)),
        "gold_in_passages": share(in_passages, len(answerable)) if passages is not None else None,
        "unanswerable_refused": share(sum(refused[q.id] for q in unanswerable), len(unanswerable)),
        "answerable_refused": share(sum(refused[q.id] for q in answerable), len(answerable)),
        "wrongly_answered": [q.id for q in unanswerable if not refused[q.id]],
        "wrongly_refused": [q.id for q in answerable if refused[q.id]],
        "misses_at_5": misses,
        "p50_ms": round(statistics.median(timings) * 1000, 2),
        "top10": top10,
    }


def share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def extraction_gaps(asked, pages, chunks, paths) -> list[dict]:
    """Gold evidence that is on the page but in none of its chunks: lost by extraction or
    chunking before ranking could find it."""
    text_of: dict[str, str] = {}
    for chunk in chunks:
        path = paths.get(chunk.document_id, "?")
        text_of[path] = text_of.get(path, "") + "\n" + chunk.heading + "\n" + chunk.text
    gaps = []
    for question in asked:
        for path, words in question.gold.items():
            if not corpus.contains(plain(text_of.get(path, "")), words):
                gaps.append({"id": question.id, "page": path, "words": words})
    return gaps


def plain(markdown: str) -> str:
    """Markdown's emphasis, code marks and escapes dropped."""
    return " ".join(re.sub(r"\\(.)|[*`]", lambda m: m.group(1) or "", markdown).split())


# --- Scale -----------------------------------------------------------------------------


def scale(args, *, quick: bool) -> dict:
    """The corpus through the product's writer, timed at 1k chunks on the way; then whole
    copies of it (documents, chunks and postings copied in SQL under new ids: the
    writer would take some 15 minutes to write 100k chunks on this machine) up to 10k and
    100k, so every term's posting list grows as the chunks do."""
    from knowledge.models import Corpus, Posting, Source, SourceKind

    sizes = QUICK_SCALES if quick else SCALES
    documents = json.loads(Path(args.extracted).read_text())
    source = Source.objects.create(kind=SourceKind.FILES, location="bench: the corpus and copies of it")
    asked = corpus.questions()
    probes = asked[::4] if quick else asked[::2]
    out: dict = {"sizes": {}}
    pending = iter(sorted(documents.items()))
    copies = 0
    for size in sizes:
        started = time.perf_counter()
        written = store_until(size, source, pending)
        while Corpus.objects.get(pk=1).chunks < size:
            copies += 1
            copy_corpus(source, copies)
        settle()
        figures = Corpus.objects.get(pk=1)
        point = {
            "chunks": figures.chunks,
            "postings": Posting.objects.count(),
            "pages_written": written,
            "copies": copies,
            "build_seconds": round(time.perf_counter() - started, 1),
            "retrieve": timed_queries(probes if size < 100_000 else probes[::2], "retrieve"),
            "search": timed_queries(probes if size < 100_000 else probes[::2], "search"),
        }
        if size == TURN_SCALE and args.empty_database_url:
            point["turn"] = turn_cost(args.database_url, args.empty_database_url, asked, quick=quick)
        out["sizes"][size] = point
    return out


def settle() -> None:
    """On PostgreSQL, what autovacuum does to a table after many inserts: statistics, and
    the visibility map that lets the index's own columns answer (index-only scans)
    instead of a visit to every posting's row. Measured without it, a freshly copied
    index is slower than one that has settled."""
    from django.db import connection

    from knowledge.models import Chunk, Posting

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for model in (Posting, Chunk):
                cursor.execute(f"VACUUM (ANALYZE) {model._meta.db_table}")


def store_until(size: int, source, pending) -> int:
    """Pages of the corpus through ``store_document`` until the index holds ``size``
    chunks or the corpus is all in."""
    from knowledge.index import store_document
    from knowledge.models import Corpus

    written = 0
    while Corpus.objects.get_or_create(pk=1)[0].chunks < size:
        item = next(pending, None)
        if item is None:
            break
        path, (title, markdown) = item
        store_document(source=source, url=None, key=f"page/{path}", title=title, markdown=markdown)
        written += 1
    return written


def copy_corpus(source, copy: int) -> None:
    """One more copy of the corpus's pages ("page/..." documents) under keys "copy-N/...",
    with their chunks and postings, in three INSERT ... SELECT statements; the corpus
    figures and the terms' document frequencies move by what was added
    (``knowledge.index.count_in`` and ``count_terms``, in the same transaction)."""
    from django.db import connection, transaction
    from django.db.models import Count, Max, Sum

    from knowledge.index import count_in, count_terms
    from knowledge.models import Chunk, Document, Posting

    originals = Document.objects.filter(source=source, key__startswith="page/")
    top = originals.aggregate(document=Max("pk"))["document"]
    chunk_top = Chunk.objects.filter(document__in=originals).aggregate(top=Max("pk"))["top"]
    # New ids are the originals' plus a stride per copy, so no mapping table is needed.
    stride_documents = copy * 10 ** (len(str(top)) + 1)
    stride_chunks = copy * 10 ** (len(str(chunk_top)) + 1)
    d, c, p = Document._meta.db_table, Chunk._meta.db_table, Posting._meta.db_table
    copied = Chunk.objects.filter(document__in=originals).aggregate(n=Count("pk"), length=Sum("length"))
    held = dict(
        Posting.objects.filter(chunk_id__lte=chunk_top).values("term").annotate(n=Count("*")).values_list("term", "n")
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # The corpus row first, as the index writer takes it: its lock orders the writers.
        count_in(chunks=copied["n"], length=copied["length"])
        cursor.execute(
            f"INSERT INTO {d} (id, source_id, url, key, title, text, content_hash, etag, last_modified, "  # noqa: S608
            "duplicate_of_id, fetched_at, updated_at) "
            f"SELECT id + %s, source_id, url, %s || key, title, text, SUBSTR(content_hash, 1, 56) || %s, etag, "
            f"last_modified, NULL, fetched_at, updated_at FROM {d} WHERE source_id = %s AND key LIKE 'page/%%' "
            "AND duplicate_of_id IS NULL",
            [stride_documents, f"copy-{copy}/", f"copy{copy:04d}", source.pk],
        )
        cursor.execute(
            f"INSERT INTO {c} (id, document_id, ordinal, heading, text, length, embedding) "  # noqa: S608
            f"SELECT id + %s, document_id + %s, ordinal, heading, text, length, NULL FROM {c} WHERE id <= %s",
            [stride_chunks, stride_documents, chunk_top],
        )
        cursor.execute(
            f"INSERT INTO {p} (term, chunk_id, weight, chunk_length, impact) "  # noqa: S608
            f"SELECT term, chunk_id + %s, weight, chunk_length, impact FROM {p} WHERE chunk_id <= %s",
            [stride_chunks, chunk_top],
        )
        count_terms(held)


def timed_queries(asked, kind: str) -> dict:
    from knowledge.search import retrieve, search

    call = retrieve if kind == "retrieve" else (lambda text: search(text, limit=10))
    for question in asked[:10]:  # warm: the connection, the statement and page caches
        call(question.text)
    samples = []
    for question in asked:
        started = time.perf_counter()
        call(question.text)
        samples.append(time.perf_counter() - started)
    return latency(samples)


def latency(samples: list[float]) -> dict:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000, 2)

    return {"p50_ms": at(0.5), "p95_ms": at(0.95), "max_ms": round(ordered[-1] * 1000, 2), "queries": len(samples)}


def turn_cost(database_url: str, empty_database_url: str, asked, *, quick: bool) -> dict:
    """What retrieval adds to a turn over HTTP: the production server on this knowledge
    base against one on an empty one, twice. ``model``: both ask the same
    OpenAI-compatible upstream, which answers every prompt with the same words at once,
    so the two differ only by retrieval and the longer prompt (the target). ``offline``:
    the built-in responder, whose answer itself is the retrieved sentences, so it also
    counts writing and storing that longer answer."""
    from bench.server import free_port

    migrate_env = {**os.environ, **product_env(empty_database_url)}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=REPO, env=migrate_env, check=True)
    port = free_port()
    upstream = subprocess.Popen([sys.executable, "-m", "bench.upstream", str(port)], cwd=REPO)
    model = {"OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1"}
    model |= {"CHAT_MODEL": "bench-model", "OPENAI_MAX_RETRIES": "0"}
    try:
        return {
            mode: turns_with_and_without(database_url, empty_database_url, asked, quick=quick, extra=extra, mode=mode)
            for mode, extra in (("model", model), ("offline", {}))
        }
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)


def turns_with_and_without(
    database_url: str, empty_database_url: str, asked, *, quick: bool, extra: dict, mode: str
) -> dict:
    """Turns with this knowledge base and with an empty one, alternated request by
    request from one keep-alive client each, so noise hits both alike."""
    from bench.load import RawClient
    from bench.runner import server_env
    from bench.server import ProductionServer

    raw = REPO / "bench" / "results" / "raw"
    servers = {}
    for name, url in (("with_kb", database_url), ("without_kb", empty_database_url)):
        env = server_env(
            database_url=url,
            redis_url="",
            allowed_origin="http://127.0.0.1",
            settings_module="chatbot.settings",
            extra={"DATABASE_STATEMENT_TIMEOUT_MS": "5000", **extra},
        )
        servers[name] = ProductionServer(env=env, workers=1, log_path=raw / f"server-retrieval-{mode}-{name}.log")
    rounds = 1 if quick else 3
    samples: dict[str, list[float]] = {name: [] for name in servers}
    answers: dict[str, dict] = {}
    for server in servers.values():
        server.launch()
    try:
        for server in servers.values():
            server.wait_ready()
        clients = {name: RawClient("127.0.0.1", server.port) for name, server in servers.items()}
        for name, client in clients.items():
            answers[name] = client.json("POST", "/api/chat", {"query": asked[0].text})
            for question in asked[:10]:
                client.timed("POST", "/api/chat", {"query": question.text})
        for _ in range(rounds):
            for question in asked:
                for name, client in clients.items():
                    samples[name].append(client.timed("POST", "/api/chat", {"query": question.text}))
        for client in clients.values():
            client.close()
    finally:
        for server in servers.values():
            server.stop()
    out = {name: latency(values) for name, values in samples.items()}
    out["added_p50_ms"] = round(out["with_kb"]["p50_ms"] - out["without_kb"]["p50_ms"], 2)
    # Whether the turn consulted the knowledge base at all, and asked the model it was meant to.
    out["turn_uses_kb"] = "answer_status" in answers["with_kb"]
    out["offline"] = {name: bool(answer.get("offline")) for name, answer in answers.items()}
    out["sample_answer"] = {k: str(v.get("answer", ""))[:200] for k, v in answers.items()}
    return out


if __name__ == "__main__":
    sys.exit(child(sys.argv[1:]))
