"""Writing the index: a document's text in, its chunks and postings out, in one transaction.

Every write of chunks goes through here, so the ``Corpus`` row (how many chunks, their
total length: BM25's index-wide figures) is changed in the same transaction as the
chunks it counts and is never stale. A document whose text is already indexed under
another URL is kept (a re-sync must know it) but marked ``duplicate_of`` and not indexed
twice; when the indexed copy goes, a duplicate takes its place.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from enum import StrEnum

from django.db import connection, transaction
from django.db.models import Count, F, Sum

from knowledge.analysis import term_counts
from knowledge.chunking import chunk_markdown
from knowledge.models import Chunk, Corpus, Document, Posting, Source, Term

# A term in the page title or a chunk's headings says more about the chunk than the same
# term in its body (BM25F-style field weights).
TITLE_WEIGHT = 2.0
HEADING_WEIGHT = 2.0
POSTING_BATCH = 2000
TERM_BATCH = 500
# BM25's parameters (knowledge.search), and the chunk length impacts are reckoned against.
K1 = 1.2
B = 0.75
TYPICAL_CHUNK_LENGTH = 100


class StoreOutcome(StrEnum):
    ADDED = "added"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DUPLICATE = "duplicate"  # stored, but its text is indexed under another document


def content_hash(markdown: str) -> str:
    """The text's identity: the same words under two URLs (or re-fetched) hash the same."""
    return hashlib.sha256(" ".join(markdown.split()).encode()).hexdigest()


def store_document(
    *,
    source: Source,
    url: str | None,
    title: str,
    markdown: str,
    key: str | None = None,
    etag: str = "",
    last_modified: str = "",
) -> StoreOutcome:
    """Add or replace one document of ``source`` (identified by ``key``, default its URL).

    Unchanged text rewrites nothing but the fetch validators; changed text replaces the
    document's chunks; text already indexed elsewhere is stored as a duplicate.
    """
    url = url or ""
    key = key or url
    if not key:
        raise ValueError("a document needs a url or a key")
    digest = content_hash(markdown)
    title = title.strip()[:500] or key.rsplit("/", 1)[-1][:500]
    with transaction.atomic():
        document = Document.objects.select_for_update().filter(source=source, key=key).first()
        if document is not None and document.content_hash == digest and document.title == title:
            if (document.etag, document.last_modified, document.url) != (etag, last_modified, url):
                Document.objects.filter(pk=document.pk).update(etag=etag, last_modified=last_modified, url=url)
            return StoreOutcome.UNCHANGED
        outcome = StoreOutcome.UPDATED if document is not None else StoreOutcome.ADDED
        if document is not None:
            release(document)
        else:
            document = Document(source=source, key=key)
        twin = Document.objects.indexed().filter(content_hash=digest).exclude(pk=document.pk).first()
        document.url, document.title, document.text, document.content_hash = url, title, markdown, digest
        document.etag, document.last_modified, document.duplicate_of = etag, last_modified, twin
        document.save()
        if twin is not None:
            return StoreOutcome.DUPLICATE
        index(document)
    return outcome


def remove_documents(documents) -> int:
    """Remove documents from the index and the database at once; returns how many."""
    removed = 0
    with transaction.atomic():
        # By primary key: a queryset with annotations (the admin's) cannot be locked.
        locked = Document.objects.filter(pk__in=list(documents.values_list("pk", flat=True))).select_for_update()
        for document in locked.order_by("pk"):
            release(document)
            document.delete()
            removed += 1
    return removed


def remove_sources(sources) -> int:
    """Delete sources and everything they put in the index; returns how many."""
    with transaction.atomic():
        sources = list(Source.objects.filter(pk__in=list(sources.values_list("pk", flat=True))).select_for_update())
        for source in sources:
            remove_documents(source.documents.all())
            source.delete()
    return len(sources)


def release(document: Document) -> None:
    """Take ``document``'s text out of the index; a duplicate of it is indexed instead."""
    if document.duplicate_of_id is not None:
        return
    unindex(document)
    heir = document.duplicates.order_by("pk").first()
    if heir is not None:
        Document.objects.filter(duplicate_of=document).exclude(pk=heir.pk).update(duplicate_of=heir)
        heir.duplicate_of = None
        heir.save(update_fields=["duplicate_of"])
        index(heir)


