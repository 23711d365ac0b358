"""Rate limits: per client IP and per session, shared by every process through Redis,
and failing open when Redis is down."""

from __future__ import annotations

import logging

import pytest
from django.test import RequestFactory

from conversations.models import Message, Session
from conversations.ratelimits import client_ip
from tests.http import post_json
from tests.servers import asgi_server

pytestmark = pytest.mark.django_db


def create_session(api, **extra):
    return api.post("/api/session/create", {}, format="json", **extra)


def assert_rate_limited(response):
    assert response.status_code == 429
    assert response.json()["success"] is False
    assert response.json()["error"]["code"] == "rate_limited"
    assert response.json()["error"]["retryable"] is True
    assert 1 <= int(response["Retry-After"]) <= 60


def test_chat_turns_are_limited_per_client_ip(api, fake_llm, settings):
    settings.CHATBOT_RATELIMIT_CHAT_IP = "3/m"

    statuses = [api.post("/api/chat", {"query": f"q{i}"}, format="json").status_code for i in range(3)]
    over = api.post("/api/chat", {"query": "one too many"}, format="json")

    assert statuses == [200, 200, 200]
    assert_rate_limited(over)
    assert len(fake_llm.requests) == 3  # the refused turn cost no model call
    assert Message.objects.count() == 6


def test_chat_turns_are_limited_per_session_whatever_the_ip(api, fake_llm, settings):
    settings.CHATBOT_RATELIMIT_CHAT_SESSION = "2/m"
    session_id = api.post("/api/chat", {"query": "first"}, format="json").json()["session_id"]

    def turn(ip):
        body = {"query": "again", "session_id": session_id}
        return api.post("/api/chat", body, format="json", REMOTE_ADDR=ip)

    assert turn("10.0.0.1").status_code == 200
    assert turn("10.0.0.2").status_code == 200
    assert_rate_limited(turn("10.0.0.3"))
    other = api.post("/api/chat", {"query": "a new session is its own budget"}, format="json", REMOTE_ADDR="10.0.0.4")
    assert other.status_code == 200


def test_session_creation_is_limited_per_ip(api, settings):
    settings.CHATBOT_RATELIMIT_SESSION_CREATE_IP = "2/m"

    assert [create_session(api).status_code for _ in range(2)] == [201, 201]
    assert_rate_limited(create_session(api))
    assert create_session(api, REMOTE_ADDR="10.9.9.9").status_code == 201
    assert Session.objects.count() == 3


def test_message_writes_are_limited_per_ip(api, settings):
    settings.CHATBOT_RATELIMIT_WRITE_IP = "2/m"
    session = Session.objects.create()
    url = f"/api/session/{session.public_id}/messages"

    statuses = [api.post(url, {"message": f"m{i}"}, format="json").status_code for i in range(2)]

    assert statuses == [201, 201]
    assert_rate_limited(api.post(url, {"message": "over"}, format="json"))
    assert Message.objects.count() == 2


def test_message_writes_are_limited_per_session_whatever_the_ip(api, settings):
    settings.CHATBOT_RATELIMIT_WRITE_SESSION = "2/m"
    session, other = Session.objects.create(), Session.objects.create()

    def write(target, ip):
        url = f"/api/session/{target.public_id}/messages"
        return api.post(url, {"message": "hello"}, format="json", REMOTE_ADDR=ip)

    assert [write(session, "10.0.0.1").status_code, write(session, "10.0.0.2").status_code] == [201, 201]
    assert_rate_limited(write(session, "10.0.0.3"))
    assert write(other, "10.0.0.3").status_code == 201  # another session is its own budget
    assert session.messages.count() == 2


def test_limits_can_be_switched_off(api, settings):
    settings.CHATBOT_RATELIMIT_ENABLE = False
    settings.CHATBOT_RATELIMIT_SESSION_CREATE_IP = "1/m"

    assert [create_session(api).status_code for _ in range(3)] == [201, 201, 201]


