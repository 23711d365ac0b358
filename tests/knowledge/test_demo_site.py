"""The demo site (/widget/demo/) and kb_demo, which puts it in the knowledge base on the
first ``./dev.sh serve``, so that the widget answers a new user from the site's pages."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from knowledge.index import store_document
from knowledge.models import Chunk, Document, Source, SourceKind, SourceState, SyncRun, SyncStatus
from knowledge.search import retrieve, search
from knowledge.sync import run_counts, source_sync

pytestmark = pytest.mark.django_db

PAGES = [
    "/widget/demo/",
    "/widget/demo/tents/",
    "/widget/demo/sleeping-bags/",
    "/widget/demo/packs-and-clothing/",
    "/widget/demo/shipping/",
    "/widget/demo/returns/",
    "/widget/demo/warranty/",
    "/widget/demo/faq/",
    "/widget/demo/contact/",
    "/widget/demo/about/",
]
SERVER = "http://127.0.0.1:8000"
WIDGET_TAG = re.compile(r'<script src="http://testserver/static/widget/widget\.js" data-api-base="http://testserver"')
# What every page has around its own text, and the knowledge base must not repeat.
FURNITURE = [
    "We use cookies to keep your basket",  # the cookie notice
    "The chat button in the corner is the widget",  # the demo's ribbon
    "Packs & clothing",  # the main navigation
    "a sample site for the chat widget",  # the footer
]


def kb_demo(*args: str) -> str:
    out = StringIO()
    call_command("kb_demo", *args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("path", PAGES)
def test_every_page_of_the_demo_site_embeds_the_widget_with_its_one_tag(client, path):
    response = client.get(path)

    assert response.status_code == 200
    html = response.content.decode()
    assert len(WIDGET_TAG.findall(html)) == 1
    assert 'aria-label="Cookie notice"' in html and "<nav" in html and "<footer" in html


def test_the_help_centre_frames_chat_instead_of_showing_the_widget(client):
    html = client.get("/widget/demo/chatbot/").content.decode()

    assert "static/widget/frame.js" in html
    assert not WIDGET_TAG.search(html)


def test_a_page_the_demo_site_does_not_have_is_not_found(client):
    assert client.get("/widget/demo/snowshoes/").status_code == 404
    assert client.get("/widget/demo/home/").status_code == 404  # the home page has one address


def test_the_sitemap_lists_every_page(client):
    response = client.get("/widget/demo/sitemap.xml")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml"
    assert re.findall(r"<loc>(.*?)</loc>", response.content.decode()) == [f"http://testserver{p}" for p in PAGES]


def test_kb_demo_stores_each_page_under_its_address_on_the_development_server():
    assert kb_demo() == "Added the demo site to the knowledge base: 10 pages from http://127.0.0.1:8000/widget/demo/.\n"

    source = Source.objects.get()
    assert (source.kind, source.location, source.state) == (
        SourceKind.SITEMAP,
        "http://127.0.0.1:8000/widget/demo/sitemap.xml",
        SourceState.READY,
    )
    assert sorted(Document.objects.values_list("url", flat=True)) == sorted(SERVER + path for path in PAGES)
    assert Document.objects.get(url=f"{SERVER}/widget/demo/shipping/").title == ("Shipping and delivery")
    run = SyncRun.objects.get()
    assert (run.status, run.added, run.failed) == (SyncStatus.SUCCEEDED, 10, 0)


def test_kb_demo_links_the_pages_where_the_server_was_told_to_run():
    kb_demo("--base-url", "http://localhost:8123/")

    assert Document.objects.filter(url="http://localhost:8123/widget/demo/tents/").exists()


def test_kb_demo_keeps_the_main_text_of_each_page_and_leaves_out_navigation_footer_and_cookie_notice():
    kb_demo()

    texts = list(Document.objects.values_list("text", flat=True))
    assert all(text.strip() for text in texts)
    assert [phrase for phrase in FURNITURE if any(phrase in text for text in texts)] == []
    tents = Document.objects.get(url=f"{SERVER}/widget/demo/tents/").text
    assert "## Which tent should I choose?" in tents
    assert "| Ridgeline 2P | 2 | 3 | 1.6 kg |" in tents  # the comparison table, as a table


def test_a_second_run_adds_nothing():
    kb_demo()
    chunks = list(Chunk.objects.values_list("pk", flat=True))

    assert kb_demo() == "The knowledge base has sources already; the demo site is not added.\n"

    assert Source.objects.count() == 1 and SyncRun.objects.count() == 1
    assert list(Chunk.objects.values_list("pk", flat=True)) == chunks


@pytest.mark.django_db(transaction=True)
def test_a_re_sync_from_the_running_server_finds_every_page_unchanged(live_server, settings):
    """The pages kb_demo rendered in-process are the ones the crawler fetches from the
    sitemap, so ``kb_sync`` on the demo rewrites nothing."""
    settings.CHATBOT_KB_ALLOW_PRIVATE_HOSTS = True  # the development server is on loopback
    kb_demo("--base-url", live_server.url)

    run = source_sync(source=Source.objects.get())

    assert run.status == SyncStatus.SUCCEEDED
    assert run_counts(run) == "0 added, 0 updated, 10 unchanged, 0 removed, 0 failed"


def test_kb_demo_leaves_a_knowledge_base_that_has_a_source_of_its_own_alone():
    source = Source.objects.create(kind=SourceKind.SITEMAP, location="https://shop.example/sitemap.xml")
    store_document(source=source, url="https://shop.example/", title="Shop", markdown="Our own pages.")

    kb_demo()

    assert list(Source.objects.all()) == [source]


def test_an_http_base_url_is_required():
    with pytest.raises(CommandError, match="--base-url must be an http"):
        kb_demo("--base-url", "127.0.0.1:8000")


def test_the_tent_question_finds_the_tents_page_and_its_advice_for_two_first():
    kb_demo()

    best = search("Which tent is best for two people?")[0]

    assert best.url == f"{SERVER}/widget/demo/tents/"
    assert best.heading == "Which tent should I choose? > For two people"
    assert best.title == "Tents"
    assert "The best tent for two people is the Ridgeline 2P ($329)" in best.text


@pytest.mark.parametrize(
    ("question", "path"),
    [
        ("do you ship to Canada?", "/widget/demo/shipping/"),
        ("Do you ship to Australia?", "/widget/demo/shipping/"),
        ("What are the store's opening hours on Sunday?", "/widget/demo/contact/"),
        ("What does the warranty cover?", "/widget/demo/warranty/"),
        ("Can I pay with PayPal?", "/widget/demo/faq/"),
        ("How warm is the Aurora 20?", "/widget/demo/sleeping-bags/"),
    ],
)
def test_a_visitors_question_finds_the_page_that_answers_it_first(question, path):
    kb_demo()

    assert search(question)[0].url == SERVER + path


def test_the_refund_policy_for_damaged_items_is_found_on_the_returns_page():
    kb_demo()

    question = "What is your refund policy for damaged items?"

    assert search(question)[0].url == f"{SERVER}/widget/demo/returns/"
    passages = retrieve(question).passages
    assert {p.url for p in passages[:2]} == {f"{SERVER}/widget/demo/returns/"}
    assert "Damaged, faulty or wrong items" in {p.heading for p in passages[:2]}


def test_a_follow_up_question_still_finds_the_tent():
    kb_demo()

    best = search("how much is it?", previous="Which tent is best for two people?")[0]

    assert best.url == f"{SERVER}/widget/demo/tents/"
    assert "$329" in best.text


@pytest.fixture
def offline(settings):
    """The built-in offline responder answers, as on a fresh ``./dev.sh serve`` with no key."""
    settings.OPENAI_API_KEY = ""
    settings.CHATBOT_MODEL_BACKEND = "conversations.llm.OfflineChatModel"


def test_with_no_model_the_chat_answers_the_tent_question_from_the_tents_page_and_cites_it(api, offline):
    kb_demo()

    body = api.post("/api/chat", {"query": "Which tent is best for two people?"}, format="json").json()

    assert body["answer_status"] == "answered"
    assert "The best tent for two people is the Ridgeline 2P ($329)" in body["answer"]
    assert "[1]" in body["answer"]
    first = body["citations"][0]
    assert (first["id"], first["url"], first["title"], first["heading"]) == (
        1,
        f"{SERVER}/widget/demo/tents/",
        "Tents",
        "Which tent should I choose? > For two people",
    )
    assert {citation["url"] for citation in body["citations"]} == {f"{SERVER}/widget/demo/tents/"}


def test_with_no_model_the_follow_up_how_much_is_it_still_answers_from_the_tents_page(api, offline):
    kb_demo()
    first = api.post("/api/chat", {"query": "Which tent is best for two people?"}, format="json").json()

    body = api.post("/api/chat", {"query": "and how much is it?", "session_id": first["session_id"]}, format="json")

    assert "$329" in body.json()["answer"]
    assert body.json()["citations"][0]["url"] == f"{SERVER}/widget/demo/tents/"


def test_with_no_model_a_question_the_site_does_not_answer_gets_no_answer(api, offline):
    kb_demo()

    body = api.post("/api/chat", {"query": "Do you sell kayaks?"}, format="json").json()

    assert (body["answer_status"], body["citations"]) == ("no_answer", [])
