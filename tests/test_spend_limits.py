"""Spend limits: daily token budgets per session, per client address and for the whole
site, checked before a turn asks the model and counted after it answers; the usage
recorded per session and UTC day in DailyUsage.

The fake model reports 11 prompt and 7 completion tokens a turn: 18 a turn.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from conversations import spend
from conversations.ids import new_public_id
from conversations.models import DailyUsage, Message, Session, TurnReservation
from conversations.tokens import estimate_tokens
from tests.http import assert_error, get_json, post_json

pytestmark = pytest.mark.django_db

TOKENS_A_TURN = 18


@pytest.fixture
def budgets(settings):
    """Every budget off; a test turns on the ones it is about."""
    settings.CHATBOT_DAILY_TOKENS_PER_SESSION = 0
    settings.CHATBOT_DAILY_TOKENS_PER_ADDRESS = 0
    settings.CHATBOT_DAILY_TOKENS_GLOBAL = 0
    return settings


@pytest.fixture
def redis_counters(redis_server, settings):
    """Count the budgets in ``redis_server``, as every instance of a deployment does."""
    settings.REDIS_URL = redis_server.url
    return redis_server


def chat(api, ip="192.0.2.1", **body):
    return api.post("/api/chat", body, format="json", REMOTE_ADDR=ip)


def seconds_until_midnight_utc() -> float:
    now = datetime.now(UTC)
    return (datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC) - now).total_seconds()


def assert_over_budget(response, budget: str) -> None:
    assert_error(response, 429, "budget_exhausted")
    body = response.json()
    assert body["budget"] == budget
    assert body["error"]["retryable"] is True
    assert "today" in body["error"]["message"]
    # Retry when the budget starts afresh: the next midnight UTC.
    retry_after = int(response["Retry-After"])
    assert body["error"]["retry_after"] == retry_after
    assert seconds_until_midnight_utc() - 5 <= retry_after <= seconds_until_midnight_utc() + 1


def test_a_session_that_has_spent_its_budget_is_refused_until_midnight_utc_and_nothing_is_written(
    api, fake_llm, budgets
):
    budgets.CHATBOT_DAILY_TOKENS_PER_SESSION = 2 * TOKENS_A_TURN - 1  # the second turn crosses it
    session_id = chat(api, query="first").json()["session_id"]
    assert chat(api, query="second", session_id=session_id).status_code == 200

    refused = chat(api, query="third", session_id=session_id, client_message_id="c-3")

    assert_over_budget(refused, "session")
    assert len(fake_llm.requests) == 2  # the refused turn asked no model
    assert Message.objects.filter(session__public_id=session_id).count() == 4
    assert not TurnReservation.objects.exists()  # its client_message_id is free for the retry
    assert chat(api, query="a new conversation has its own budget").status_code == 200


def test_a_streamed_turn_is_refused_before_its_stream_starts(api, fake_llm, budgets):
    budgets.CHATBOT_DAILY_TOKENS_PER_SESSION = 1
    session_id = chat(api, query="first").json()["session_id"]

    refused = chat(api, query="streamed", session_id=session_id, stream=True)

    assert_over_budget(refused, "session")
    assert Message.objects.count() == 2


def test_an_address_that_has_spent_its_budget_is_refused_in_every_session_and_none_is_made(api, fake_llm, budgets):
    budgets.CHATBOT_DAILY_TOKENS_PER_ADDRESS = 2 * TOKENS_A_TURN
    assert chat(api, query="one").status_code == 200
    session_id = chat(api, query="two").json()["session_id"]

    assert_over_budget(chat(api, query="in a new session"), "address")
    assert_over_budget(chat(api, query="in an old one", session_id=session_id), "address")
    assert Session.objects.count() == 2  # the refused turn made no session
    assert Message.objects.count() == 4
    assert chat(api, ip="198.51.100.7", query="another visitor").status_code == 200


def test_the_site_wide_budget_refuses_every_visitor_once_spent(api, fake_llm, budgets):
    budgets.CHATBOT_DAILY_TOKENS_GLOBAL = 2 * TOKENS_A_TURN
    assert chat(api, ip="192.0.2.1", query="one").status_code == 200
    assert chat(api, ip="192.0.2.2", query="two").status_code == 200

    assert_over_budget(chat(api, ip="192.0.2.3", query="three"), "global")


def test_a_turn_already_stored_is_still_answered_from_the_database_over_budget(api, fake_llm, budgets):
    budgets.CHATBOT_DAILY_TOKENS_PER_SESSION = 1
    session_id = api.post("/api/session/create", {}, format="json").json()["session_id"]
    first = chat(api, query="hello", session_id=session_id, client_message_id="c-1")

    again = chat(api, query="hello", session_id=session_id, client_message_id="c-1")

    assert again.status_code == 200
    assert again.json()["replayed"] is True
    assert again.json()["answer"] == first.json()["answer"]
    assert len(fake_llm.requests) == 1


def test_a_visitors_message_to_staff_is_taken_over_budget_and_costs_nothing(api, fake_llm, budgets, admin_user):
    budgets.CHATBOT_DAILY_TOKENS_PER_SESSION = 1
    session_id = chat(api, query="first").json()["session_id"]
    Session.objects.filter(public_id=session_id).update(handled_by=admin_user)

    response = chat(api, query="are you a person?", session_id=session_id)

    assert response.status_code == 200
    assert response.json()["answer_status"] == "with_staff"
    assert DailyUsage.objects.get().turns == 1  # the model's turn only


def test_the_offline_responder_spends_nothing(api, budgets):
    budgets.CHATBOT_DAILY_TOKENS_PER_SESSION = 1
    budgets.CHATBOT_MODEL_BACKEND = "conversations.llm.OfflineChatModel"
    session_id = chat(api, query="first").json()["session_id"]

    assert chat(api, query="second", session_id=session_id).status_code == 200
    assert not DailyUsage.objects.exists()


@pytest.mark.django_db(transaction=True)  # a streamed turn is stored from a thread of its own
def test_usage_is_recorded_per_session_and_utc_day_as_the_provider_reports_it(api, fake_llm):
    session_id = chat(api, query="one").json()["session_id"]
    chat(api, query="two", session_id=session_id)
    streamed = chat(api, query="three", session_id=session_id, stream=True)
    assert b"event: done" in b"".join(streamed.streaming_content)
    chat(api, query="another session")

    usage = DailyUsage.objects.get(session__public_id=session_id)
    assert usage.day == datetime.now(UTC).date()
    assert (usage.turns, usage.prompt_tokens, usage.completion_tokens) == (3, 33, 21)
    assert DailyUsage.objects.count() == 2


def test_without_a_reported_usage_the_tokens_are_estimated(api, fake_llm, settings):
    fake_llm.reset(reply="An answer of some length.", usage=None)

    chat(api, query="How are tokens counted?")

    usage = DailyUsage.objects.get()
    prompt = estimate_tokens(settings.CHATBOT_SYSTEM_PROMPT) + estimate_tokens("How are tokens counted?")
    assert (usage.prompt_tokens, usage.completion_tokens) == (prompt, estimate_tokens("An answer of some length."))


def test_a_rotated_session_keeps_its_budget(api, fake_llm, budgets):
    """The session's budget is keyed by its row, not by the public id a visitor holds."""
    budgets.CHATBOT_DAILY_TOKENS_PER_SESSION = 1
    session_id = chat(api, query="first").json()["session_id"]
    new_id = new_public_id()
    Session.objects.filter(public_id=session_id).update(public_id=new_id)

    assert_over_budget(chat(api, query="under a new id", session_id=new_id), "session")


