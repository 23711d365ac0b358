"""Optional semantic search: embeddings from the OpenAI-compatible server, stored with the
chunks, fused with the lexical rank; off by default, and never a reason for a turn to fail.

The fake server embeds a text as a bag of its words, with a few synonyms on one
dimension ("reimbursement" is "refund"), so a question can be near a page that never
uses its words.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from knowledge import semantic
from knowledge.index import remove_documents
from knowledge.models import Chunk, Document, Source, SourceKind, SyncStatus
from knowledge.search import retrieve, search
from knowledge.semantic import SemanticError, embed_pending, embed_query, fuse, nearest
from knowledge.sync import files_store
from tests.fake_openai import EMBEDDING_DIMENSIONS, fake_embedding

RETURNS = "# Refunds\n\nWe refund every item within 30 days of delivery."
SHIPPING = "We ship to Canada and the US within five days."
TENTS = "The Trail 2 tent sleeps two people."


@pytest.fixture(autouse=True)
def fresh_vector_cache():
    """Test databases roll back, so two tests can reach the same Corpus.version with other
    chunks; in production the version only grows."""
    semantic.vector_cache = semantic.VectorCache()


@pytest.fixture
def embeddings(fake_llm, settings):
    """Semantic search on, through the real SDK, against the fake server's /embeddings."""
    settings.CHATBOT_EMBEDDING_MODEL = "fake-embedding"
    settings.CHATBOT_EMBEDDING_MIN_SIMILARITY = 0.3
    return fake_llm


@pytest.fixture
def shop(pages):
    pages.add("/returns", "Returns", RETURNS)
    pages.add("/shipping", "Shipping", SHIPPING)
    pages.add("/tents", "Tents", TENTS)
    return pages


def ask(text: str):
    return asyncio.run(embed_query(text))


def urls(passages) -> list[str]:
    return [hit.url for hit in passages]


def test_with_no_embedding_model_nothing_is_sent_to_embeddings(fake_llm, settings, shop):
    settings.CHATBOT_EMBEDDING_MODEL = ""

    assert embed_pending() == 0
    assert ask("Can I get a reimbursement?") is None
    assert retrieve("Do you ship to Canada?").answerable
    assert fake_llm.embedding_requests == []
    assert not Chunk.objects.filter(embedding__isnull=False).exists()


