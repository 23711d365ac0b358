"""Ingestion and re-sync: a source's pages or files into the index, and what each run did.

Every run is a ``SyncRun`` row (added / updated / unchanged / removed / failed, requests
made, per-URL errors), and the source is never left "syncing" by a run that ended, however
it ended: :func:`_run_of` claims the source and its ``finally`` records the outcome. A run
whose process was killed outright (no ``finally``) is taken over by the next one once it
is older than the crawl time limit.

What stays unchanged costs little: pages are fetched with their validators (a 304 is
counted unchanged and reads no body), and a page whose text hashes the same rewrites
nothing (``store_document``). What is gone (no longer in the sitemap, answering 404 or
410, disallowed by robots.txt) is removed from the index in the same run.

Uploaded and local files are read only by the upload or the ``kb_ingest`` call that names
them: a source's location is never read from disk by a sync, since staff can type any
label for an upload.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from knowledge.crawl import CrawlError, Listing, list_page, list_sitemap
from knowledge.extract import FORMATS_BY_SUFFIX, ExtractError, extract
from knowledge.fetching import Fetcher, FetchError
from knowledge.index import StoreOutcome, remove_documents, store_document
from knowledge.models import Document, Source, SourceKind, SourceState, SyncRun, SyncStatus

logger = logging.getLogger(__name__)

# A run's error list is for people to read in the admin: the first ones say enough.
MAX_ERRORS = 200
# Past the crawl time limit plus this, a "running" run's process is presumed dead.
ABANDONED_AFTER = timedelta(minutes=5)
_SITEMAP_SUFFIXES = (".xml", ".xml.gz")
# What a run counts, as SyncRun's fields: each page it took falls in one of them.
RUN_COUNTS = ("added", "updated", "unchanged", "removed", "failed")


class SyncError(Exception):
    """A sync that cannot start: the source is being synced already, or has nothing to fetch."""


def source_for_location(location: str) -> Source:
    """The source for a page or sitemap URL (created if new): a URL whose path ends in
    ``.xml`` or ``.xml.gz``, or names a sitemap, is a sitemap; any other is one page."""
    path = location.split("?", 1)[0].lower()
    last = path.rstrip("/").rsplit("/", 1)[-1]
    kind = SourceKind.SITEMAP if path.endswith(_SITEMAP_SUFFIXES) or "sitemap" in last else SourceKind.URL
    source, _ = Source.objects.get_or_create(kind=kind, location=location)
    return source


def source_sync(*, source: Source) -> SyncRun:
    """Fetch a page or sitemap source again and bring the index in line with it."""
    if source.kind == SourceKind.FILES:
        raise SyncError("Uploaded files are not fetched: upload them again, or run kb_ingest on their directory.")
    with _run_of(source) as run:
        deadline = time.monotonic() + settings.CHATBOT_KB_CRAWL_SECONDS
        with Fetcher(deadline=deadline) as fetcher:
            try:
                if source.kind == SourceKind.SITEMAP:
                    listing = list_sitemap(fetcher, source.location)
                else:
                    listing = list_page(fetcher, source.location)
                _note(run, listing.skipped)
                _sync_pages(run, source, listing, fetcher, deadline)
            finally:
                run.requests = fetcher.requests
    return run


def files_store(*, source: Source, files: Iterable[tuple[str, bytes]], complete: bool) -> SyncRun:
    """Store files (name, content) into a files source. ``complete``: these are all of the
    source's files (a directory read again), so documents not among them are removed."""
    with _run_of(source) as run:
        existing = dict(source.documents.values_list("key", "pk"))
        seen = set()
        for name, content in files:
            seen.add(name)
            try:
                page = extract(content, name=name)
            except ExtractError as error:
                _fail(run, name, str(error))
                continue
            outcome = store_document(source=source, url=None, key=name, title=page.title, markdown=page.markdown)
            _count(run, outcome, existed=name in existing, url=name)
        if complete:
            run.removed += _remove(source, [pk for key, pk in existing.items() if key not in seen])
    return run


def directory_files(path: Path) -> list[tuple[str, bytes]]:
    """The readable files (HTML, Markdown, text, PDF) under ``path`` (a file or a directory),
    named by their path relative to it; hidden files and files over
    CHATBOT_KB_MAX_PAGE_BYTES are left out (the latter logged)."""
    if path.is_file():
        candidates, root = [path], path.parent
    else:
        candidates, root = sorted(p for p in path.rglob("*") if p.is_file()), path
    files = []
    for candidate in candidates:
        relative = candidate.relative_to(root)
        if any(part.startswith(".") for part in relative.parts) or candidate.suffix.lower() not in FORMATS_BY_SUFFIX:
            continue
        if candidate.stat().st_size > settings.CHATBOT_KB_MAX_PAGE_BYTES:
            logger.warning("%s is over CHATBOT_KB_MAX_PAGE_BYTES; not ingested", candidate)
            continue
        files.append((relative.as_posix(), candidate.read_bytes()))
    return files


# --- One run ---------------------------------------------------------------------------


@contextlib.contextmanager
def _run_of(source: Source) -> Iterator[SyncRun]:
    """Claim ``source`` for a run and record how the run ended, whatever happens in it.

    A CrawlError (the listing could not be trusted, or the time limit stopped the crawl)
    fails the run and removes nothing; any other exception is our bug: recorded on the
    run, logged, and raised again.
    """
    run = _claim(source)
    error = ""
    try:
        yield run
        _embed_new_chunks(run)
    except CrawlError as crawl_error:
        error = str(crawl_error)
    except BaseException as bug:
        error = f"internal error: {bug.__class__.__name__}: {bug}"
        logger.exception("sync of source %s failed", source.pk)
        raise
    finally:
        run.finished_at = timezone.now()
        run.status = SyncStatus.FAILED if error else SyncStatus.SUCCEEDED
        if error:
            run.errors.insert(0, {"url": source.location, "error": error})
        source.state = SourceState.FAILED if error else SourceState.READY
        source.last_synced_at, source.last_error = run.finished_at, error
        # Updates, not saves: a source deleted while it synced stays deleted.
        recorded = ["finished_at", "status", "errors", "requests", *RUN_COUNTS]
        SyncRun.objects.filter(pk=run.pk).update(**{name: getattr(run, name) for name in recorded})
        Source.objects.filter(pk=source.pk).update(
            state=source.state, last_synced_at=source.last_synced_at, last_error=source.last_error
        )


