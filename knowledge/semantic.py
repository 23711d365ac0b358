"""Optional semantic search: chunks and questions as embeddings, fused with the lexical rank.

On only when ``CHATBOT_EMBEDDING_MODEL`` names a model of the OpenAI-compatible server
(``OPENAI_BASE_URL``, through the same SDK as the chat model); off, nothing here is sent
anywhere or even imported by ``knowledge.search``. No vector extension is to be had
(no pgvector here, no sqlite-vec in this Python), so:

* each chunk's vector is stored in ``Chunk.embedding`` (float32, normalised to length 1,
  so a dot product is the cosine), filled in after the chunk is stored by
  ``embed_pending``, in batches, each request made outside any transaction;
* ``nearest`` compares a question's vector with all of them in numpy. The matrix it
  keeps is only a cache of the database, rebuilt when ``Corpus.version`` (bumped by every
  index write, and by every run here that stored embeddings) moves, so instances stay
  stateless;
* ``fuse`` merges the lexical and the semantic order by reciprocal rank fusion, which
  needs no common scale between BM25 scores and cosines.

A failure of the embeddings server is a ``SemanticError``; a chat turn that meets one
answers from the lexical rank alone.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import httpx
import numpy as np
import openai
from django.conf import settings
from django.db import transaction

from knowledge.index import count_in
from knowledge.models import Chunk, Corpus
from knowledge.search import CANDIDATES, Hit, Query, passages_of, rank

logger = logging.getLogger(__name__)

# Reciprocal rank fusion's constant (Cormack et al., 2009): a chunk scores 1 / (k + rank)
# in each list it is in; 60 keeps one list's top rank from outweighing agreement.
RRF_K = 60
BATCH_SIZE = 64
# Longer chunks are cut before they are sent: the start of a passage carries its meaning,
# and one chunk over a model's input limit must not fail its whole batch forever.
MAX_INPUT_CHARS = 8000
# A chat turn waits this long at most for its question's embedding, and does not retry:
# the lexical rank is at hand, and a turn must not hang on a server that is down.
QUERY_TIMEOUT_SECONDS = 5.0
DTYPE = np.dtype("<f4")


class SemanticError(Exception):
    """The embeddings server gave no usable vectors: search is lexical for now."""


def enabled() -> bool:
    return bool(settings.CHATBOT_EMBEDDING_MODEL)


# --- Embedding ------------------------------------------------------------------------


async def embed_query(text: str) -> np.ndarray | None:
    """The question's vector (normalised), or None when semantic search is off.

    Network only, no database. Raises ``SemanticError`` when the server fails; the caller
    then searches lexically.
    """
    if not enabled():
        return None
    with translated_errors():
        response = await query_client().embeddings.create(
            model=settings.CHATBOT_EMBEDDING_MODEL, input=[model_input(text)], encoding_format="float"
        )
    return vectors_of(response, expected=1)[0]


def embed_pending(*, batch_size: int = BATCH_SIZE) -> int:
    """Embed every chunk that has no embedding yet; returns how many were stored.

    Call it after chunks are stored (a sync, ``kb_embed``), outside any transaction: it
    waits on the network. With semantic search off it does nothing. Each batch is one
    request, then one short transaction that writes its vectors; a chunk deleted
    meanwhile is simply not written. Stored batches stay when a later one fails
    (``SemanticError``): a rerun continues.
    """
    if not enabled():
        return 0
    stored = 0
    try:
        with openai.OpenAI(**client_options()) as client:
            for embedded in _embedded_batches(client, batch_size=batch_size):
                stored += embedded
    finally:
        if stored:
            # Embeddings change what a search finds, so caches of them must see it; one
            # bump for the run, not one a batch, since each makes every instance reload.
            with transaction.atomic():
                count_in(chunks=0, length=0)
    return stored


def _embedded_batches(client: openai.OpenAI, *, batch_size: int) -> Iterator[int]:
    after = 0
    while True:
        batch = list(
            Chunk.objects.filter(embedding__isnull=True, pk__gt=after)
            .select_related("document")
            .only("pk", "heading", "text", "document__title")
            .order_by("pk")[:batch_size]
        )
        if not batch:
            return
        after = batch[-1].pk
        with translated_errors():
            response = client.embeddings.create(
                model=settings.CHATBOT_EMBEDDING_MODEL,
                input=[model_input(chunk_text(chunk)) for chunk in batch],
                encoding_format="float",
            )
        vectors = vectors_of(response, expected=len(batch))
        for chunk, vector in zip(batch, vectors, strict=True):
            chunk.embedding = vector.tobytes()
        Chunk.objects.bulk_update(batch, ["embedding"])
        yield len(batch)


def forget_embeddings() -> int:
    """Drop every stored embedding (after a change of model); returns how many."""
    with transaction.atomic():
        forgotten = Chunk.objects.filter(embedding__isnull=False).update(embedding=None)
        count_in(chunks=0, length=0)
    return forgotten


def chunk_text(chunk: Chunk) -> str:
    """What a chunk's embedding is of: its passage, with the page title and headings it
    sits under, which the passage's own words often leave out."""
    where = " > ".join(part for part in (chunk.document.title, chunk.heading) if part)
    return f"{where}\n\n{chunk.text}" if where else chunk.text