class TestClientAddress:
    def request(self, remote, forwarded=None):
        extra = {"REMOTE_ADDR": remote}
        if forwarded is not None:
            extra["HTTP_X_FORWARDED_FOR"] = forwarded
        return RequestFactory().get("/", **extra)

    def test_forwarded_for_is_ignored_unless_a_proxy_is_trusted(self, settings):
        settings.CHATBOT_PROXY_COUNT = 0

        assert client_ip(self.request("203.0.113.7", forwarded="1.2.3.4")) == "203.0.113.7"

    def test_with_one_trusted_proxy_the_address_it_saw_counts(self, settings):
        settings.CHATBOT_PROXY_COUNT = 1

        # The client wrote "1.2.3.4" itself; our proxy appended the address it saw.
        assert client_ip(self.request("10.0.0.2", forwarded="1.2.3.4, 198.51.100.9")) == "198.51.100.9"

    def test_with_two_trusted_proxies_the_outer_ones_address_counts(self, settings):
        settings.CHATBOT_PROXY_COUNT = 2

        assert client_ip(self.request("10.0.0.2", forwarded="1.2.3.4, 198.51.100.9, 10.0.0.1")) == "198.51.100.9"

    def test_ipv6_clients_count_per_64_block(self, settings):
        settings.CHATBOT_PROXY_COUNT = 0

        first = client_ip(self.request("2001:db8:1:2::1"))
        second = client_ip(self.request("2001:db8:1:2:ffff::9"))

        assert first == second == "2001:db8:1:2::"

    @pytest.mark.parametrize(
        ("written", "key"),
        [
            ("192.0.2.1", "192.0.2.1"),
            ("::ffff:192.0.2.1", "192.0.2.1"),  # IPv4-mapped: the IPv4 visitor, not the /64 "::"
            ("::FFFF:c000:0201", "192.0.2.1"),
            ("198.51.100.9:50123", "198.51.100.9"),  # the port is not part of who the client is
            ("[2001:db8:1:2::7]:443", "2001:db8:1:2::"),
            ("[::ffff:192.0.2.1]:8080", "192.0.2.1"),
            ("[2001:db8:1:2::7]", "2001:db8:1:2::"),
            ("2001:db8:1:2::7", "2001:db8:1:2::"),
        ],
    )
    def test_behind_a_proxy_each_address_form_counts_as_the_address_it_names(self, settings, written, key):
        settings.CHATBOT_PROXY_COUNT = 1

        assert client_ip(self.request("10.0.0.2", forwarded=f"1.2.3.4, {written}")) == key

    @pytest.mark.parametrize(
        ("peer", "key"),
        [
            ("192.0.2.1", "192.0.2.1"),
            ("::ffff:192.0.2.1", "192.0.2.1"),  # how a dual-stack listener reports an IPv4 visitor
            ("2001:db8:1:2::7", "2001:db8:1:2::"),
        ],
    )
    def test_without_a_proxy_the_peer_address_is_normalised_the_same_way(self, settings, peer, key):
        settings.CHATBOT_PROXY_COUNT = 0

        assert client_ip(self.request(peer, forwarded="203.0.113.50")) == key

    def test_ipv4_mapped_clients_behind_a_proxy_each_get_their_own_budget(self, settings):
        settings.CHATBOT_PROXY_COUNT = 1

        keys = {client_ip(self.request("10.0.0.2", forwarded=f"::ffff:192.0.2.{i}")) for i in range(1, 23)}

        assert len(keys) == 22

    def test_a_new_port_per_connection_does_not_buy_a_new_budget(self, api, settings):
        settings.CHATBOT_PROXY_COUNT = 1
        settings.CHATBOT_RATELIMIT_SESSION_CREATE_IP = "2/m"

        def create(port):
            return create_session(api, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"198.51.100.9:{port}")

        assert [create(50001).status_code, create(50002).status_code] == [201, 201]
        assert_rate_limited(create(50003))

    @pytest.mark.parametrize("written", ["unknown", "198.51.100.9:http", "[2001:db8::1", "_hidden", "300.1.2.3"])
    def test_a_forwarded_entry_that_is_not_an_address_falls_back_to_the_peer(self, settings, written):
        settings.CHATBOT_PROXY_COUNT = 1

        # Our proxy wrote something that is no address: its own address is the key.
        assert client_ip(self.request("10.0.0.2", forwarded=f"1.2.3.4, {written}")) == "10.0.0.2"

    def test_garbage_in_the_trusted_entry_does_not_buy_a_new_budget(self, api, settings):
        settings.CHATBOT_PROXY_COUNT = 1
        settings.CHATBOT_RATELIMIT_SESSION_CREATE_IP = "1/m"

        def create(entry):
            return create_session(api, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=entry)

        assert create("not-an-address").status_code == 201
        assert_rate_limited(create("another-word"))

    def test_a_spoofed_forwarded_for_does_not_escape_the_limit(self, api, settings):
        settings.CHATBOT_PROXY_COUNT = 0
        settings.CHATBOT_RATELIMIT_SESSION_CREATE_IP = "1/m"

        assert create_session(api, HTTP_X_FORWARDED_FOR="1.1.1.1").status_code == 201
        assert_rate_limited(create_session(api, HTTP_X_FORWARDED_FOR="2.2.2.2"))


