"""The crawler's one HTTP seam: what it may fetch, how much, for how long, and how it asks."""

from __future__ import annotations

import gzip
import socket

import pytest

from knowledge.fetching import Fetcher, FetchError, FetchRefused, checked_address, same_site


def fetch(url: str, **conditional):
    with Fetcher() as fetcher:
        return fetcher.get(url, **conditional)


def test_it_fetches_a_page_with_its_validators_and_the_user_agent(site, settings):
    settings.CHATBOT_KB_USER_AGENT = "TestCrawler/1.0"
    site.page("/tents", "<p>Trail 2</p>", etag='"v1"', last_modified="Tue, 01 Dec 2026 10:00:00 GMT")

    response = fetch(site.url("/tents"))

    assert (response.status, response.body) == (200, b"<p>Trail 2</p>")
    assert response.content_type == "text/html; charset=utf-8"
    assert (response.etag, response.last_modified) == ('"v1"', "Tue, 01 Dec 2026 10:00:00 GMT")
    assert site.requested("/tents")[0].headers["user-agent"] == "TestCrawler/1.0"


def test_a_conditional_get_sends_the_validators_and_an_unchanged_page_answers_304(site):
    site.page("/tents", "<p>Trail 2</p>", etag='"v1"', last_modified="Tue, 01 Dec 2026 10:00:00 GMT")

    response = fetch(site.url("/tents"), etag='"v1"', last_modified="Tue, 01 Dec 2026 10:00:00 GMT")

    assert response.not_modified and response.body == b""
    sent = site.requested("/tents")[0].headers
    assert sent["if-none-match"] == '"v1"'
    assert sent["if-modified-since"] == "Tue, 01 Dec 2026 10:00:00 GMT"


def test_404_and_410_are_answers_not_errors_so_the_sync_can_remove_the_page(site):
    site.status("/old", 410)

    assert fetch(site.url("/old")).gone
    assert fetch(site.url("/never")).gone


# --- Private addresses ---------------------------------------------------------------


def test_a_loopback_address_is_refused_while_private_hosts_are_not_allowed(site, settings):
    settings.CHATBOT_KB_ALLOW_PRIVATE_HOSTS = False
    site.page("/", "<p>internal</p>")

    with pytest.raises(FetchRefused, match="private"):
        fetch(site.url("/"))
    assert site.requests == []  # refused before any connection


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "10.0.0.8", "192.168.1.1", "172.16.0.1", "169.254.169.254", "0.0.0.0"]  # noqa: S104
    + ["100.64.0.1", "224.0.0.1", "240.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "2130706433"],
)
def test_private_loopback_link_local_multicast_reserved_and_unspecified_addresses_are_refused(host, settings):
    settings.CHATBOT_KB_ALLOW_PRIVATE_HOSTS = False

    with pytest.raises(FetchRefused):
        checked_address(host, 80)


def test_a_name_with_one_public_and_one_private_address_is_refused(settings, monkeypatch):
    settings.CHATBOT_KB_ALLOW_PRIVATE_HOSTS = False
    answers = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 80)) for address in ["93.184.215.14", "10.1.2.3"]]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: answers)

    with pytest.raises(FetchRefused, match="10.1.2.3"):
        checked_address("mixed.example", 80)


