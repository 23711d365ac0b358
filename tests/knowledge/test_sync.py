"""Ingestion and re-sync: what a run adds, replaces, keeps and removes, and what it reports."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from knowledge.index import remove_sources
from knowledge.models import Chunk, Document, Posting, Source, SourceKind, SourceState, SyncRun, SyncStatus
from knowledge.search import search
from knowledge.sync import SyncError, source_for_location, source_sync
from knowledge.tasks import sync_source
from tests.knowledge.site import PRODUCT_PAGE, pdf_with_text

pytestmark = pytest.mark.django_db


def found(query: str) -> set[str]:
    """The pages (URL, or title for a file) a search for ``query`` finds."""
    return {hit.url or hit.title for hit in search(query, limit=10)}


def best(query: str) -> str | None:
    hits = search(query, limit=1)
    return (hits[0].url or hits[0].title) if hits else None


def shop(site, *, etags: bool = True) -> Source:
    return source_for_location(site.shop(etags=etags))


def chunk_rows():
    return list(Chunk.objects.order_by("pk").values_list("pk", "document_id", "text"))


# --- A first crawl -------------------------------------------------------------------


def test_a_sitemap_crawl_indexes_the_sites_pages_and_reports_what_it_did(site):
    source = shop(site)

    run = source_sync(source=source)

    assert source.kind == SourceKind.SITEMAP
    assert (run.status, run.added, run.updated, run.unchanged, run.removed) == (SyncStatus.SUCCEEDED, 3, 0, 0, 0)
    assert found("tent for two people") >= {site.url("/tents")}
    assert found("ship to Norway") >= {site.url("/shipping")}
    source.refresh_from_db()
    assert (source.state, source.last_error) == (SourceState.READY, "")
    assert source.last_synced_at is not None
    # robots.txt, the index, two sitemaps, three pages, the redirect (its target is never asked for)
    assert run.requests == 8


def test_the_crawl_obeys_robots_txt_and_refuses_a_redirect_to_another_host(site):
    run = source_sync(source=shop(site))

    assert found("secret margins kayaks") == set()
    assert site.requested("/private/margins") == []
    assert {"url": site.url("/private/margins"), "error": "disallowed by robots.txt"} in run.errors
    assert run.failed == 1
    refused = next(entry for entry in run.errors if entry["url"] == site.url("/partner"))
    assert "another site" in refused["error"]


def test_a_site_on_a_private_address_is_refused_while_the_setting_is_off(site, settings):
    source = shop(site)
    settings.CHATBOT_KB_ALLOW_PRIVATE_HOSTS = False

    run = source_sync(source=source)

    assert run.status == SyncStatus.FAILED
    assert "private" in run.errors[0]["error"]
    assert site.requests == []
    source.refresh_from_db()
    assert source.state == SourceState.FAILED
    assert "private" in source.last_error


def test_a_page_url_source_is_that_one_page(site):
    site.html("/tents", "Trail 2 tent", "The Trail 2 is our best tent for two people.")
    source = source_for_location(site.url("/tents"))

    run = source_sync(source=source)

    assert (source.kind, run.added) == (SourceKind.URL, 1)
    assert Document.objects.get().title == "Trail 2 tent"


# --- Re-sync -------------------------------------------------------------------------


def test_a_resync_of_an_unchanged_site_rewrites_nothing_and_its_pages_answer_304(site):
    source = shop(site)
    source_sync(source=source)
    chunks, postings = chunk_rows(), Posting.objects.count()
    site.forget_requests()

    run = source_sync(source=source)

    assert (run.added, run.updated, run.unchanged, run.removed) == (0, 0, 3, 0)
    assert chunk_rows() == chunks
    assert Posting.objects.count() == postings
    for path in ["/tents", "/stoves", "/shipping"]:
        assert site.statuses(path) == [304]


def test_without_validators_an_unchanged_page_is_recognised_by_its_text(site):
    source = shop(site, etags=False)
    source_sync(source=source)
    chunks = chunk_rows()

    run = source_sync(source=source)

    assert (run.added, run.updated, run.unchanged) == (0, 0, 3)
    assert chunk_rows() == chunks
    assert site.statuses("/tents") == [200, 200]


def test_a_changed_page_is_replaced(site):
    source = shop(site)
    source_sync(source=source)
    site.html("/tents", "Trail 2 tent", "The Trail 2 now comes in a storm-proof green edition.", etag='"t2"')

    run = source_sync(source=source)

    assert (run.updated, run.unchanged) == (1, 2)
    assert found("storm-proof green edition") == {site.url("/tents")}
    assert found("people") == set()
    assert not Chunk.objects.filter(text__contains="best tent").exists()
    assert Document.objects.get(url=site.url("/tents")).etag == '"t2"'


def test_a_page_gone_from_the_sitemap_leaves_search_at_once(site):
    source = shop(site)
    source_sync(source=source)
    site.sitemap("/sitemap-products.xml", ["/tents"])

    run = source_sync(source=source)

    assert run.removed == 1
    assert found("gas stove boils water") == set()
    assert not Document.objects.filter(url=site.url("/stoves")).exists()


@pytest.mark.parametrize("status", [404, 410])
def test_a_page_answering_404_or_410_leaves_search_at_once(site, status):
    source = shop(site)
    source_sync(source=source)
    site.status("/stoves", status)

    run = source_sync(source=source)

    assert (run.removed, run.failed) == (1, 1)  # the failure is the partner page's redirect
    assert found("gas stove boils water") == set()


def test_a_page_answering_500_keeps_its_previous_text(site):
    source = shop(site)
    source_sync(source=source)
    site.status("/stoves", 500)

    run = source_sync(source=source)

    assert {"url": site.url("/stoves"), "error": "answered 500"} in run.errors
    assert found("gas stove boils water") == {site.url("/stoves")}


def test_a_sitemap_that_is_down_fails_the_run_and_removes_nothing(site):
    source = shop(site)
    source_sync(source=source)
    site.status("/sitemap-help.xml.gz", 503)

    run = source_sync(source=source)

    assert run.status == SyncStatus.FAILED
    assert "503" in run.errors[0]["error"]
    assert found("ship to Norway") == {site.url("/shipping")}
    source.refresh_from_db()
    assert source.state == SourceState.FAILED


def test_a_run_stopped_by_the_time_limit_says_so_and_removes_nothing(site, settings):
    source = shop(site)
    source_sync(source=source)
    settings.CHATBOT_KB_CRAWL_SECONDS = 0.0

    run = source_sync(source=source)

    assert run.status == SyncStatus.FAILED
    assert Document.objects.count() == 3


def test_a_page_with_the_text_of_another_is_indexed_once(site):
    source = shop(site)
    site.sitemap("/sitemap-products.xml", ["/tents", "/tents-copy"])
    site.page("/tents-copy", site.answers["/tents"].body)

    run = source_sync(source=source)

    assert {"url": site.url("/tents-copy"), "error": "the same text as another page: indexed once"} in run.errors
    assert len([hit for hit in search("tent for two people") if "Trail" in hit.title]) == 1


# --- Runs that fail ------------------------------------------------------------------


def test_a_run_that_crashes_records_its_error_and_leaves_the_source_not_syncing(site, monkeypatch):
    source = shop(site)

    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("knowledge.sync.store_document", broken)
    with pytest.raises(RuntimeError):
        source_sync(source=source)

    run = SyncRun.objects.get()
    assert run.status == SyncStatus.FAILED and run.finished_at is not None
    assert run.errors[0]["error"] == "internal error: RuntimeError: disk full"
    assert run.requests > 0
    source.refresh_from_db()
    assert source.state == SourceState.FAILED
    assert source.last_error == "internal error: RuntimeError: disk full"


def test_a_source_being_synced_is_not_synced_twice_at_once(site):
    source = shop(site)
    Source.objects.filter(pk=source.pk).update(state=SourceState.SYNCING)
    SyncRun.objects.create(source=source)
    source.refresh_from_db()

    with pytest.raises(SyncError, match="being synced already"):
        source_sync(source=source)


def test_a_run_whose_process_died_is_taken_over_by_the_next(site, settings):
    settings.CHATBOT_KB_CRAWL_SECONDS = 60
    source = shop(site)
    Source.objects.filter(pk=source.pk).update(state=SourceState.SYNCING)
    dead = SyncRun.objects.create(source=source)
    SyncRun.objects.filter(pk=dead.pk).update(started_at=timezone.now() - timedelta(hours=1))
    source.refresh_from_db()

    run = source_sync(source=source)

    assert run.status == SyncStatus.SUCCEEDED
    dead.refresh_from_db()
    assert dead.status == SyncStatus.FAILED
    assert "abandoned" in dead.errors[0]["error"]


# --- Deleting, the task, the commands -------------------------------------------------


def test_deleting_a_source_removes_its_content_from_search_at_once(site):
    source = shop(site)
    source_sync(source=source)

    remove_sources(Source.objects.filter(pk=source.pk))

    assert found("tent for two people") == set()
    assert Chunk.objects.count() == Posting.objects.count() == 0


def test_the_sync_task_syncs_a_source_by_id(site):
    source = shop(site)

    result = sync_source.enqueue(source.pk)

    assert result.return_value == {"requests": 8, "added": 3, "updated": 0, "unchanged": 0, "removed": 0, "failed": 1}
    assert found("ship to Norway") == {site.url("/shipping")}


def test_kb_ingest_ingests_each_format_from_a_directory(tmp_path, capsys):
    docs = tmp_path / "docs"
    (docs / "help").mkdir(parents=True)
    (docs / "tents.html").write_bytes(PRODUCT_PAGE)
    (docs / "help" / "shipping.md").write_text("# Shipping\n\nWe ship to Norway within five working days.\n")
    (docs / "returns.txt").write_text("Returns are free within thirty days of delivery.\n")
    (docs / "warranty.pdf").write_bytes(pdf_with_text("Warranty terms", ["Every tent carries a five year warranty."]))
    (docs / "logo.png").write_bytes(b"\x89PNG")
    (docs / ".draft.md").write_text("# Draft\n\nNot for visitors.\n")

    call_command("kb_ingest", str(docs))

    assert "4 added, 0 updated, 0 unchanged, 0 removed, 0 failed" in capsys.readouterr().out
    assert best("quick to pitch") == "Trail 2 tent"
    assert best("ship to Norway") == "Shipping"
    assert best("returns free thirty days") == "Returns"
    assert best("five year warranty") == "Warranty terms"
    assert found("draft visitors") == set()
    assert set(Document.objects.values_list("key", "url")) == {
        ("tents.html", ""),
        ("help/shipping.md", ""),
        ("returns.txt", ""),
        ("warranty.pdf", ""),
    }


def test_kb_ingest_on_a_directory_again_is_its_resync(tmp_path, capsys):
    (tmp_path / "shipping.md").write_text("# Shipping\n\nWe ship to Norway.\n")
    (tmp_path / "returns.txt").write_text("Returns are free.\n")
    call_command("kb_ingest", str(tmp_path))
    (tmp_path / "returns.txt").unlink()
    (tmp_path / "shipping.md").write_text("# Shipping\n\nWe ship to Sweden too.\n")

    call_command("kb_ingest", str(tmp_path))

    assert "0 added, 1 updated, 0 unchanged, 1 removed, 0 failed" in capsys.readouterr().out
    assert found("Returns are free") == set()
    assert found("Sweden") == {"Shipping"}


def test_kb_ingest_takes_page_and_sitemap_urls_and_prints_each_runs_report(site, capsys):
    shop(site)
    site.html("/faq", "FAQ", "Ask us anything about tents.")

    with pytest.raises(CommandError, match="1 of 2 sources failed"):
        call_command("kb_ingest", site.url("/faq"), site.url("/sitemap-missing.xml"))

    out = capsys.readouterr().out
    assert f"{site.url('/faq')}: succeeded. 1 added" in out
    assert f"{site.url('/sitemap-missing.xml')}: failed." in out
    assert f"  {site.url('/sitemap-missing.xml')}: {site.url('/sitemap-missing.xml')} answered 404" in out
    assert set(Source.objects.values_list("kind", flat=True)) == {SourceKind.URL, SourceKind.SITEMAP}


def test_kb_sync_resyncs_every_fetched_source_or_one(site, capsys):
    source = shop(site)
    call_command("kb_ingest", site.url("/sitemap.xml"))
    Source.objects.create(kind=SourceKind.FILES, location="Uploads")
    capsys.readouterr()

    call_command("kb_sync")
    call_command("kb_sync", "--source", str(source.pk))

    out = capsys.readouterr().out
    assert out.count("succeeded. 0 added, 0 updated, 3 unchanged, 0 removed, 1 failed") == 2
    assert "Uploads" not in out
    with pytest.raises(CommandError, match="No source with id 999"):
        call_command("kb_sync", "--source", "999")