class TestWithRedis:
    def test_limits_are_counted_in_redis(self, api, redis_cache, settings):
        settings.CHATBOT_RATELIMIT_SESSION_CREATE_IP = "2/m"

        assert [create_session(api).status_code for _ in range(2)] == [201, 201]
        assert_rate_limited(create_session(api))

    def test_with_redis_down_the_api_serves_and_warns_then_limits_again_when_it_returns(
        self, api, redis_cache, settings, caplog
    ):
        settings.CHATBOT_RATELIMIT_SESSION_CREATE_IP = "2/m"
        redis_cache.stop()

        with caplog.at_level(logging.WARNING, logger="conversations.ratelimits"):
            statuses = [create_session(api).status_code for _ in range(4)]

        assert statuses == [201] * 4  # fails open: over the limit, yet served
        assert any("cache is unavailable" in record.getMessage() for record in caplog.records)

        redis_cache.start()
        assert [create_session(api).status_code for _ in range(2)] == [201, 201]
        assert_rate_limited(create_session(api))


@pytest.mark.django_db(transaction=True)
def test_a_limit_holds_across_two_server_processes_sharing_redis(redis_server):
    env = {"REDIS_URL": redis_server.url, "CHATBOT_RATELIMIT_ENABLE": "true"}
    env |= {"CHATBOT_RATELIMIT_SESSION_CREATE_IP": "4/m"}
    with asgi_server(env) as first, asgi_server(env) as second:
        statuses = [post_json(server, "/api/session/create", {})[0] for server in [first, second] * 2]
        status, body, headers = post_json(first, "/api/session/create", {})
        status_b, _, _ = post_json(second, "/api/session/create", {})

    assert statuses == [201, 201, 201, 201]
    assert (status, status_b) == (429, 429)
    assert body["error"]["code"] == "rate_limited"
    assert 1 <= int(headers["Retry-After"]) <= 60


def test_session_updates_and_deletions_are_limited(api, settings):
    settings.CHATBOT_RATELIMIT_WRITE_SESSION = "3/m"
    session = Session.objects.create()
    url = f"/api/sessions/{session.public_id}/"

    statuses = [api.patch(url, {"metadata": {"n": i}}, format="json").status_code for i in range(3)]

    assert statuses == [200, 200, 200]
    assert_rate_limited(api.patch(url, {"title": "over"}, format="json"))
    assert_rate_limited(api.delete(url))
    assert Session.objects.filter(pk=session.pk).exists()


def test_session_updates_and_deletions_share_the_per_ip_write_budget(api, settings):
    settings.CHATBOT_RATELIMIT_WRITE_IP = "2/m"
    first, second, third = Session.objects.create(), Session.objects.create(), Session.objects.create()

    assert api.patch(f"/api/sessions/{first.public_id}/", {"title": "a"}, format="json").status_code == 200
    assert api.delete(f"/api/sessions/{second.public_id}/").status_code == 204
    assert_rate_limited(api.delete(f"/api/sessions/{third.public_id}/"))
    assert_rate_limited(api.patch(f"/api/sessions/{third.public_id}/", {"title": "b"}, format="json"))
