"""Ranking passages for a question: BM25 over the index in the database.

Why not the databases' own full text search: PostgreSQL's ``ts_rank`` has no inverse
document frequency (a word on every page scores like a word on one) and
``websearch_to_tsquery`` wants every word of a question; SQLite's FTS5 ranks
differently again. Here both databases run the same few indexed queries over
``Posting`` and the same arithmetic, so they rank alike, and nothing is rebuilt per
query or held per instance:

1. the corpus figures (one row) and each query term's document frequency (``Term``,
   one row a term);
2. candidates: BM25 (k1 = 1.2, b = 0.75, Lucene's always-positive IDF) over each query
   term's best postings by impact, one indexed range a term, so that a word on half the
   site costs no more than a rare one;
3. the best candidates scored exactly over all their postings (the index by chunk), and
   the winners' text, headings and pages.

``retrieve`` turns that into what a chat turn needs: the passages that fit the prompt's
budget, and whether they answer the question at all.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connection

from conversations.tokens import estimate_tokens
from knowledge.analysis import ESCAPE, NUMBERS, stemmer, terms
from knowledge.index import K1, B
from knowledge.models import Chunk, Corpus, Document, Posting, Term

if TYPE_CHECKING:
    import numpy as np

# A passage answers a question when its terms carry at least this share of the
# question's weight (IDF), so a question about something the site never mentions
# ("Do you sell kayaks?") is not answered from a page that shares only "sell".
MIN_COVERAGE = 0.5
# The previous question counts for this much beside the current one, so that "and how
# much is it?" still finds the tent it is about.
PREVIOUS_QUERY_WEIGHT = 0.5
CANDIDATES = 30
# Each query term contributes its best postings by impact (term frequency against the
# chunk's length) to the candidates, of which the best are then scored exactly.
TOP_POSTINGS = 300
RERANKED = 50
PASSAGES_PER_PAGE = 2
# Search results are pages: each page's best passage, so that a long page whose every
# section mentions the words does not push the other pages off the first screen.
RESULTS_PER_PAGE = 1
SNIPPET_CHARS = 240
SNIPPET_WORD = re.compile(r"\w+")


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
    # What each query term is worth, for the snippet (made when first read).
    weights: dict[str, float] = field(default_factory=dict, repr=False)
    # Cosine with the question's embedding, when semantic search found it among the nearest.
    similarity: float | None = None

    @cached_property
    def snippet(self) -> str:
        """The passage's sentence that carries most of the question: made only for the
        passages shown (search results, the citations an answer keeps)."""
        return snippet(self.text, self.weights)

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
    """A question as weighted terms (term -> weight); ``idf``, once ranked: term ->
    weight × IDF, what each term is worth."""

    weights: dict[str, float]
    idf: dict[str, float] = field(default_factory=dict)
    # Chunks holding each term, for the terms any chunk holds (read with the corpus row).
    document_frequency: dict[str, int] = field(default_factory=dict)
    # The corpus figures, once read (``question``).
    corpus: Corpus | None = None

    @classmethod
    def of(cls, text: str, previous: str | None = None) -> Query:
        weights: dict[str, float] = dict.fromkeys(terms(text), 1.0)
        for term in terms(previous or ""):
            weights.setdefault(term, PREVIOUS_QUERY_WEIGHT)
        return cls(weights)


def search(
    text: str, *, limit: int = 10, previous: str | None = None, query_vector: np.ndarray | None = None
) -> list[Hit]:
    """The best ``limit`` pages for ``text``, best first, each as its best passage
    (``query_vector``: see ``candidates``)."""
    query = Query.of(text, previous)
    corpus = figures(query)
    if not query.weights or corpus is None or corpus.chunks <= 0:
        return []
    found = candidates(query, corpus, limit=max(limit, CANDIDATES), query_vector=query_vector)
    return with_weights(at_most_per_page(found, RESULTS_PER_PAGE)[:limit], query)


def at_most_per_page(hits: list[Hit], per_page: int) -> list[Hit]:
    """``hits`` in order, without those past the first ``per_page`` of their page."""
    kept: list[Hit] = []
    seen: Counter[int] = Counter()
    for hit in hits:
        if seen[hit.document_id] < per_page:
            seen[hit.document_id] += 1
            kept.append(hit)
    return kept


def question(text: str, *, previous: str | None = None) -> Query | None:
    """``text`` (and the ``previous`` question) analysed, with the corpus figures its
    ranking needs, in one query; None when the knowledge base holds nothing, so that a
    chat turn on a site without one goes no further (``passages_for``)."""
    query = Query.of(text, previous)
    query.corpus = figures(query)
    if query.corpus is None or query.corpus.chunks <= 0:
        return None
    return query


def retrieve(
    text: str, *, previous: str | None = None, budget_tokens: int | None = None, query_vector: np.ndarray | None = None
) -> Retrieval:
    """The passages a chat turn's answer should be grounded in (``question``, then
    ``passages_for``)."""
    query = question(text, previous=previous)
    if query is None:
        return Retrieval(empty=True)
    return passages_for(query, budget_tokens=budget_tokens, query_vector=query_vector)


def passages_for(
    query: Query, *, budget_tokens: int | None = None, query_vector: np.ndarray | None = None
) -> Retrieval:
    """The passages for a ``question`` of a knowledge base that holds pages.

    Only passages that clear the relevance bar (``Hit.relevant``) are kept, at most
    ``PASSAGES_PER_PAGE`` from one page and ``CHATBOT_KB_MAX_PASSAGES`` in all, best
    first, until ``budget_tokens`` (default ``CHATBOT_KB_CONTEXT_TOKENS``) is spent.
    With ``query_vector``, passages near the question in meaning are candidates too.
    """
    budget = settings.CHATBOT_KB_CONTEXT_TOKENS if budget_tokens is None else budget_tokens
    if not query.weights:
        return Retrieval(empty=False)
    passages: list[Hit] = []
    per_page: Counter[int] = Counter()
    for hit in candidates(query, query.corpus, limit=CANDIDATES, query_vector=query_vector):
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
    return Retrieval(passages=with_weights(passages, query), empty=False)


def figures(query: Query) -> Corpus | None:
    """The corpus row (None before anything was indexed), and the query's terms'
    document frequencies into ``query``, in one query."""
    corpus_table, term_table = Corpus._meta.db_table, Term._meta.db_table
    query_terms = sorted(query.weights)
    matching = f"t.term IN ({', '.join('%s' for _ in query_terms)}) AND t.chunks > 0" if query_terms else "1 = 0"
    sql = (
        f"SELECT c.chunks, c.total_length, t.term, t.chunks FROM {corpus_table} c "  # noqa: S608 - no input in the SQL text
        f"LEFT JOIN {term_table} t ON {matching} WHERE c.id = 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, query_terms)
        rows = cursor.fetchall()
    if not rows:
        return None
    query.document_frequency = {term: n for _, _, term, n in rows if term is not None}
    return Corpus(pk=1, chunks=rows[0][0], total_length=rows[0][1])


def candidates(query: Query, corpus: Corpus, *, limit: int, query_vector: np.ndarray | None = None) -> list[Hit]:
    """BM25's best; given the question's embedding (``knowledge.semantic.embed_query``),
    their reciprocal rank fusion with the chunks nearest it in meaning."""
    if query_vector is None:
        return rank(query, corpus, limit=limit)
    from knowledge import semantic  # numpy and the embeddings client: only with semantic search on

    return semantic.fused(query, corpus, query_vector, limit=limit)


def rank(query: Query, corpus: Corpus, *, limit: int) -> list[Hit]:
    """BM25's best ``limit`` chunks for ``query``, best first (snippets not yet made).

    Candidates come from the top ``TOP_POSTINGS`` postings of each query term by impact
    (one indexed range a term, so a word on half the site costs no more than a rare
    one); the best ``RERANKED`` of them are then scored exactly, over all their postings.
    The query's document frequencies are read by ``figures`` first.
    """
    query_terms = sorted(query.weights)
    document_frequency = query.document_frequency
    query.idf = {
        term: query.weights[term] * inverse_frequency(document_frequency.get(term, 0), corpus.chunks)
        for term in query_terms
    }
    known = [term for term in query_terms if term in document_frequency]
    if not known:
        return []
    average_length = corpus.total_length / corpus.chunks
    scores, matched = candidate_scores(known, query.idf, average_length=average_length, limit=max(limit, RERANKED))
    best = sorted(scores, key=lambda chunk_id: (-scores[chunk_id], chunk_id))[:limit]
    chunks = passages_of(best)
    total_weight = sum(query.idf.values())
    return [
        Hit(
            chunk_id=chunk_id,
            document_id=document_id,
            url=url or None,
            title=title,
            heading=heading,
            text=text,
            score=scores[chunk_id],
            coverage=sum(query.idf[term] for term in matched[chunk_id]) / total_weight,
        )
        for chunk_id, document_id, heading, text, url, title in (chunks[pk] for pk in best if pk in chunks)
    ]


def passages_of(chunk_ids: list[int]) -> dict[int, tuple]:
    """The chunks' (id, document id, heading, text, url, title), never the page's whole
    text: in plain SQL, since compiling the ORM's query cost more than running it."""
    if not chunk_ids:
        return {}
    chunk, document = Chunk._meta.db_table, Document._meta.db_table
    sql = (
        f"SELECT c.id, c.document_id, c.heading, c.text, d.url, d.title FROM {chunk} c "  # noqa: S608 - no input in the SQL text
        f"JOIN {document} d ON d.id = c.document_id WHERE c.id IN ({', '.join('%s' for _ in chunk_ids)})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, chunk_ids)
        return {row[0]: row for row in cursor.fetchall()}


def inverse_frequency(document_frequency: int, chunks: int) -> float:
    return math.log(1 + (chunks - document_frequency + 0.5) / (document_frequency + 0.5))


def term_score(idf: float, weight: float, length: int, average_length: float) -> float:
    return idf * weight * (K1 + 1) / (weight + K1 * (1 - B + B * length / average_length))


def candidate_scores(
    query_terms: list[str], idf: dict[str, float], *, average_length: float, limit: int
) -> tuple[dict[int, float], dict[int, set[str]]]:
    """The ``limit`` best candidates' exact BM25 scores, and the query terms each holds.

    One query: the candidates are the best chunks by BM25 over each term's top postings
    (each term's IDF a parameter, read alike by both databases; scores rounded before
    ordering, so that float sums added in other orders cannot swap two equal chunks, and
    ties to the older chunk); it returns all their postings of the query terms, which are
    summed here.
    """
    table = Posting._meta.db_table
    # BM25's term score with its constants folded (floats, so no database computes in
    # decimals): idf × (k1 + 1) × weight / (weight + k1 × (1 − b) + k1 × b / avgdl × length).
    per_term = (
        "SELECT chunk_id, %s * weight / (weight + %s + %s * chunk_length) AS s "  # noqa: S608 - no input in the SQL text
        f"FROM (SELECT chunk_id, weight, chunk_length FROM {table} WHERE term = %s "
        "ORDER BY impact DESC, chunk_id LIMIT %s) AS top"
    )
    union = " UNION ALL ".join(f"SELECT * FROM ({per_term}) AS t{n}" for n in range(len(query_terms)))  # noqa: S608
    placeholders = ", ".join("%s" for _ in query_terms)
    sql = (
        f"SELECT p.chunk_id, p.term, p.weight, p.chunk_length FROM {table} p JOIN ("  # noqa: S608
        f"SELECT chunk_id FROM ({union}) AS u "
        "GROUP BY chunk_id ORDER BY ROUND(SUM(s) * 1000000) DESC, chunk_id LIMIT %s"
        f") AS candidates ON p.chunk_id = candidates.chunk_id WHERE p.term IN ({placeholders})"
    )
    params: list = []
    for term in query_terms:
        params += [idf[term] * (K1 + 1), K1 * (1 - B), K1 * B / average_length, term, TOP_POSTINGS]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit, *query_terms])
        rows = cursor.fetchall()
    scores: dict[int, float] = {}
    matched: dict[int, set[str]] = {}
    for chunk_id, term, weight, length in sorted(rows):
        scores[chunk_id] = scores.get(chunk_id, 0.0) + term_score(idf[term], weight, length, average_length)
        matched.setdefault(chunk_id, set()).add(term)
    return {chunk_id: round(score, 6) for chunk_id, score in scores.items()}, matched