class TestCountedInRedis:
    def test_one_turn_adds_its_tokens_to_every_budget_in_redis_until_past_midnight(
        self, api, fake_llm, budgets, redis_counters
    ):
        import redis

        budgets.CHATBOT_DAILY_TOKENS_PER_SESSION = 1000
        budgets.CHATBOT_DAILY_TOKENS_PER_ADDRESS = 1000
        budgets.CHATBOT_DAILY_TOKENS_GLOBAL = 1000

        session_id = chat(api, ip="192.0.2.9", query="count me").json()["session_id"]

        day = datetime.now(UTC).date().isoformat()
        pk = Session.objects.get(public_id=session_id).pk
        client = redis.Redis.from_url(redis_counters.url)
        keys = [f"chatbot:spend:{day}:session:{pk}", f"chatbot:spend:{day}:address:192.0.2.9"]
        keys.append(f"chatbot:spend:{day}:global")
        assert [int(value) for value in client.mget(keys)] == [TOKENS_A_TURN] * 3
        for key in keys:
            # Whole seconds both ways: the expiry is rounded up when set, TTL rounds when read.
            assert seconds_until_midnight_utc() < client.ttl(key) <= seconds_until_midnight_utc() + 3600 + 2

    def test_with_redis_down_the_budgets_fail_open_and_usage_is_still_recorded(
        self, api, fake_llm, budgets, redis_counters, caplog
    ):
        budgets.CHATBOT_DAILY_TOKENS_PER_SESSION = 1
        session_id = chat(api, query="first").json()["session_id"]
        assert_over_budget(chat(api, query="refused", session_id=session_id), "session")
        redis_counters.stop()

        with caplog.at_level(logging.WARNING, logger="conversations.spend"):
            answered = chat(api, query="answered unchecked", session_id=session_id)

        assert answered.status_code == 200
        assert "Spend limits not checked" in caplog.text
        assert "not counted" in caplog.text
        assert DailyUsage.objects.get().turns == 2