def test_lexical_search_does_not_even_import_semantic_search():
    code = (
        "import sys, django; django.setup(); import knowledge.search, conversations.chat; "
        "print(sorted({'numpy', 'knowledge.semantic'} & set(sys.modules)))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "chatbot.settings"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "[]"


def test_embed_pending_fills_in_every_missing_embedding_in_batches(embeddings, shop):
    shop.add("/faq", "FAQ", "# Payment\n\nWe take cards.\n\n# Warranty\n\nTwo years on everything.")
    assert Chunk.objects.count() == 5

    assert embed_pending(batch_size=2) == 5

    assert [len(request["input"]) for request in embeddings.embedding_requests] == [2, 2, 1]
    assert {request["model"] for request in embeddings.embedding_requests} == {"fake-embedding"}
    for chunk in Chunk.objects.all():
        vector = np.frombuffer(chunk.embedding, dtype="<f4")
        assert vector.size == EMBEDDING_DIMENSIONS
        assert np.linalg.norm(vector) == pytest.approx(1.0)


def test_a_chunk_is_embedded_with_its_page_title_and_headings(embeddings, pages):
    pages.add("/faq", "FAQ", "# Warranty\n\nTwo years on everything.")

    embed_pending()

    assert embeddings.embedding_requests[0]["input"] == ["FAQ > Warranty Two years on everything."]


def test_embed_pending_embeds_only_what_has_no_embedding(embeddings, shop):
    embed_pending()
    shop.add("/faq", "FAQ", "We take cards.")
    embeddings.reset()

    assert embed_pending() == 1
    assert embeddings.embedding_requests[0]["input"] == ["FAQ We take cards."]
    assert embed_pending() == 0
    assert len(embeddings.embedding_requests) == 1


def test_kb_embed_fills_in_missing_embeddings(embeddings, shop, capsys):
    call_command("kb_embed", "--batch-size", "2")

    assert capsys.readouterr().out == "Embedded 3 chunks.\n"
    assert len(embeddings.embedding_requests) == 2


def test_kb_embed_reset_embeds_everything_again(embeddings, shop, capsys):
    embed_pending()

    call_command("kb_embed", "--reset")

    assert capsys.readouterr().out == "Forgot 3 embeddings.\nEmbedded 3 chunks.\n"


def test_kb_embed_says_when_semantic_search_is_off(settings, db):
    settings.CHATBOT_EMBEDDING_MODEL = ""

    with pytest.raises(CommandError, match="CHATBOT_EMBEDDING_MODEL is not set"):
        call_command("kb_embed")


def test_a_question_in_other_words_is_found_only_with_semantic_search(embeddings, shop):
    embed_pending()
    question = "Can I get a reimbursement?"  # the returns page says "refund"

    assert not retrieve(question).answerable
    retrieval = retrieve(question, query_vector=ask(question))

    assert urls(retrieval.passages) == ["https://shop.example/returns"]
    assert retrieval.passages[0].similarity >= 0.3


def test_a_question_near_no_page_stays_unanswered_with_semantic_search(embeddings, shop):
    embed_pending()
    question = "Do you sell kayaks?"

    assert not retrieve(question, query_vector=ask(question)).answerable


def test_a_page_found_both_ways_outranks_one_found_one_way(embeddings, pages):
    pages.add(
        "/privacy",
        "Privacy policy",
        "We never sell your data, share it with partners or keep it longer than needed. "
        "This policy is reviewed yearly.",
    )
    pages.add("/refunds", "Refund policy", "We refund every item within 30 days.")
    pages.add("/returns", "Returns", "Refunds: a refund takes five days.")
    embed_pending()
    question = "reimbursement policy"  # "reimbursement" is on no page; by meaning it is a refund

    lexical = search(question)
    fused = search(question, query_vector=ask(question))

    assert urls(lexical) == ["https://shop.example/privacy", "https://shop.example/refunds"]
    assert urls(fused) == [
        "https://shop.example/refunds",  # second lexically, first by meaning: 1/62 + 1/61
        "https://shop.example/privacy",  # first lexically, third by meaning: 1/61 + 1/63
        "https://shop.example/returns",  # by meaning only, second: 1/62
    ]
    assert [hit.score for hit in fused] == sorted((hit.score for hit in fused), reverse=True)


def test_fuse_orders_by_reciprocal_rank():
    lexical = [SimpleNamespace(chunk_id=chunk_id) for chunk_id in (1, 2, 3)]
    nearest_pairs = [(2, 0.9), (4, 0.8)]

    # 2: 1/62 + 1/61; 1: 1/61; 4: 1/62; 3: 1/63
    assert fuse(lexical, nearest_pairs, limit=10) == [2, 1, 4, 3]
    assert fuse(lexical, nearest_pairs, limit=2) == [2, 1]


def test_fuse_breaks_a_tie_by_the_lexical_order():
    lexical = [SimpleNamespace(chunk_id=chunk_id) for chunk_id in (1, 2)]

    assert fuse(lexical, [(2, 0.9), (1, 0.8)], limit=10) == [1, 2]


def test_nearest_follows_documents_added_and_removed(embeddings, shop, django_assert_num_queries):
    embed_pending()
    vector = ask("shelter for two")
    (tents,) = Chunk.objects.filter(document__url="https://shop.example/tents")
    assert nearest(vector, 1)[0][0] == tents.pk
    with django_assert_num_queries(1):  # nothing changed: the version, and no reload
        nearest(vector, 1)

    shop.add("/shelters", "Shelters", "A shelter for two, or a shelter for four.")
    embed_pending()
    (shelters,) = Chunk.objects.filter(document__url="https://shop.example/shelters")
    assert nearest(vector, 1)[0][0] == shelters.pk

    remove_documents(Document.objects.filter(url="https://shop.example/shelters"))
    assert nearest(vector, 1)[0][0] == tents.pk
    assert shelters.pk not in dict(nearest(vector, 10))


def test_when_embeddings_are_down_the_question_is_answered_lexically(embeddings, shop):
    embed_pending()
    embeddings.reset(embedding_status=503)

    with pytest.raises(SemanticError, match="HTTP 503"):
        ask("Do you ship to Canada?")
    assert urls(retrieve("Do you ship to Canada?").passages) == ["https://shop.example/shipping"]


def test_an_unreachable_embeddings_server_is_a_semantic_error(embeddings, settings):
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # the discard port: nothing listens

    with pytest.raises(SemanticError, match="could not be reached"):
        ask("anything")


def test_a_failed_request_writes_nothing_and_the_next_run_catches_up(embeddings, shop):
    embeddings.reset(embedding_status=500)

    with pytest.raises(SemanticError, match="HTTP 500"):
        embed_pending()
    assert not Chunk.objects.filter(embedding__isnull=False).exists()

    embeddings.reset()
    assert embed_pending() == 3


def test_a_failed_batch_keeps_the_batches_before_it_and_search_sees_them(embeddings, shop):
    embeddings.reset(embedding_status=500, embedding_failures_after=1)
    question = "Can I get a reimbursement?"
    vector = np.asarray(fake_embedding(question), dtype="<f4")  # the fake answers one request well: the run's
    retrieve(question, query_vector=vector)  # the cache is built before the run

    with pytest.raises(SemanticError):
        embed_pending(batch_size=2)  # returns and shipping, then a failure for tents

    assert Chunk.objects.filter(embedding__isnull=True).count() == 1
    assert urls(retrieve(question, query_vector=vector).passages) == ["https://shop.example/returns"]


def test_embeddings_of_another_model_leave_the_question_to_lexical_search(embeddings, shop):
    # Stored with another model (another dimension): searching still answers, lexically.
    embed_pending()
    question = "Do you ship to Canada?"
    other_model = np.ones(8, dtype="<f4") / np.sqrt(8)

    with pytest.raises(SemanticError, match="kb_embed --reset"):
        nearest(other_model, 5)
    assert urls(retrieve(question, query_vector=other_model).passages) == ["https://shop.example/shipping"]


def test_a_chat_turn_answers_a_question_in_other_words_from_the_page(api, embeddings, shop):
    embed_pending()
    embeddings.reset(reply="Yes, within 30 days [1].")

    response = api.post("/api/chat", {"query": "Can I get a reimbursement?"}, format="json")

    assert response.status_code == 200
    assert [c["url"] for c in response.json()["citations"]] == ["https://shop.example/returns"]
    assert embeddings.embedding_requests[-1]["input"] == ["Can I get a reimbursement?"]


def test_a_chat_turn_is_answered_lexically_when_embeddings_are_down(api, embeddings, shop):
    embed_pending()
    embeddings.reset(reply="Yes [1].", embedding_status=503)

    response = api.post("/api/chat", {"query": "Do you ship to Canada?"}, format="json")

    assert response.status_code == 200
    assert [c["url"] for c in response.json()["citations"]] == ["https://shop.example/shipping"]


def test_a_sync_embeds_what_it_indexed(embeddings, db):
    source = Source.objects.create(kind=SourceKind.FILES, location="Shop pages")

    files_store(source=source, files=[("returns.md", RETURNS.encode())], complete=False)

    assert not Chunk.objects.filter(embedding__isnull=True).exists()


def test_a_sync_whose_embeddings_fail_still_succeeds_and_says_so(embeddings, db):
    embeddings.reset(embedding_status=503)
    source = Source.objects.create(kind=SourceKind.FILES, location="Shop pages")

    run = files_store(source=source, files=[("returns.md", RETURNS.encode())], complete=False)

    assert run.status == SyncStatus.SUCCEEDED
    assert run.errors[0]["error"].startswith("embeddings: ")
    assert urls(retrieve("refund").passages) == [None]  # an uploaded file: searchable lexically already
