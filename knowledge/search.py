"""Ranking passages for a question: BM25 over the index in the database.

Why not the databases' own full text search: PostgreSQL's ``ts_rank`` has no inverse
document frequency (a word on every page scores like a word on one) and
``websearch_to_tsquery`` wants every word of a question; SQLite's FTS5 ranks
differently again. Here both databases run the same few indexed queries over
``Posting`` and the same arithmetic, so they rank alike, and nothing is rebuilt per
query or held per instance:

1. the corpus figures (one row) and each query term's document frequency (an index
   range per term);
2. BM25 (k1 = 1.2, b = 0.75, Lucene's always-positive IDF) summed per chunk over the
   query terms' postings, best first;
3. the winners' text, headings and pages.

``retrieve`` turns that into what a chat turn needs: the passages that fit the prompt's
budget, and whether they answer the question at all.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connection
from django.db.models import Count

from conversations.tokens import estimate_tokens
from knowledge.analysis import terms
from knowledge.models import Chunk, Corpus, Posting

if TYPE_CHECKING:
    import numpy as np

K1 = 1.2
B = 0.75
# A passage answers a question when its terms carry at least this share of the
# question's weight (IDF), so a question about something the site never mentions
# ("Do you sell kayaks?") is not answered from a page that shares only "sell".
MIN_COVERAGE = 0.5
# The previous question counts for this much beside the current one, so that "and how
# much is it?" still finds the tent it is about.
PREVIOUS_QUERY_WEIGHT = 0.5
CANDIDATES = 30
PASSAGES_PER_PAGE = 2
SNIPPET_CHARS = 240


@dataclass
class Hit:
    chunk_id: int
    document_id: int
    url: str | None
    title: str
    heading: str
    text: str
    score: float
    # Share of the question's weight this passage's terms carry (0 to 1).
    coverage: float = 0.0
    snippet: str = ""
    # Cosine with the question's embedding, when semantic search found it among the nearest.
    similarity: float | None = None

    @property
    def relevant(self) -> bool:
        """Clears the relevance bar: enough of the question's terms, or near enough in meaning."""
        if self.coverage >= MIN_COVERAGE:
            return True
        return self.similarity is not None and self.similarity >= settings.CHATBOT_EMBEDDING_MIN_SIMILARITY


@dataclass
class Retrieval:
    passages: list[Hit] = field(default_factory=list)
    # The knowledge base holds nothing at all: the model answers as it would without one.
    empty: bool = True

    @property
    def answerable(self) -> bool:
        return bool(self.passages)


@dataclass
class Query:
    """A question as weighted terms: term -> weight."""

    weights: dict[str, float]

    @classmethod
    def of(cls, text: str, previous: str | None = None) -> Query:
        weights: dict[str, float] = dict.fromkeys(terms(text), 1.0)
        for term in terms(previous or ""):
            weights.setdefault(term, PREVIOUS_QUERY_WEIGHT)
        return cls(weights)


def search(
    text: str, *, limit: int = 10, previous: str | None = None, query_vector: np.ndarray | None = None
) -> list[Hit]:
    """The best ``limit`` passages for ``text``, best first (``query_vector``: see ``candidates``)."""
    query = Query.of(text, previous)
    corpus = Corpus.objects.filter(pk=1).first()
    if not query.weights or corpus is None or corpus.chunks <= 0:
        return []
    return candidates(query, corpus, limit=limit, query_vector=query_vector)


def retrieve(
    text: str, *, previous: str | None = None, budget_tokens: int | None = None, query_vector: np.ndarray | None = None
) -> Retrieval:
    """The passages a chat turn's answer should be grounded in.

    Only passages that clear the relevance bar (``Hit.relevant``) are kept, at most
    ``PASSAGES_PER_PAGE`` from one page and ``CHATBOT_KB_MAX_PASSAGES`` in all, best
    first, until ``budget_tokens`` (default ``CHATBOT_KB_CONTEXT_TOKENS``) is spent.
    With ``query_vector``, passages near the question in meaning are candidates too.
    """
    budget = settings.CHATBOT_KB_CONTEXT_TOKENS if budget_tokens is None else budget_tokens
    corpus = Corpus.objects.filter(pk=1).first()
    if corpus is None or corpus.chunks <= 0:
        return Retrieval(empty=True)
    query = Query.of(text, previous)
    if not query.weights:
        return Retrieval(empty=False)
    passages: list[Hit] = []
    per_page: Counter[int] = Counter()
    for hit in candidates(query, corpus, limit=CANDIDATES, query_vector=query_vector):
        if len(passages) >= settings.CHATBOT_KB_MAX_PASSAGES:
            break
        if not hit.relevant or per_page[hit.document_id] >= PASSAGES_PER_PAGE:
            continue
        cost = estimate_tokens(hit.text)
        if cost > budget:
            continue
        budget -= cost
        per_page[hit.document_id] += 1
        passages.append(hit)
    return Retrieval(passages=passages, empty=False)