def index(document: Document) -> None:
    drafts = chunk_markdown(title=document.title, markdown=document.text)
    title_terms = term_counts(document.title)
    chunks, weights = [], []
    for ordinal, draft in enumerate(drafts):
        weighted = {term: TITLE_WEIGHT * n for term, n in title_terms.items()}
        for term, n in term_counts(draft.heading).items():
            weighted[term] = weighted.get(term, 0.0) + HEADING_WEIGHT * n
        for term, n in term_counts(draft.text).items():
            weighted[term] = weighted.get(term, 0.0) + n
        length = max(1, round(sum(weighted.values())))
        chunks.append(
            Chunk(document=document, ordinal=ordinal, heading=draft.heading[:1000], text=draft.text, length=length)
        )
        weights.append(weighted)
    if not chunks:
        return
    # The corpus row first: its lock orders every index writer, so that two of them never
    # take the term rows' locks in opposite orders.
    count_in(chunks=len(chunks), length=sum(chunk.length for chunk in chunks))
    Chunk.objects.bulk_create(chunks)
    postings = [
        Posting(
            term=term, chunk_id=chunk.pk, weight=weight, chunk_length=chunk.length, impact=impact(weight, chunk.length)
        )
        for chunk, weighted in zip(chunks, weights, strict=True)
        for term, weight in weighted.items()
    ]
    Posting.objects.bulk_create(postings, batch_size=POSTING_BATCH)
    count_terms(Counter(posting.term for posting in postings))


def unindex(document: Document) -> None:
    totals = Chunk.objects.filter(document=document).aggregate(chunks=Count("pk"), length=Sum("length"))
    if not totals["chunks"]:
        return
    count_in(chunks=-totals["chunks"], length=-totals["length"])
    held = Counter(Posting.objects.filter(chunk__document=document).values_list("term", flat=True))
    Posting.objects.filter(chunk__document=document).delete()
    Chunk.objects.filter(document=document).delete()
    count_terms({term: -n for term, n in held.items()})


def impact(weight: float, length: int) -> float:
    """BM25's term-frequency factor against a typical chunk's length: the order in which
    a term's postings are read when it is on too many chunks to read them all."""
    return weight / (weight + K1 * (1 - B + B * length / TYPICAL_CHUNK_LENGTH))


def count_in(*, chunks: int, length: int) -> None:
    """Change the corpus figures by these amounts (in the caller's transaction)."""
    changes = {"chunks": F("chunks") + chunks, "total_length": F("total_length") + length, "version": F("version") + 1}
    if not Corpus.objects.filter(pk=1).update(**changes):
        Corpus.objects.get_or_create(pk=1)
        Corpus.objects.filter(pk=1).update(**changes)


def count_terms(changes: dict[str, int]) -> None:
    """Add ``changes`` (term -> chunks more or fewer) to the terms' document frequencies,
    in term order, a batch a statement: an upsert for terms added (spelled alike by both
    databases), an update for terms taken away (a negative row would fail the upsert's
    check before its conflict is resolved)."""
    table = Term._meta.db_table
    rows = sorted(changes.items())
    for start in range(0, len(rows), TERM_BATCH):
        batch = rows[start : start + TERM_BATCH]
        added = [(term, n) for term, n in batch if n > 0]
        taken = [(term, -n) for term, n in batch if n < 0]
        with connection.cursor() as cursor:
            if added:
                values = ", ".join("(%s, %s)" for _ in added)
                cursor.execute(
                    f"INSERT INTO {table} (term, chunks) VALUES {values} "  # noqa: S608 - no input in the SQL text
                    f"ON CONFLICT (term) DO UPDATE SET chunks = {table}.chunks + excluded.chunks",
                    [value for row in added for value in row],
                )
            if taken:
                cases = " ".join("WHEN %s THEN %s" for _ in taken)
                placeholders = ", ".join("%s" for _ in taken)
                cursor.execute(
                    f"UPDATE {table} SET chunks = chunks - (CASE term {cases} END) "  # noqa: S608
                    f"WHERE term IN ({placeholders})",
                    [value for row in taken for value in row] + [term for term, _ in taken],
                )
