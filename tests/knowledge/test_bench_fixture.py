"""The retrieval benchmark's fixture holds what its figures claim: real pages, enough
questions, enough of them unanswerable, and gold pages that really answer.

The benchmark itself (bench/run --only retrieval) is not part of the suite; this only
guards the fixture it reads (bench/fixtures/), through the one module that reads it.
"""

from __future__ import annotations

from functools import cache

from bench import corpus


@cache
def pages() -> dict[str, bytes]:
    return corpus.pages()


def test_the_corpus_has_at_least_300_real_pages():
    assert len(pages()) >= 300
    assert all(body.lstrip().startswith(b"<!DOCTYPE html>") for body in pages().values())


def test_there_are_at_least_100_questions_and_15_unanswerable():
    asked = corpus.questions()
    assert len(asked) >= 100
    assert sum(not q.answerable for q in asked) >= 15


def test_question_ids_and_texts_are_unique():
    asked = corpus.questions()
    assert len({q.id for q in asked}) == len(asked)
    assert len({q.text.lower() for q in asked}) == len(asked)


def test_every_gold_page_exists_and_holds_the_words_that_answer():
    gold = {path for q in corpus.questions() for path in q.gold}
    texts = {path: corpus.page_text(body) for path, body in pages().items() if path in gold}
    wrong = [
        (q.id, path, words)
        for q in corpus.questions()
        for path, words in q.gold.items()
        if path not in texts or not corpus.contains(texts[path], words)
    ]
    assert wrong == []
