"""Ranking: BM25 with real IDF, stemming and a boost for titles and headings, the same
on SQLite and PostgreSQL."""

from __future__ import annotations

import math

from knowledge import search as search_module
from knowledge.models import Chunk, Posting
from knowledge.search import retrieve, search

FILLER = "Our shop sells outdoor gear for hikers and campers, shipped from our warehouse."


def test_a_rare_word_outranks_a_common_one(pages):
    # "gear" is on every page; "waterproof" on one. The page with "waterproof" once
    # beats a page with "gear" three times.
    for n in range(8):
        pages.add(f"/page-{n}", f"Page {n}", f"{FILLER} Gear, gear and more gear, item {n}.")
    pages.add("/jacket", "Jacket", f"{FILLER} This jacket is waterproof.")

    hits = search("waterproof gear")

    assert hits[0].url == "https://shop.example/jacket"


def test_words_are_stemmed(pages):
    pages.add("/returns", "Returns", "We refund every returned item within 30 days.")
    pages.add("/about", "About us", FILLER)

    assert search("refunds for items I return")[0].url == "https://shop.example/returns"


def test_a_title_or_heading_counts_more_than_the_body(pages):
    pages.add("/faq", "FAQ", f"# FAQ\n\n## Payment\n\n{FILLER} We take cards. Warranty questions go to support.")
    pages.add("/warranty", "Warranty", f"# Warranty\n\n{FILLER} Two years on everything we sell.")

    assert search("warranty")[0].url == "https://shop.example/warranty"


def test_a_natural_question_finds_its_page_though_not_every_word_is_on_it(pages):
    pages.add("/returns", "Returns and refunds", "# Damaged items\n\nIf an item arrives damaged we refund it in full.")
    pages.add("/shipping", "Shipping", "We ship to Canada and the US within five days.")

    hits = search("What is your refund policy for damaged items?")

    assert [hit.url for hit in hits][:1] == ["https://shop.example/returns"]
    assert hits[0].heading == "Damaged items"


def test_each_hit_says_where_it_comes_from_with_a_snippet(pages):
    pages.add(
        "/tents",
        "Tents",
        "# Tents\n\n## Two-person tents\n\nThe Trail 2 sleeps two people. It weighs 1.9 kg. It costs $249.",
    )

    (hit,) = search("what does the tent weigh")

    assert (hit.title, hit.heading, hit.url) == ("Tents", "Two-person tents", "https://shop.example/tents")
    assert hit.snippet == "It weighs 1.9 kg."
    assert hit.score > 0


def test_nothing_is_found_for_words_no_page_has(pages):
    pages.add("/tents", "Tents", "The Trail 2 sleeps two people.")

    assert search("kayak paddles") == []


def test_a_question_the_site_does_not_answer_is_not_answerable(pages):
    # "ship" is on the page, "mars" on none: the page shares the question's weakest word only.
    pages.add("/shipping", "Shipping", "We ship to Canada and the US within five days.")

    assert not retrieve("Do you ship to Mars?").answerable
    assert retrieve("Do you ship to Canada?").answerable


def test_the_words_a_question_is_wrapped_in_do_not_count_against_the_page(pages):
    pages.add("/tents", "Tents", "The Trail 2 sleeps two people.")

    assert retrieve("Hi, do you sell tents?").answerable


def test_an_empty_knowledge_base_says_so(db):
    retrieval = retrieve("anything at all")

    assert retrieval.empty and not retrieval.answerable


def test_a_follow_up_finds_what_the_previous_question_was_about(pages):
    pages.add("/tents", "Tents", "The Trail 2 tent sleeps two people and costs $249.")
    pages.add("/bags", "Sleeping bags", "The Down 0 sleeping bag costs $199.")

    retrieval = retrieve("and how much is it?", previous="Which tent is best for two people?")

    assert retrieval.passages[0].url == "https://shop.example/tents"


def test_passages_keep_to_the_budget_and_to_two_a_page(pages, settings):
    long_section = "Tents for two people. " * 30
    pages.add("/tents", "Tents", "\n\n".join(f"## Tent {n}\n\n{long_section}" for n in range(4)))
    pages.add("/more-tents", "More tents", f"Tents for two people, also. {long_section}")

    passages = retrieve("tents for two people", budget_tokens=10_000).passages
    assert [p.url for p in passages].count("https://shop.example/tents") == 2

    assert len(retrieve("tents for two people", budget_tokens=200).passages) == 1


def test_the_database_ranks_exactly_as_bm25_computed_by_hand(pages):
    # The same expected order on SQLite and PostgreSQL (CI runs both): BM25 computed
    # here from the postings, in Python, with the formula's textbook form.
    texts = [
        "Tents for two people, light and waterproof.",
        "Family tents sleep four to six people.",
        "Sleeping bags for cold nights, rated to minus ten.",
        "Waterproof jackets and trousers for hikers.",
        "Two-person tents: the Trail 2 and the Ridge 2.",
    ]
    for n, text in enumerate(texts):
        pages.add(f"/p{n}", f"Page {n}", text)
    chunks = {c.pk: c.length for c in Chunk.objects.all()}
    average = sum(chunks.values()) / len(chunks)
    query = ["tent", "2", "peopl", "waterproof"]
    expected = {}
    for term in query:
        postings = list(Posting.objects.filter(term=term))
        idf = math.log(1 + (len(chunks) - len(postings) + 0.5) / (len(postings) + 0.5))
        for p in postings:
            tf, norm = p.weight, 1.2 * (0.25 + 0.75 * chunks[p.chunk_id] / average)
            expected[p.chunk_id] = expected.get(p.chunk_id, 0) + idf * tf * 2.2 / (tf + norm)

    hits = search("tents for two people, waterproof")

    assert [h.chunk_id for h in hits] == sorted(expected, key=lambda c: (-round(expected[c], 6), c))
    assert [h.score for h in hits] == [round(expected[h.chunk_id], 6) for h in hits]


def test_a_snippet_from_a_list_item_drops_its_bullet(pages):
    pages.add("/returns", "Returns", "Not returnable:\n\n- Gift cards and stove fuel.\n- Worn socks.")

    assert search("gift cards")[0].snippet == "Gift cards and stove fuel."


def test_a_common_words_best_postings_are_read_first_and_the_winners_scored_exactly(pages, monkeypatch):
    # Only two postings a term are read: "tent" is on every page, so the candidates are
    # the two chunks where it weighs most, plus "waterproof"'s; the winner is still the
    # page that has both, scored over all its postings.
    monkeypatch.setattr(search_module, "TOP_POSTINGS", 2)
    pages.add("/a", "Tents", "Tent tent tent, the tent of tents.")
    pages.add("/b", "Tents", "Tent tent tent tent, all tents.")
    for n in range(5):
        pages.add(f"/c{n}", f"Page {n}", f"A tent, item {n}.")
    pages.add("/waterproof", "Shelter", "A waterproof tent for storms.")

    hits = search("waterproof tent")

    assert hits[0].url == "https://shop.example/waterproof"
    assert hits[0].coverage == 1.0