def _embed_new_chunks(run: SyncRun) -> None:
    """With semantic search on, embed what the run indexed (outside any transaction). An
    embeddings server that fails is noted on the run, not a failed sync: the pages are
    searchable lexically already, and ``kb_embed`` or the next run catches up."""
    if not settings.CHATBOT_EMBEDDING_MODEL:
        return
    from knowledge.semantic import SemanticError, embed_pending  # numpy: only with semantic search on

    try:
        embed_pending()
    except SemanticError as error:
        _note(run, [{"url": "", "error": f"embeddings: {error}"}])


def _claim(source: Source) -> SyncRun:
    """Mark the source syncing and start its run, unless another run holds it: two runs
    of one source at once would fetch everything twice and count it wrong."""
    with transaction.atomic():
        locked = Source.objects.select_for_update().get(pk=source.pk)
        if locked.state == SourceState.SYNCING:
            running = locked.runs.filter(status=SyncStatus.RUNNING).first()
            stale = timezone.now() - timedelta(seconds=settings.CHATBOT_KB_CRAWL_SECONDS) - ABANDONED_AFTER
            if running is not None and running.started_at > stale:
                raise SyncError(f"{source} is being synced already (since {running.started_at:%Y-%m-%d %H:%M}).")
            locked.runs.filter(status=SyncStatus.RUNNING).update(
                status=SyncStatus.FAILED,
                finished_at=timezone.now(),
                errors=[{"url": source.location, "error": "abandoned: the process running it stopped"}],
            )
        Source.objects.filter(pk=source.pk).update(state=SourceState.SYNCING)
        source.state = SourceState.SYNCING
        return SyncRun.objects.create(source=source)


def _sync_pages(run: SyncRun, source: Source, listing: Listing, fetcher: Fetcher, deadline: float) -> None:
    known = {document.key: document for document in source.documents.only("pk", "key", "etag", "last_modified")}
    for done, url in enumerate(listing.pages):
        if time.monotonic() >= deadline:
            # Nothing is removed: the pages not reached may well still be there.
            left = len(listing.pages) - done
            raise CrawlError(f"stopped at CHATBOT_KB_CRAWL_SECONDS with {left} pages not fetched")
        _sync_page(run, source, url, known.get(url), fetcher)
    run.removed += _remove(source, [document.pk for key, document in known.items() if key not in listing.listed])


def _sync_page(run: SyncRun, source: Source, url: str, known: Document | None, fetcher: Fetcher) -> None:
    validators = {"etag": known.etag, "last_modified": known.last_modified} if known else {}
    try:
        response = fetcher.get(url, **validators)
    except FetchError as error:  # FetchRefused included: the page keeps its previous text
        _fail(run, url, str(error))
        return
    if response.not_modified and known:
        run.unchanged += 1
    elif response.gone:
        if known:
            run.removed += _remove(source, [known.pk])
        else:
            _fail(run, url, f"answered {response.status}")
    elif response.status != 200:
        _fail(run, url, f"answered {response.status}")
    else:
        try:
            page = extract(response.body, name=url, content_type=response.content_type)
        except ExtractError as error:
            _fail(run, url, str(error))
            return
        outcome = store_document(
            source=source,
            url=url,
            title=page.title,
            markdown=page.markdown,
            etag=response.etag,
            last_modified=response.last_modified,
        )
        _count(run, outcome, existed=known is not None, url=url)


def _count(run: SyncRun, outcome: StoreOutcome, *, existed: bool, url: str) -> None:
    if outcome == StoreOutcome.DUPLICATE:
        _note(run, [{"url": url, "error": "the same text as another page: indexed once"}])
        outcome = StoreOutcome.UPDATED if existed else StoreOutcome.ADDED
    field = {StoreOutcome.ADDED: "added", StoreOutcome.UPDATED: "updated", StoreOutcome.UNCHANGED: "unchanged"}
    setattr(run, field[outcome], getattr(run, field[outcome]) + 1)


def _remove(source: Source, pks: list[int]) -> int:
    removed = 0
    for start in range(0, len(pks), 500):
        removed += remove_documents(source.documents.filter(pk__in=pks[start : start + 500]))
    return removed


def _fail(run: SyncRun, url: str, error: str) -> None:
    run.failed += 1
    _note(run, [{"url": url, "error": error}])


def _note(run: SyncRun, entries: list[dict[str, str]]) -> None:
    room = MAX_ERRORS - len(run.errors)
    run.errors.extend(entries[: max(room, 0)])


def run_counts(run: SyncRun) -> str:
    """ "3 added, 0 updated, 12 unchanged, 1 removed, 0 failed" """
    return ", ".join(f"{getattr(run, name)} {name}" for name in RUN_COUNTS)


def run_report(run: SyncRun) -> str:
    """A run as the commands print it: the counts, then each error on its own line."""
    lines = [f"{run.source.location}: {run.status}. {run_counts(run)}; {run.requests} requests."]
    lines += [f"  {entry['url']}: {entry['error']}" for entry in run.errors]
    return "\n".join(lines)