def test_parallel_turns_add_up_exactly_in_daily_usage(uvicorn_url, fake_llm, transactional_db):
    """Turns answered at once by two server processes, all on one session."""
    status, created, _ = post_json(uvicorn_url, "/api/session/create", {})
    session_id = created["session_id"]
    turns = 12
    statuses: list[int] = []

    def turn(number: int) -> None:
        status, _, _ = post_json(uvicorn_url, "/api/chat", {"query": f"turn {number}", "session_id": session_id})
        statuses.append(status)

    threads = [threading.Thread(target=turn, args=(n,)) for n in range(turns)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * turns
    usage = DailyUsage.objects.get(session__public_id=session_id)
    assert (usage.turns, usage.prompt_tokens, usage.completion_tokens) == (turns, 11 * turns, 7 * turns)


def test_concurrent_first_turns_of_the_day_make_one_row_and_lose_no_increment(on_postgres, transactional_db):
    """Every writer starts at once on a day with no row: one insert wins, the rest add."""
    session = Session.objects.create()
    writers = 16
    start = threading.Barrier(writers)
    failures: list[BaseException] = []

    def write() -> None:
        try:
            start.wait()
            spend.record_daily_usage(session=session, day=datetime.now(UTC).date(), usage=spend.TokenUsage(5, 3))
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    usage = DailyUsage.objects.get(session=session)
    assert (usage.turns, usage.prompt_tokens, usage.completion_tokens) == (writers, 5 * writers, 3 * writers)


@pytest.mark.postgres
@pytest.mark.redis
def test_a_budget_spent_through_one_instance_is_refused_by_another_and_fails_open_without_redis(
    production_instances, redis_server, fake_openai_server
):
    fake_openai_server.reset()
    model = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake_openai_server.base_url, "CHAT_MODEL": "fake-model"}
    a, b = production_instances(
        2,
        **model,
        CHATBOT_RATELIMIT_ENABLE="false",
        CHATBOT_DAILY_TOKENS_PER_SESSION=str(2 * TOKENS_A_TURN),
        CHATBOT_DAILY_TOKENS_PER_ADDRESS=str(3 * TOKENS_A_TURN),
    )

    # The session spends its budget through A...
    status, first, _ = post_json(a, "/api/chat", {"query": "one"})
    assert status == 200, first
    session_id = first["session_id"]
    status, _, _ = post_json(a, "/api/chat", {"query": "two", "session_id": session_id})
    assert status == 200

    # ...and B, which answered none of it, refuses its next turn.
    status, refused, headers = post_json(b, "/api/chat", {"query": "three", "session_id": session_id})
    assert status == 429, refused
    assert (refused["error"]["code"], refused["budget"]) == ("budget_exhausted", "session")
    assert int(headers["Retry-After"]) == refused["error"]["retry_after"] > 0
    status, page = get_json(b, f"/api/session/{session_id}/messages")
    assert len(page["messages"]) == 4

    # The address (the same loopback client) spends its last turn through B; A refuses the next.
    status, _, _ = post_json(b, "/api/chat", {"query": "a new conversation"})
    assert status == 200
    status, refused, _ = post_json(a, "/api/chat", {"query": "and another"})
    assert status == 429, refused
    assert refused["budget"] == "address"
    assert len(fake_openai_server.requests) == 3
    assert sum(DailyUsage.objects.values_list("turns", flat=True)) == 3

    # With the shared counters gone, both instances answer rather than refuse.
    redis_server.stop()
    for instance in (a, b):
        status, answered, _ = post_json(instance, "/api/chat", {"query": "unchecked", "session_id": session_id})
        assert status == 200, answered
    assert sum(DailyUsage.objects.values_list("turns", flat=True)) == 5  # and still recorded