def model_input(text: str) -> str:
    return " ".join(text.split())[:MAX_INPUT_CHARS] or "."


def vectors_of(response, *, expected: int) -> list[np.ndarray]:
    """The response's vectors in input order, float32 and normalised."""
    # The SDK does not validate a reply's fields: a server's odd reply is read defensively.
    data = getattr(response, "data", None)
    data = sorted(data, key=lambda item: getattr(item, "index", 0)) if isinstance(data, list) else []
    if len(data) != expected:
        raise SemanticError(f"The embeddings server returned {len(data)} vectors for {expected} inputs.")
    vectors = []
    for item in data:
        try:
            vector = np.asarray(getattr(item, "embedding", None), dtype=DTYPE)
        except (TypeError, ValueError):
            vector = np.empty(0, dtype=DTYPE)
        norm = float(np.linalg.norm(vector)) if vector.ndim == 1 else 0.0
        if vector.ndim != 1 or not vector.size or not np.isfinite(norm):
            raise SemanticError("The embeddings server returned something that is not a vector.")
        # A zero vector stays zero: near nothing, rather than a division by zero.
        vectors.append((vector / norm if norm else vector).astype(DTYPE))
    return vectors


def client_options() -> dict:
    return {
        "api_key": settings.OPENAI_API_KEY,
        "base_url": settings.OPENAI_BASE_URL or None,
        "timeout": settings.OPENAI_TIMEOUT,
        "max_retries": settings.OPENAI_MAX_RETRIES,
    }


# httpx binds a client's connections to the event loop that first uses it: one client
# per loop (and per configuration, which only tests change).
_query_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def query_client() -> openai.AsyncOpenAI:
    options = client_options() | {
        "timeout": min(settings.OPENAI_TIMEOUT, QUERY_TIMEOUT_SECONDS),
        "max_retries": 0,
    }
    loop = asyncio.get_running_loop()
    known = _query_clients.get(loop)
    if known is None or known[0] != options:
        known = _query_clients[loop] = (options, openai.AsyncOpenAI(**options))
    return known[1]


