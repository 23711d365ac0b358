"""The knowledge base: the site's pages, cut into chunks, and the index that ranks them.

``Source`` is what staff point the knowledge base at (a page, a sitemap, uploaded files);
``Document`` one page or file of it; ``Chunk`` a passage of a document, cut at its
headings; ``Posting`` the inverted index (one row a term a chunk) that
``knowledge.search`` ranks with BM25. ``Corpus`` is the one row of index-wide figures
BM25 needs (how many chunks, their total length), kept exact by the same transactions
that write the chunks, so no instance holds state of its own and no query counts rows.
Only ``knowledge.index`` writes chunks, postings and the corpus row.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Count


class SourceKind(models.TextChoices):
    URL = "url", "Page URL"
    SITEMAP = "sitemap", "Sitemap"
    FILES = "files", "Uploaded files"


class SourceState(models.TextChoices):
    NEW = "new", "New"
    SYNCING = "syncing", "Syncing"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class SourceQuerySet(models.QuerySet):
    def with_counts(self):
        """Each source's documents and chunks, counted in the same query."""
        return self.annotate(
            document_count=Count("documents", distinct=True),
            chunk_count=Count("documents__chunks", distinct=True),
        )


class Source(models.Model):
    kind = models.CharField(max_length=16, choices=SourceKind.choices)
    # The page or sitemap URL; for uploaded files, a label staff chose.
    location = models.CharField(max_length=2048)
    state = models.CharField(max_length=16, choices=SourceState.choices, default=SourceState.NEW)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SourceQuerySet.as_manager()

    class Meta:
        ordering = ["location"]
        constraints = [models.UniqueConstraint(fields=["kind", "location"], name="source_unique_location")]

    def __str__(self) -> str:
        return self.location


class DocumentQuerySet(models.QuerySet):
    def indexed(self):
        """Documents whose text is in the index (not a duplicate of another's)."""
        return self.filter(duplicate_of__isnull=True)


class Document(models.Model):
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="documents")
    # Where visitors can read it; empty for an uploaded file.
    url = models.CharField(max_length=2048, blank=True)
    # What identifies it within its source: its URL, or an uploaded file's name.
    key = models.CharField(max_length=2048)
    title = models.CharField(max_length=500, blank=True)
    # The extracted main text as Markdown: re-chunked from here, never re-fetched.
    text = models.TextField()
    content_hash = models.CharField(max_length=64, db_index=True)
    # The same text under another URL: kept for re-syncs, not indexed twice.
    duplicate_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="duplicates"
    )
    etag = models.CharField(max_length=500, blank=True)
    last_modified = models.CharField(max_length=100, blank=True)
    fetched_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DocumentQuerySet.as_manager()

    class Meta:
        ordering = ["source", "key"]
        constraints = [models.UniqueConstraint(fields=["source", "key"], name="document_unique_key")]

    def __str__(self) -> str:
        return self.title or self.key


class Chunk(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    ordinal = models.PositiveIntegerField()
    # The heading path, outermost first: "Returns > Damaged items".
    heading = models.CharField(max_length=1000, blank=True)
    text = models.TextField()
    # Weighted terms (title and heading terms count more), BM25's document length.
    length = models.PositiveIntegerField()
    # Optional semantic search: float32 vector of CHATBOT_EMBEDDING_MODEL, or null.
    embedding = models.BinaryField(null=True, blank=True)

    class Meta:
        ordering = ["document", "ordinal"]
        constraints = [models.UniqueConstraint(fields=["document", "ordinal"], name="chunk_unique_ordinal")]

    def __str__(self) -> str:
        return f"{self.document} §{self.ordinal}"


class Posting(models.Model):
    term = models.CharField(max_length=64)
    # Indexed with the term below (deletes and exact scoring look chunks up by id).
    chunk = models.ForeignKey(Chunk, on_delete=models.CASCADE, related_name="postings", db_index=False)
    # The term's weighted frequency in the chunk, and the chunk's length, copied here so
    # that ranking reads nothing but this index.
    weight = models.FloatField()
    chunk_length = models.PositiveIntegerField()
    # BM25's term-frequency factor against a typical chunk length: which of a common
    # term's postings are worth most, read first.
    impact = models.FloatField()

    class Meta:
        indexes = [
            models.Index(fields=["term", "-impact", "chunk", "weight", "chunk_length"], name="posting_best_by_term"),
            models.Index(fields=["chunk", "term", "weight", "chunk_length"], name="posting_by_chunk"),
        ]

    def __str__(self) -> str:
        return f"{self.term} in {self.chunk_id}"


class Term(models.Model):
    """How many chunks hold each term: BM25's document frequency, one row a term, kept
    exact by the transactions that write the postings."""

    term = models.CharField(max_length=64, primary_key=True)
    chunks = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.term} in {self.chunks} chunks"


class Corpus(models.Model):
    """The one row of BM25's index-wide figures (pk=1)."""

    chunks = models.BigIntegerField(default=0)
    total_length = models.BigIntegerField(default=0)
    # Bumped by every write, so anything derived from the index can tell it is stale.
    version = models.BigIntegerField(default=0)

    class Meta:
        verbose_name_plural = "corpus"

    def __str__(self) -> str:
        return f"{self.chunks} chunks"


class SyncStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class SyncRun(models.Model):
    """One ingestion or re-sync of a source, and what it did."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="runs")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=SyncStatus.choices, default=SyncStatus.RUNNING)
    requests = models.PositiveIntegerField(default=0)
    added = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    # [{"url": ..., "error": ...}], at most a few hundred.
    errors = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        indexes = [models.Index(fields=["source", "-started_at"], name="syncrun_latest_for_source")]

    def __str__(self) -> str:
        return f"{self.source} at {self.started_at:%Y-%m-%d %H:%M}"
