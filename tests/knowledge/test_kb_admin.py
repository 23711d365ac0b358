"""The knowledge base in the admin: staff add, upload, sync and delete sources, read each
source's last run and a document's chunks; nobody else gets in."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from knowledge.index import store_document
from knowledge.models import Chunk, Document, Posting, Source, SourceKind, SourceState, SyncRun
from knowledge.search import search
from knowledge.sync import source_for_location, source_sync
from tests.knowledge.site import pdf_with_text

pytestmark = pytest.mark.django_db

XSS = '<img src=x onerror="alert(1)">'


@pytest.fixture
def staff(django_user_model):
    """A superuser, who may do everything in the knowledge base's admin; signed in without
    a password (hashing one costs more than most of these tests)."""
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("editor", "editor@shop.example", password=None))
    return client


@pytest.fixture
def outsider(django_user_model):
    """A signed-in customer, not staff."""
    client = Client()
    client.force_login(django_user_model.objects.create_user("member", password=None))
    return client


@pytest.fixture
def indexed(site):
    """The little shop of tests/knowledge/site.py, synced once."""
    source = source_for_location(site.shop())
    source_sync(source=source)
    return source


def row_of(response, text: str) -> str:
    return next(r for r in re.findall(r"<tr.*?</tr>", response.content.decode(), re.S) if text in r)


# --- Who may come in -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/admin/knowledge/source/",
        "/admin/knowledge/source/add/",
        "/admin/knowledge/source/upload/",
        "/admin/knowledge/document/",
    ],
)
def test_anonymous_and_non_staff_visitors_are_sent_to_the_login_page(path, outsider):
    for client in [Client(), outsider]:
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


def test_nobody_but_staff_can_sync_or_see_a_document(outsider):
    source = Source.objects.create(kind=SourceKind.URL, location="https://shop.example/tents")
    store_document(source=source, url="https://shop.example/tents", title="Tents", markdown="Trail 2 tent.")
    document = Document.objects.get()

    for client in [Client(), outsider]:
        assert client.post(f"/admin/knowledge/source/{source.pk}/sync/").status_code == 302
        assert client.get(f"/admin/knowledge/document/{document.pk}/change/").status_code == 302
        assert client.post(f"/admin/knowledge/source/{source.pk}/delete/", {"post": "yes"}).status_code == 302
    assert SyncRun.objects.count() == 0
    assert Source.objects.count() == 1


def test_staff_without_knowledge_base_permissions_are_refused(django_user_model):
    source = Source.objects.create(kind=SourceKind.URL, location="https://shop.example/tents")
    support = Client()
    support.force_login(django_user_model.objects.create_user("support", password=None, is_staff=True))

    assert support.get("/admin/knowledge/source/").status_code == 403
    assert support.post(f"/admin/knowledge/source/{source.pk}/sync/").status_code == 403
    assert support.get("/admin/knowledge/source/upload/").status_code == 403
    assert SyncRun.objects.count() == 0


# --- Sources -------------------------------------------------------------------------


def test_staff_add_a_sitemap_by_url_and_it_is_synced_at_once(staff, site):
    site.shop()

    response = staff.post(
        "/admin/knowledge/source/add/", {"kind": "sitemap", "location": site.url("/sitemap.xml")}, follow=True
    )

    assert response.status_code == 200
    source = Source.objects.get()
    assert (source.kind, source.state) == (SourceKind.SITEMAP, SourceState.READY)
    assert "sync succeeded (3 added, 0 updated, 0 unchanged, 0 removed, 1 failed)" in response.content.decode()
    assert {hit.url for hit in search("ship to Norway")} == {site.url("/shipping")}


def test_only_http_and_https_urls_can_be_added(staff):
    response = staff.post("/admin/knowledge/source/add/", {"kind": "url", "location": "file:///etc/passwd"})

    assert response.status_code == 200
    assert Source.objects.count() == 0


def test_the_list_shows_each_sources_state_counts_last_sync_and_last_errors(staff, indexed, site):
    response = staff.get("/admin/knowledge/source/")

    row = row_of(response, site.url("/sitemap.xml"))
    assert re.search(r'class="field-state[^"]*">Ready<', row)
    assert re.search(r'class="field-documents[^"]*"><a href="[^"]+">3</a><', row)
    assert re.search(rf'class="field-chunks[^"]*">{Chunk.objects.count()}<', row)
    synced = re.search(r'class="field-last_synced_at[^"]*">([^<]*)<', row)[1]
    assert synced not in ("", "-")
    assert "disallowed by robots.txt" in row
    assert "another site" in row


def test_errors_from_a_crawled_site_are_shown_as_text(staff, site):
    site.sitemap("/sitemap.xml", [f"http://elsewhere.example/{XSS}"])
    source = source_for_location(site.url("/sitemap.xml"))
    source_sync(source=source)

    for path in ["/admin/knowledge/source/", f"/admin/knowledge/source/{source.pk}/change/"]:
        html = staff.get(path).content.decode()
        assert "on another site, not fetched" in html
        assert XSS not in html
        assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html


def test_the_list_costs_the_same_few_queries_however_many_sources(staff, django_assert_max_num_queries):
    for number in range(20):
        source = Source.objects.create(kind=SourceKind.URL, location=f"https://shop.example/p{number}")
        SyncRun.objects.create(source=source, errors=[{"url": source.location, "error": "answered 500"}])

    with django_assert_max_num_queries(12):
        assert staff.get("/admin/knowledge/source/").status_code == 200


def test_the_source_page_shows_the_last_runs_report(staff, indexed, site):
    response = staff.get(f"/admin/knowledge/source/{indexed.pk}/change/")

    html = response.content.decode()
    assert "Last run" in html
    for label, value in [("Status", "Succeeded"), ("Added", "3"), ("Failed", "1"), ("Requests", "8")]:
        assert re.search(rf"<th scope=\"row\">{label}</th><td>{value}</td>", html), label
    assert site.url("/partner") in html
    assert 'value="Save"' not in html


def test_sync_now_on_the_source_page_runs_a_sync(staff, indexed, site):
    site.html("/tents", "Trail 2 tent", "Now in a storm-proof green edition.", etag='"t2"')

    response = staff.post(f"/admin/knowledge/source/{indexed.pk}/sync/", follow=True)

    assert "sync succeeded (0 added, 1 updated, 2 unchanged, 0 removed, 1 failed)" in response.content.decode()
    assert SyncRun.objects.filter(source=indexed).count() == 2
    assert {hit.url for hit in search("storm-proof green")} == {site.url("/tents")}


def test_the_sync_now_action_syncs_the_selected_sources(staff, indexed):
    response = staff.post(
        "/admin/knowledge/source/", {"action": "sync_now", "_selected_action": [indexed.pk]}, follow=True
    )

    assert "sync succeeded (0 added, 0 updated, 3 unchanged, 0 removed, 1 failed)" in response.content.decode()


def test_a_sync_that_fails_shows_its_error(staff, indexed, site):
    site.status("/sitemap.xml", 500)

    response = staff.post(f"/admin/knowledge/source/{indexed.pk}/sync/", follow=True)

    assert "sync failed" in response.content.decode()
    indexed.refresh_from_db()
    assert indexed.state == SourceState.FAILED
    assert "answered 500" in indexed.last_error


def test_deleting_a_source_asks_first_counting_what_goes_with_it(staff, indexed, django_assert_max_num_queries):
    with django_assert_max_num_queries(10):
        response = staff.get(f"/admin/knowledge/source/{indexed.pk}/delete/")

    html = response.content.decode()
    assert "Documents: 3" in html and f"Chunks: {Chunk.objects.count()}" in html
    assert Source.objects.count() == 1


def test_deleting_a_source_removes_its_content_from_search_at_once(staff, indexed):
    response = staff.post(f"/admin/knowledge/source/{indexed.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert search("ship to Norway") == []
    assert Document.objects.count() == Chunk.objects.count() == Posting.objects.count() == 0


def test_deleting_sources_from_the_list_removes_their_content_at_once(staff, indexed):
    staff.post(
        "/admin/knowledge/source/", {"action": "delete_selected", "_selected_action": [indexed.pk], "post": "yes"}
    )

    assert Source.objects.count() == 0
    assert search("ship to Norway") == []


# --- Uploads -------------------------------------------------------------------------


def test_staff_upload_html_markdown_text_and_pdf_files(staff):
    files = [
        SimpleUploadedFile("tents.html", b"<html><head><title>Tents</title></head><body><p>Trail 2 sleeps two.</p>"),
        SimpleUploadedFile("shipping.md", b"# Shipping\n\nWe ship to Norway."),
        SimpleUploadedFile("returns.txt", b"Returns are free."),
        SimpleUploadedFile("warranty.pdf", pdf_with_text("Warranty", ["Five year warranty on tents."])),
    ]

    response = staff.post("/admin/knowledge/source/upload/", {"label": "Help pages", "files": files}, follow=True)

    assert "Help pages: 4 added, 0 updated, 0 unchanged, 0 removed, 0 failed." in response.content.decode()
    source = Source.objects.get()
    assert (source.kind, source.location, source.state) == (SourceKind.FILES, "Help pages", SourceState.READY)
    assert {hit.title for hit in search("warranty")} == {"Warranty"}
    assert "Sync now" not in response.content.decode()


def test_the_upload_page_takes_several_files_at_once(staff):
    response = staff.get("/admin/knowledge/source/upload/")

    assert response.status_code == 200
    assert re.search(r'<input type="file" name="files" multiple', response.content.decode())
    assert 'href="/admin/knowledge/source/upload/"' in staff.get("/admin/knowledge/source/").content.decode()


def test_an_upload_over_the_size_limit_or_of_another_type_is_refused(staff, settings):
    settings.CHATBOT_KB_MAX_PAGE_BYTES = 1024
    for name, content in [("big.md", b"x" * 2000), ("logo.png", b"\x89PNG")]:
        response = staff.post(
            "/admin/knowledge/source/upload/", {"label": "Help", "files": [SimpleUploadedFile(name, content)]}
        )
        assert response.status_code == 200
        assert name in response.content.decode()
    assert Document.objects.count() == 0


# --- Documents and their chunks ------------------------------------------------------


def test_a_documents_page_previews_its_chunks_read_only_and_escaped(staff):
    source = Source.objects.create(kind=SourceKind.URL, location="https://shop.example/tents")
    markdown = f"# Tents {XSS}\n\nThe Trail 2 sleeps two.\n\n## Care\n\nDry it {XSS} before storing."
    store_document(source=source, url="https://shop.example/tents", title=f"Tents {XSS}", markdown=markdown)
    document = Document.objects.get()

    response = staff.get(f"/admin/knowledge/document/{document.pk}/change/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "The Trail 2 sleeps two." in html and "before storing." in html
    assert XSS not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert 'name="chunks-0-text"' not in html and 'value="Save"' not in html


def test_the_documents_list_shows_each_pages_link_and_chunk_count(staff, indexed, site):
    response = staff.get(f"/admin/knowledge/document/?source__id__exact={indexed.pk}")

    row = row_of(response, site.url("/shipping"))
    assert f'<a href="{site.url("/shipping")}" rel="noopener noreferrer">' in row
    assert re.search(r'class="field-chunk_count[^"]*">1<', row)


def test_deleting_documents_from_the_list_removes_them_from_search_at_once(staff, indexed, site):
    document = Document.objects.get(url=site.url("/shipping"))

    staff.post(
        "/admin/knowledge/document/", {"action": "delete_selected", "_selected_action": [document.pk], "post": "yes"}
    )

    assert search("ship to Norway") == []
    assert Document.objects.count() == 2


def test_deleting_a_document_removes_it_from_search_at_once(staff, indexed, site):
    document = Document.objects.get(url=site.url("/shipping"))

    staff.post(f"/admin/knowledge/document/{document.pk}/delete/", {"post": "yes"})

    assert search("ship to Norway") == []
    assert Document.objects.count() == 2