def test_it_connects_to_the_address_it_checked_with_the_original_host_header(site, monkeypatch):
    """The name is resolved once; the connection goes to that address, so a second DNS
    answer (rebinding to an internal address) is never asked for, let alone used."""
    real_getaddrinfo = socket.getaddrinfo
    lookups = []

    def resolve(host, *args, **kwargs):
        lookups.append(host)
        return real_getaddrinfo("127.0.0.1" if host == "shop.example" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    port = site.base_url.rpartition(":")[2]
    site.page("/tents", "<p>Trail 2</p>")

    assert fetch(f"http://shop.example:{port}/tents").status == 200
    assert lookups.count("shop.example") == 1
    assert site.requested("/tents")[0].headers["host"] == f"shop.example:{port}"


def test_only_http_and_https_are_fetched():
    for url in ["file:///etc/passwd", "ftp://example.com/", "gopher://example.com/", "http:///nohost"]:
        with pytest.raises(FetchRefused):
            fetch(url)


# --- Redirects -----------------------------------------------------------------------


def test_a_redirect_within_the_site_is_followed(site):
    site.redirect("/tent", "/tents", status=301)
    site.page("/tents", "<p>Trail 2</p>")

    response = fetch(site.url("/tent"))

    assert (response.status, response.url, response.body) == (200, site.url("/tents"), b"<p>Trail 2</p>")


def test_a_redirect_to_another_host_is_refused(site):
    port = site.base_url.rpartition(":")[2]
    site.redirect("/away", f"http://localhost:{port}/tents")
    site.page("/tents", "<p>Trail 2</p>")

    with pytest.raises(FetchRefused, match="another site"):
        fetch(site.url("/away"))
    assert site.requested("/tents") == []


def test_every_redirect_hop_is_resolved_and_checked_again(site, monkeypatch):
    """Each hop goes through the same resolve-check-connect path as the first request, so
    a hop to a name that resolves to a forbidden address is refused like any request."""
    real_getaddrinfo = socket.getaddrinfo
    lookups = []

    def resolve(host, *args, **kwargs):
        lookups.append(host)
        return real_getaddrinfo("127.0.0.1" if host.endswith("shop.example") else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    port = site.base_url.rpartition(":")[2]
    site.redirect("/tent", f"http://www.shop.example:{port}/tents")
    site.page("/tents", "<p>Trail 2</p>")

    assert fetch(f"http://shop.example:{port}/tent").status == 200
    assert [host for host in lookups if host.endswith("shop.example")] == ["shop.example", "www.shop.example"]


def test_a_redirect_loop_stops(site):
    site.redirect("/a", "/b")
    site.redirect("/b", "/a")

    with pytest.raises(FetchError, match="redirects"):
        fetch(site.url("/a"))


def test_same_site_means_the_same_host_ignoring_www_and_the_default_port():
    assert same_site("http://shop.example/a", "https://www.shop.example:443/b")
    assert not same_site("http://shop.example/a", "http://other.example/a")
    assert not same_site("http://shop.example/a", "http://shop.example.evil.test/a")
    assert not same_site("http://127.0.0.1:8001/", "http://127.0.0.1:8002/")


# --- Size and time -------------------------------------------------------------------


def test_a_page_over_the_size_limit_is_not_read(site, settings):
    settings.CHATBOT_KB_MAX_PAGE_BYTES = 1024
    site.page("/big", b"x" * 5000)

    with pytest.raises(FetchError, match="CHATBOT_KB_MAX_PAGE_BYTES"):
        fetch(site.url("/big"))


def test_a_compressed_body_is_limited_by_its_inflated_size(site, settings):
    settings.CHATBOT_KB_MAX_PAGE_BYTES = 1024
    site.page("/bomb", gzip.compress(b"x" * 100_000), content_type="text/html")
    site.answers["/bomb"].headers["Content-Encoding"] = "gzip"

    with pytest.raises(FetchError, match="CHATBOT_KB_MAX_PAGE_BYTES"):
        fetch(site.url("/bomb"))


def test_a_server_that_does_not_answer_in_time_is_given_up(settings):
    settings.CHATBOT_KB_ALLOW_PRIVATE_HOSTS = True
    settings.CHATBOT_KB_FETCH_TIMEOUT = 0.3
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        with pytest.raises(FetchError, match="timed out"):
            fetch(f"http://127.0.0.1:{silent.getsockname()[1]}/")


def test_no_request_is_sent_once_the_runs_deadline_has_passed(site):
    site.page("/tents", "<p>Trail 2</p>")

    with Fetcher(deadline=0.0) as fetcher, pytest.raises(FetchError, match="CHATBOT_KB_CRAWL_SECONDS"):
        fetcher.get(site.url("/tents"))
    assert site.requests == []


def test_it_counts_every_request_it_sends_redirect_hops_included(site):
    site.redirect("/tent", "/tents")
    site.page("/tents", "<p>Trail 2</p>")

    with Fetcher() as fetcher:
        fetcher.get(site.url("/tent"))
        fetcher.get(site.url("/tents"))

    assert fetcher.requests == 3
