"""The index writer: one transaction a document, nothing rewritten when nothing changed,
and text under two URLs indexed once."""

from __future__ import annotations

from django.db.models import Count, Sum

from knowledge.index import StoreOutcome, remove_documents, remove_sources, store_document
from knowledge.models import Chunk, Corpus, Document, Posting, Source, Term
from knowledge.search import search

SHIPPING = "# Shipping\n\nWe ship to Canada within five days.\n\n## Costs\n\nShipping is free over $100."


def corpus_is_exact():
    """The corpus row and every term's document frequency match the rows they count."""
    corpus = Corpus.objects.get(pk=1)
    totals = Chunk.objects.aggregate(length=Sum("length"))
    counted = dict(Posting.objects.values("term").annotate(n=Count("pk")).values_list("term", "n"))
    stored = dict(Term.objects.filter(chunks__gt=0).values_list("term", "chunks"))
    return (corpus.chunks, corpus.total_length) == (Chunk.objects.count(), totals["length"] or 0) and stored == counted


def test_a_page_is_cut_into_chunks_at_its_headings(pages):
    assert pages.add("/shipping", "Shipping", SHIPPING) == StoreOutcome.ADDED

    chunks = list(Chunk.objects.values_list("heading", "text"))
    assert chunks == [("", "We ship to Canada within five days."), ("Costs", "Shipping is free over $100.")]
    assert corpus_is_exact()


def test_storing_the_same_text_again_rewrites_nothing(pages):
    pages.add("/shipping", "Shipping", SHIPPING, etag='"v1"')
    chunk_ids = list(Chunk.objects.values_list("pk", flat=True))
    postings = Posting.objects.count()

    assert pages.add("/shipping", "Shipping", SHIPPING, etag='"v2"') == StoreOutcome.UNCHANGED

    assert list(Chunk.objects.values_list("pk", flat=True)) == chunk_ids
    assert Posting.objects.count() == postings
    assert Document.objects.get().etag == '"v2"'


def test_changed_text_replaces_the_old_at_once(pages):
    pages.add("/shipping", "Shipping", SHIPPING)

    assert pages.add("/shipping", "Shipping", "We ship to Mexico only.") == StoreOutcome.UPDATED

    assert search("Canada") == []
    assert search("Mexico")[0].url == "https://shop.example/shipping"
    assert corpus_is_exact()


def test_the_same_text_under_two_urls_is_indexed_once(pages):
    pages.add("/shipping", "Shipping", SHIPPING)

    assert pages.add("/shipping?ref=footer", "Shipping", SHIPPING) == StoreOutcome.DUPLICATE

    assert Document.objects.count() == 2
    assert {hit.url for hit in search("ship to Canada")} == {"https://shop.example/shipping"}
    assert Chunk.objects.count() == 2
    assert corpus_is_exact()


def test_when_the_indexed_copy_goes_its_duplicate_takes_its_place(pages):
    pages.add("/shipping", "Shipping", SHIPPING)
    pages.add("/delivery", "Shipping", SHIPPING)

    remove_documents(Document.objects.filter(url="https://shop.example/shipping"))

    assert {hit.url for hit in search("ship to Canada")} == {"https://shop.example/delivery"}
    assert corpus_is_exact()


def test_removed_documents_leave_the_answers_at_once(pages):
    pages.add("/shipping", "Shipping", SHIPPING)
    pages.add("/returns", "Returns", "Returns are free within 30 days.")

    assert remove_documents(Document.objects.filter(url__endswith="/shipping")) == 1

    assert search("ship to Canada") == []
    assert search("returns")[0].url == "https://shop.example/returns"
    assert corpus_is_exact()


def test_removing_a_source_removes_everything_it_indexed(pages):
    pages.add("/shipping", "Shipping", SHIPPING)

    assert remove_sources(Source.objects.all()) == 1

    assert (Document.objects.count(), Chunk.objects.count(), Posting.objects.count()) == (0, 0, 0)
    assert search("ship") == []
    assert Corpus.objects.get(pk=1).chunks == 0


def test_an_uploaded_file_has_a_title_and_no_link(pages):
    store_document(source=pages.source, url=None, key="price-list.pdf", title="Price list", markdown="Tents: $249.")

    (hit,) = search("tents")
    assert (hit.title, hit.url) == ("Price list", None)