def candidates(query: Query, corpus: Corpus, *, limit: int, query_vector: np.ndarray | None = None) -> list[Hit]:
    """BM25's best; given the question's embedding (``knowledge.semantic.embed_query``),
    their reciprocal rank fusion with the chunks nearest it in meaning."""
    if query_vector is None:
        return rank(query, corpus, limit=limit)
    from knowledge import semantic  # numpy and the embeddings client: only with semantic search on

    return semantic.fused(query, corpus, query_vector, limit=limit)


def rank(query: Query, corpus: Corpus, *, limit: int) -> list[Hit]:
    query_terms = sorted(query.weights)
    document_frequency = dict(
        Posting.objects.filter(term__in=query_terms).values("term").annotate(n=Count("pk")).values_list("term", "n")
    )
    idf = {
        term: query.weights[term] * inverse_frequency(document_frequency.get(term, 0), corpus.chunks)
        for term in query_terms
    }
    known = [term for term in query_terms if term in document_frequency]
    if not known:
        return []
    scores = bm25(known, idf, average_length=corpus.total_length / corpus.chunks, limit=limit)
    if not scores:
        return []
    matched = matched_terms([chunk_id for chunk_id, _ in scores], known)
    total_weight = sum(idf.values())
    chunks = Chunk.objects.select_related("document").in_bulk([chunk_id for chunk_id, _ in scores])
    hits = []
    for chunk_id, score in scores:
        chunk = chunks[chunk_id]
        hits.append(
            Hit(
                chunk_id=chunk_id,
                document_id=chunk.document_id,
                url=chunk.document.url or None,
                title=chunk.document.title,
                heading=chunk.heading,
                text=chunk.text,
                score=round(score, 6),
                coverage=sum(idf[term] for term in matched[chunk_id]) / total_weight,
                snippet=snippet(chunk.text, idf),
            )
        )
    return hits


def inverse_frequency(document_frequency: int, chunks: int) -> float:
    return math.log(1 + (chunks - document_frequency + 0.5) / (document_frequency + 0.5))


def bm25(
    query_terms: list[str], idf: dict[str, float], *, average_length: float, limit: int
) -> list[tuple[int, float]]:
    """(chunk id, score) of the best ``limit`` chunks, in one indexed query.

    Each term's IDF is a parameter (a CASE over the terms), which both databases read
    alike. Scores are rounded before ordering so the two databases' float sums, added in
    different orders, cannot swap two equal chunks; ties go to the older chunk.
    """
    table = Posting._meta.db_table
    cases = " ".join("WHEN %s THEN %s" for _ in query_terms)
    placeholders = ", ".join("%s" for _ in query_terms)
    sql = (
        f"SELECT chunk_id, ROUND(CAST(SUM((CASE term {cases} END) * weight * {K1 + 1} "  # noqa: S608 - no input in the SQL text
        f"/ (weight + {K1} * ({1 - B} + {B} * chunk_length / %s))) AS NUMERIC), 6) AS score "
        f"FROM {table} WHERE term IN ({placeholders}) "
        "GROUP BY chunk_id ORDER BY score DESC, chunk_id LIMIT %s"
    )
    params: list = []
    for term in query_terms:
        params += [term, idf[term]]
    params += [average_length, *query_terms, limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(chunk_id, float(score)) for chunk_id, score in cursor.fetchall()]


def matched_terms(chunk_ids: list[int], query_terms: list[str]) -> dict[int, set[str]]:
    matched: dict[int, set[str]] = {chunk_id: set() for chunk_id in chunk_ids}
    rows = Posting.objects.filter(chunk_id__in=chunk_ids, term__in=query_terms).values_list("chunk_id", "term")
    for chunk_id, term in rows:
        matched[chunk_id].add(term)
    return matched


SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n+")
MARKUP = re.compile(r"[*_`#>|]+|\[([^\]]*)\]\([^)]*\)")


LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")


def plain(text: str) -> str:
    """Markdown reduced to the words a snippet shows (a list item without its bullet)."""
    return " ".join(MARKUP.sub(lambda m: m.group(1) or " ", LIST_ITEM.sub("", text)).split())


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_BREAK.split(plain_lines(text)) if len(s.strip()) > 1]


def plain_lines(text: str) -> str:
    return "\n".join(plain(line) for line in text.splitlines())


def snippet(text: str, weights: dict[str, float], *, limit: int = SNIPPET_CHARS) -> str:
    """The sentence of ``text`` that carries most of the query, cut to ``limit``."""
    candidates = sentences(text) or [plain(text)]
    _, _, best = max((sentence_weight(s, weights), -i, s) for i, s in enumerate(candidates))
    if len(best) <= limit:
        return best
    return best[: limit - 1].rsplit(" ", 1)[0] + "…"


def sentence_weight(sentence: str, weights: dict[str, float]) -> float:
    return sum(weights.get(term, 0.0) for term in set(terms(sentence)))