class translated_errors:  # noqa: N801 - used as a context manager, reads as a phrase
    """The SDK's and the HTTP client's failures as ``SemanticError``; our own pass through."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if isinstance(exc, openai.APIStatusError):
            raise SemanticError(f"The embeddings server answered HTTP {exc.status_code}.") from exc
        if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
            raise SemanticError("The embeddings server did not answer in time.") from exc
        if isinstance(exc, openai.APIConnectionError | httpx.TransportError):
            raise SemanticError("The embeddings server could not be reached.") from exc
        if isinstance(exc, openai.APIResponseValidationError | ValueError):
            # A body that is not JSON (json's errors are ValueErrors) or not embeddings.
            raise SemanticError("The embeddings server's reply could not be read.") from exc
        return False


# --- Searching --------------------------------------------------------------------------


@dataclass(frozen=True)
class Vectors:
    """Every stored embedding of one dimension: chunk ids and their rows, as of ``version``."""

    ids: np.ndarray
    matrix: np.ndarray


class VectorCache:
    """The stored embeddings as matrices, one per dimension (two models' vectors can be
    stored at once, until ``kb_embed --reset``), rebuilt when ``Corpus.version`` moves."""

    def __init__(self):
        self._lock = threading.Lock()
        self._version: int | None = None
        self._by_dimension: dict[int, Vectors] = {}

    def current(self) -> dict[int, Vectors]:
        """The matrices for the index as it is now: one query for the version, and
        a full read of the embeddings only when it has moved since the last build."""
        version = Corpus.objects.filter(pk=1).values_list("version", flat=True).first()
        with self._lock:
            if version != self._version:
                # Read after the version: a write committed in between makes the next
                # query rebuild once more, never keeps a stale matrix.
                self._by_dimension = load_vectors()
                self._version = version
            return self._by_dimension


def load_vectors() -> dict[int, Vectors]:
    ids: dict[int, list[int]] = {}
    rows: dict[int, list[np.ndarray]] = {}
    stored = Chunk.objects.filter(embedding__isnull=False).values_list("pk", "embedding").order_by("pk")
    for chunk_id, embedding in stored.iterator(chunk_size=2000):
        vector = np.frombuffer(embedding, dtype=DTYPE)
        ids.setdefault(vector.size, []).append(chunk_id)
        rows.setdefault(vector.size, []).append(vector)
    return {size: Vectors(ids=np.asarray(ids[size], dtype=np.int64), matrix=np.vstack(rows[size])) for size in rows}


vector_cache = VectorCache()


def nearest(vector: np.ndarray, limit: int) -> list[tuple[int, float]]:
    """(chunk id, cosine) of the ``limit`` stored chunks nearest ``vector``, nearest first
    (ties to the older chunk). Raises ``SemanticError`` when the stored embeddings are of
    another dimension (another model: ``kb_embed --reset``)."""
    by_dimension = vector_cache.current()
    query = np.asarray(vector, dtype=DTYPE)
    vectors = by_dimension.get(query.size)
    if vectors is None:
        if by_dimension:
            sizes = ", ".join(str(size) for size in sorted(by_dimension))
            raise SemanticError(
                f"The stored embeddings have {sizes} dimensions, the question's {query.size}: "
                "run `manage.py kb_embed --reset` after changing CHATBOT_EMBEDDING_MODEL."
            )
        return []
    norm = float(np.linalg.norm(query))
    if not norm or limit <= 0:
        return []
    cosines = vectors.matrix @ (query / norm)
    count = min(limit, cosines.size)
    best = np.argpartition(-cosines, count - 1)[:count]
    best = best[np.lexsort((vectors.ids[best], -cosines[best]))]
    return [(int(vectors.ids[i]), round(float(cosines[i]), 6)) for i in best]


def rrf_scores(lexical_hits: Iterable[Hit], semantic_pairs: Iterable[tuple[int, float]]) -> dict[int, float]:
    """Each chunk's reciprocal rank fusion score, in the order first seen (lexical first)."""
    scores: dict[int, float] = {}
    for ranking in ([hit.chunk_id for hit in lexical_hits], [chunk_id for chunk_id, _ in semantic_pairs]):
        for position, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (RRF_K + position)
    return scores


def fuse(lexical_hits: Sequence[Hit], semantic_pairs: Sequence[tuple[int, float]], limit: int) -> list[int]:
    """Chunk ids by reciprocal rank fusion of the two orders, best first; ties (a chunk
    each list ranks where the other ranks its rival) go to the lexical order."""
    scores = rrf_scores(lexical_hits, semantic_pairs)
    # sorted() is stable: equal scores keep the order first seen.
    return sorted(scores, key=lambda chunk_id: -scores[chunk_id])[:limit]


def fused(query: Query, corpus: Corpus, query_vector: np.ndarray, *, limit: int) -> list[Hit]:
    """``knowledge.search``'s candidates with semantic search on: the lexical and the
    nearest chunks, fused, each ``Hit`` scored by its fusion score and carrying its
    cosine (``similarity``) when it was among the nearest. The lexical order alone when
    the stored embeddings cannot be compared with the question's."""
    depth = max(limit, CANDIDATES)
    lexical = rank(query, corpus, limit=depth)
    try:
        pairs = nearest(query_vector, depth)
    except SemanticError as error:
        logger.warning("Semantic search skipped, lexical only: %s", error)
        return lexical[:limit]
    scores = rrf_scores(lexical, pairs)
    similarity = dict(pairs)
    order = fuse(lexical, pairs, limit)
    hits = {hit.chunk_id: hit for hit in lexical}
    unseen = [chunk_id for chunk_id in order if chunk_id not in hits]
    for chunk_id, document_id, heading, text, url, title in passages_of(unseen).values():
        hits[chunk_id] = Hit(
            chunk_id=chunk_id,
            document_id=document_id,
            url=url or None,
            title=title,
            heading=heading,
            text=text,
            score=0.0,
            # Not among the lexical candidates: its share of the question's terms is not
            # known, its cosine is; the relevance bar reads that.
            coverage=0.0,
        )
    fused_hits = []
    for chunk_id in order:
        hit = hits.get(chunk_id)  # a chunk removed since the cache was built is skipped
        if hit is not None:
            hit.score = round(scores[chunk_id], 6)
            hit.similarity = similarity.get(chunk_id)
            fused_hits.append(hit)
    return fused_hits