def with_weights(hits: list[Hit], query: Query) -> list[Hit]:
    """``hits``, each able to make its snippet from what the query's terms are worth."""
    weights = query.idf or query.weights
    for hit in hits:
        hit.weights = weights
    return hits


SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n+")
MARKUP = re.compile(r"[*`#>|]+|(?<!\w)_+|_+(?!\w)|\[([^\]]*)\]\([^)]*\)")


LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d{1,3}[.)])[ \t]+", re.MULTILINE)
SPACES = re.compile(r"[ \t\r\f\v]+")


def unmarked(text: str) -> str:
    """Markdown reduced to the words a snippet shows (a list item without its bullet),
    its lines kept."""
    return MARKUP.sub(lambda m: m.group(1) or " ", ESCAPE.sub(r"\1", LIST_ITEM.sub("", text)))


def plain(text: str) -> str:
    return " ".join(unmarked(text).split())


def sentences(text: str) -> list[str]:
    """The sentences of ``text``, each line ending one."""
    return [s for s in (SPACES.sub(" ", part).strip() for part in SENTENCE_BREAK.split(unmarked(text))) if len(s) > 1]


def snippet(text: str, weights: dict[str, float], *, limit: int = SNIPPET_CHARS) -> str:
    """The sentence of ``text`` that carries most of the query, cut to ``limit``.

    Words are read coarsely (no compound pieces) and all of them stemmed in one call: a
    snippet is made for every passage of every turn, and the index's own analysis,
    sentence by sentence, cost more than the query.
    """
    candidates = sentences(text) or [plain(text)]
    words_of = [set(SNIPPET_WORD.findall(sentence.lower())) for sentence in candidates]
    distinct = sorted(set().union(*words_of))
    worth = {
        word: weights.get(NUMBERS.get(word, stem), 0.0)
        for word, stem in zip(distinct, stemmer().stemWords(distinct), strict=True)
    }
    _, _, best = max((sum(worth[word] for word in found), -i, candidates[i]) for i, found in enumerate(words_of))
    if len(best) <= limit:
        return best
    return best[: limit - 1].rsplit(" ", 1)[0] + "…"
