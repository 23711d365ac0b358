"""The admin's insight page (/admin/conversations/insight/): every figure against a seeded
set of turns whose totals are known, the range's edges in the site's time zone, who may
see it, bad dates, and the chart. Also what each turn stores for it, and the migration
that fills it in for turns stored before."""

from __future__ import annotations

import html
import importlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.utils import timezone

from conversations import staffing
from conversations.models import (
    Citation,
    ContentGap,
    DailyUsage,
    Feedback,
    Message,
    MessageDraft,
    Rating,
    Role,
    Session,
)

pytestmark = pytest.mark.django_db

URL = "/admin/conversations/insight/"
TENTS = {"id": 1, "title": "Tents", "url": "https://shop.example/tents", "heading": "Two", "snippet": "Trail 2"}
FAMILY_TENTS = {**TENTS, "id": 2, "heading": "Family", "snippet": "Basecamp"}  # another passage, same page
RETURNS = {"id": 1, "title": "Returns", "url": "https://shop.example/returns", "heading": "", "snippet": "Refunds"}
CATALOGUE = {"id": 2, "title": "Catalogue.pdf", "url": None, "heading": "", "snippet": "Prices"}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def session_at(moment: datetime) -> Session:
    return Session.objects.create(created_at=moment, last_activity_at=moment)


def store_turn(session, question, *, status, at, latency=None, cited=(), tokens=None) -> Message:
    """A turn as ``chat.finish_turn`` stores it (``append_turn``), then moved to ``at``."""
    metadata = {"answer_status": status, "citations": list(cited)}
    if latency is not None:
        metadata["latency_ms"] = latency
    drafts = [
        MessageDraft(role=Role.USER, content=question),
        MessageDraft(role=Role.ASSISTANT, content="An answer.", metadata=metadata, answer_status=status),
    ]
    stored = session.append_turn(drafts)
    Message.objects.filter(pk__in=[m.pk for m in stored]).update(created_at=at)
    Citation.objects.filter(message=stored[1]).update(cited_at=at)
    ContentGap.objects.filter(message=stored[1]).update(asked_at=at)
    return stored[1]


def store_for_staff(session, question, *, at) -> None:
    """The visitor's message in a conversation a person answers (``chat.store_for_staff``)."""
    draft = MessageDraft(
        role=Role.USER, content=question, metadata={"answer_status": "with_staff"}, answer_status="with_staff"
    )
    (message,) = session.append_turn([draft])
    Message.objects.filter(pk=message.pk).update(created_at=at)


@pytest.fixture
def berlin(settings):
    """The site's time zone is Berlin, an hour ahead of UTC in November: a day there runs
    from 23:00 UTC the evening before."""
    settings.TIME_ZONE = "Europe/Berlin"
    timezone.deactivate()


@pytest.fixture
def prices(settings):
    settings.CHATBOT_PRICE_PER_MILLION_INPUT_TOKENS = 0.15
    settings.CHATBOT_PRICE_PER_MILLION_OUTPUT_TOKENS = 0.60
    settings.CHATBOT_PRICE_CURRENCY = "EUR"


@pytest.fixture
def month(berlin, django_user_model):
    """Turns from 31 October to 4 November (Berlin); the page is asked for 1 to 3 November.

    Inside the range: 3 conversations (2 on the 1st, 1 on the 3rd); 13 turns (7, 1, 5):
    6 answered, 6 no_answer (50.0% of answers), 1 handed to a person; answers' latencies
    100, 200, 250, 300, 400, 1000 ms (median 275); content gaps "Do you ship to Mars" 3
    times (three wordings), "Gift cards" 2 (two), the <script> question 1; Tents cited by 3 answers,
    Returns by 2, Catalogue.pdf by 1; feedback 3 helpful and 1 not; tokens 4,000 + 1,000
    on the 1st and 500,000 + 100,000 on the 3rd. Just outside, on both sides: one of each.
    """
    first = session_at(utc("2026-10-31T23:00:00"))  # 1 Nov, 00:00 in Berlin: the first moment in range
    second = session_at(utc("2026-11-01T09:00:00"))
    third = session_at(utc("2026-11-03T22:59:59"))  # 3 Nov, 23:59:59 in Berlin: the last second in range
    before = session_at(utc("2026-10-31T22:59:59"))  # 31 Oct, 23:59:59 in Berlin
    after = session_at(utc("2026-11-03T23:00:00"))  # 4 Nov, 00:00 in Berlin

    rated = [
        store_turn(first, "Which tent for two?", status="answered", latency=100, cited=[TENTS, RETURNS],
                   at=utc("2026-10-31T23:00:00")),
        store_turn(second, "What about returns?", status="answered", latency=300, cited=[RETURNS],
                   at=utc("2026-11-01T09:00:00")),
        store_turn(third, "How heavy is it?", status="answered", latency=200, cited=[TENTS, CATALOGUE],
                   at=utc("2026-11-03T22:00:00")),
        store_turn(third, "And the family tent?", status="answered", latency=1000, cited=[TENTS, FAMILY_TENTS],
                   at=utc("2026-11-03T22:30:00")),
    ]  # fmt: skip
    store_turn(first, "Do you ship to Mars?", status="no_answer", at=utc("2026-10-31T23:05:00"))
    store_turn(first, "do you ship   to MARS", status="no_answer", at=utc("2026-11-01T11:00:00"))
    store_turn(second, "<script>alert(1)</script> price?", status="no_answer", at=utc("2026-11-01T10:00:00"))
    store_for_staff(second, "Can a person help?", at=utc("2026-11-01T12:00:00"))
    store_turn(second, "GIFT CARDS?", status="no_answer", at=utc("2026-11-01T13:00:00"))
    store_turn(second, "Gift cards?", status="answered", latency=400, at=utc("2026-11-02T10:00:00"))
    store_turn(third, "Do you ship to Mars", status="no_answer", at=utc("2026-11-03T22:40:00"))
    store_turn(third, "Gift cards", status="no_answer", at=utc("2026-11-03T22:41:00"))
    store_turn(third, "Is it waterproof?", status="answered", latency=250, at=utc("2026-11-03T22:59:59"))

    # Not turns: a person's reply, and a message written through the API.
    staff = django_user_model.objects.create_user("rita", is_staff=True)
    second.add_message(MessageDraft(role=Role.ASSISTANT, content="Rita here.", author=staff))
    second.add_message(MessageDraft(role=Role.USER, content="Thanks"))

    # Just outside the range.
    outside = [
        store_turn(before, "Gift cards", status="no_answer", at=utc("2026-10-31T22:59:59")),
        store_turn(before, "Tents?", status="answered", latency=9000, cited=[TENTS], at=utc("2026-10-31T22:59:59")),
        store_turn(after, "Gift cards", status="no_answer", at=utc("2026-11-03T23:00:00")),
        store_turn(after, "Returns?", status="answered", latency=9000, cited=[RETURNS], at=utc("2026-11-03T23:00:00")),
    ]

    for message, rating in zip(
        rated, [Rating.HELPFUL, Rating.HELPFUL, Rating.NOT_HELPFUL, Rating.HELPFUL], strict=True
    ):
        Feedback.objects.create(message=message, rating=rating, updated_at=utc("2026-11-02T08:00:00"))
    Feedback.objects.create(message=outside[1], rating=Rating.NOT_HELPFUL, updated_at=utc("2026-10-31T22:59:59"))
    Feedback.objects.create(message=outside[3], rating=Rating.NOT_HELPFUL, updated_at=utc("2026-11-03T23:00:00"))

    for session, day, prompt, completion in [
        (first, "2026-11-01", 1000, 200),
        (second, "2026-11-01", 3000, 800),
        (third, "2026-11-03", 500_000, 100_000),
        (before, "2026-10-31", 9_999_999, 9_999_999),
        (after, "2026-11-04", 9_999_999, 9_999_999),
    ]:
        DailyUsage.objects.create(session=session, day=day, turns=1, prompt_tokens=prompt, completion_tokens=completion)


def table(page: str, table_id: str) -> list[list[str]]:
    """The rows of the table with id ``table_id``, each a list of its cells' text."""
    match = re.search(rf'<table[^>]*id="{table_id}".*?</table>', page, re.S)
    assert match, f"no table {table_id}"
    body = re.search(r"<tbody>(.*?)</tbody>", match.group(0), re.S).group(1)
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def insight_page(client, query="?start=2026-11-01&end=2026-11-03") -> str:
    response = client.get(URL + query)
    assert response.status_code == 200, response.content[:2000]
    return response.content.decode()


# --- The figures -----------------------------------------------------------------------


def test_conversations_and_turns_per_day_count_the_days_of_the_sites_time_zone(staff_client, month):
    page = insight_page(staff_client)

    assert table(page, "insight-activity-table") == [
        ["2026-11-01", "2", "7"],
        ["2026-11-02", "0", "1"],
        ["2026-11-03", "1", "5"],
    ]


def test_the_summary_gives_the_periods_totals(staff_client, month, prices):
    page = insight_page(staff_client)

    assert table(page, "insight-summary") == [
        ["Conversations", "3", "sessions started"],
        ["Turns", "13", "questions answered by the bot or handed to a person"],
        ["No answer", "50.0%", "6 of 12 answers found nothing on the site's pages"],
        ["Helpful", "75.0%", "3 helpful, 1 not helpful"],
        ["Median latency", "275 ms", "the model's time to a whole answer"],
        ["Tokens", "605000", "504000 prompt, 101000 completion"],
        ["Estimated cost", "0.1362 EUR", "at the configured prices per million tokens"],
    ]


def test_tokens_and_their_cost_per_day(staff_client, month, prices):
    page = insight_page(staff_client)

    # 1 Nov: 4,000 × 0.15 / 1M + 1,000 × 0.60 / 1M; 3 Nov: 500,000 × 0.15 / 1M + 100,000 × 0.60 / 1M.
    assert "Estimated cost (EUR)" in page
    assert table(page, "insight-tokens-table") == [
        ["2026-11-01", "4000", "1000", "0.0012"],
        ["2026-11-02", "0", "0", "0.0000"],
        ["2026-11-03", "500000", "100000", "0.1350"],
    ]


def test_without_prices_tokens_are_shown_and_no_cost(staff_client, month):
    page = insight_page(staff_client)

    assert table(page, "insight-tokens-table")[0] == ["2026-11-01", "4000", "1000", "–"]
    assert ["Estimated cost", "–", "no prices configured"] in table(page, "insight-summary")


def test_content_gaps_are_the_unanswered_questions_by_how_often_they_were_asked(staff_client, month):
    page = insight_page(staff_client)

    # Wordings that differ in case, spacing or end punctuation count as one question,
    # shown as the first of them in order; the askings just outside the range are not.
    assert table(page, "insight-gaps-table") == [
        ["Do you ship to Mars", "3"],
        ["GIFT CARDS?", "2"],
        ["<script>alert(1)</script> price?", "1"],
    ]


def test_cited_pages_count_the_answers_that_cite_each_page(staff_client, month):
    page = insight_page(staff_client)

    # Two passages of Tents in one answer are one citation of the page.
    assert table(page, "insight-cited-table") == [
        ["Tents", "https://shop.example/tents", "3"],
        ["Returns", "https://shop.example/returns", "2"],
        ["Catalogue.pdf", "(uploaded file)", "1"],
    ]


def test_a_single_day_is_a_range(staff_client, month):
    page = insight_page(staff_client, "?start=2026-11-03&end=2026-11-03")

    assert table(page, "insight-activity-table") == [["2026-11-03", "1", "5"]]
    assert ["Median latency", "250 ms", "the model's time to a whole answer"] in table(page, "insight-summary")


def test_an_empty_range_shows_zeros_and_no_figures_it_cannot_have(staff_client, month):
    page = insight_page(staff_client, "?start=2025-01-01&end=2025-01-02")

    assert table(page, "insight-activity-table") == [["2025-01-01", "0", "0"], ["2025-01-02", "0", "0"]]
    summary = table(page, "insight-summary")
    assert ["No answer", "–", "0 of 0 answers found nothing on the site's pages"] in summary
    assert ["Median latency", "–", "the model's time to a whole answer"] in summary
    assert "None in this period." in page
    assert "No answer cited a page in this period." in page


def test_by_default_the_page_shows_the_last_30_days(staff_client):
    today = timezone.localdate()
    session_at(timezone.now())
    session_at(timezone.now() - timedelta(days=31))

    page = insight_page(staff_client, "")

    days = table(page, "insight-activity-table")
    assert len(days) == 30
    assert days[0][0] == (today - timedelta(days=29)).isoformat()
    assert days[-1] == [today.isoformat(), "1", "0"]
    assert sum(int(day[1]) for day in days) == 1
    assert f'value="{today.isoformat()}"' in page  # the form says which range it is


def test_the_page_costs_the_same_few_queries_however_many_turns_there_are(
    staff_client, month, django_assert_num_queries
):
    # The login and the permission check (four), then one aggregate query a figure:
    # conversations, turn outcomes, feedback, latency (a count and the middle values
    # on SQLite), tokens, content gaps and cited pages.
    with django_assert_num_queries(11 if connection.vendor == "postgresql" else 12):
        insight_page(staff_client)


# --- The chart -------------------------------------------------------------------------


def test_the_chart_is_an_inline_svg_image_with_a_title_and_a_description(staff_client, month):
    page = insight_page(staff_client)

    svg = re.search(r"<svg[^>]*id=\"insight-activity\".*?</svg>", page, re.S).group(0)
    assert 'role="img"' in svg
    assert 'aria-labelledby="insight-activity-title insight-activity-desc"' in svg
    assert '<title id="insight-activity-title">Conversations and turns per day</title>' in svg
    assert "From 2026-11-01 to 2026-11-03: 3 conversations and 13 turns." in svg
    # A bar per day and series, each naming its figure.
    bars = re.findall(r"<rect [^>]*><title>(.*?)</title></rect>", svg)
    assert bars == [
        "2026-11-01: 2 conversations",
        "2026-11-01: 7 turns",
        "2026-11-02: 0 conversations",
        "2026-11-02: 1 turns",
        "2026-11-03: 1 conversations",
        "2026-11-03: 5 turns",
    ]
    assert "<script" not in page.split('id="content-main"')[1]  # no script, inline or not


def test_visitors_words_are_shown_as_text(staff_client, month):
    page = insight_page(staff_client)

    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; price?" in page


# --- Who may see it --------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_login_page():
    response = Client().get(URL)

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/conversations/insight/"


def test_signed_in_users_who_are_not_staff_are_refused(member, month):
    client = Client()
    client.force_login(member)

    response = client.get(URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert "Do you ship to Mars" not in response.content.decode()


def test_staff_who_may_not_read_sessions_are_refused(django_user_model, month):
    client = Client()
    client.force_login(django_user_model.objects.create_user("editor", is_staff=True))

    assert client.get(URL).status_code == 403


def test_the_admin_index_the_apps_page_and_the_sessions_list_link_to_it(staff_client, django_user_model):
    for page in ["/admin/", "/admin/conversations/", "/admin/conversations/session/"]:
        assert f'href="{URL}"' in staff_client.get(page).content.decode(), page
    client = Client()
    client.force_login(django_user_model.objects.create_user("editor", is_staff=True))
    assert URL not in client.get("/admin/").content.decode()


# --- Bad dates -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("?start=2026-13-01&end=2026-11-03", "Start: Enter a valid date."),
        ("?start=yesterday&end=2026-11-03", "Start: Enter a valid date."),
        ("?start=2026-11-01&end=03/11/2026", "End: Enter a valid date."),
        ("?start=2026-11-01", "End: This field is required."),
        ("?start=2026-11-03&end=2026-11-01", "The start date must not be after the end date."),
        ("?start=2020-01-01&end=2026-11-01", "Choose at most 366 days."),
    ],
)
def test_a_range_that_is_not_two_dates_in_order_is_a_form_error(staff_client, query, error):
    response = staff_client.get(URL + query)

    assert response.status_code == 400
    page = html.unescape(re.sub(r"<[^>]+>", "", response.content.decode()))
    assert error in page
    assert 'id="insight-summary"' not in response.content.decode()


# --- What a turn stores for it ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # outside a transaction: PostgreSQL's single-statement turn
def test_a_turn_stores_its_outcome_latency_cited_pages_and_unanswered_question_with_it():
    session = Session.objects.create()
    answer = store_turn(
        session, "Tents?", status="answered", latency=123.6, cited=[TENTS, FAMILY_TENTS, CATALOGUE], at=timezone.now()
    )
    unanswered = store_turn(session, "  Do you sell  KAYAKS?! ", status="no_answer", at=timezone.now())

    question = Message.objects.get(session=session, seq=1)
    answer.refresh_from_db()
    assert (question.answer_status, question.latency_ms) == (None, None)
    assert (answer.answer_status, answer.latency_ms) == ("answered", 124)
    cited = Citation.objects.filter(message=answer).order_by("title")
    assert [(c.title, c.url, c.cited_at) for c in cited] == [
        ("Catalogue.pdf", None, answer.created_at),
        ("Tents", "https://shop.example/tents", answer.created_at),
    ]
    assert not Citation.objects.filter(message=unanswered).exists()
    gap = ContentGap.objects.get()
    assert (gap.message_id, gap.question, gap.normalized) == (
        unanswered.pk,
        "  Do you sell  KAYAKS?! ",
        "do you sell kayaks",
    )


def test_a_chat_turn_is_stored_with_its_outcome(api):
    body = api.post("/api/chat", {"query": "Hello"}, format="json").json()

    answer = Message.objects.get(pk=body["messages"]["assistant"]["id"])
    assert answer.answer_status == "answered"  # an empty knowledge base: the model answers
    assert answer.latency_ms == round(answer.metadata["latency_ms"])


def test_a_visitors_message_to_a_person_is_a_turn_handed_to_staff(api, responder_client):
    session = Session.objects.create()
    staffing.take_over(session=session, staff=responder_client.user)

    api.post("/api/chat", {"query": "Are you there?", "session_id": session.public_id}, format="json")

    assert Message.objects.get(session=session).answer_status == "with_staff"


@pytest.mark.django_db(transaction=True)  # SQLite's schema editor refuses to run inside a transaction
def test_the_migration_fills_in_the_turns_stored_before_it():
    backfill = importlib.import_module("conversations.migrations.0005_insight").backfill
    session = Session.objects.create()
    rows = [
        (Role.USER, {}),
        (Role.ASSISTANT, {"provider": "openai", "latency_ms": 812.4, "citations": [TENTS, FAMILY_TENTS]}),
        (Role.USER, {}),
        (Role.ASSISTANT, {"provider": "knowledge", "answer_status": "no_answer", "citations": []}),
        (Role.USER, {"answer_status": "with_staff"}),
        (Role.ASSISTANT, {"provider": "offline", "latency_ms": "fast"}),
        (Role.ASSISTANT, {}),  # written through the API: not the bot's answer
    ]
    Message.objects.bulk_create(
        Message(session=session, seq=seq, role=role, content=f"Message {seq}?", metadata=metadata)
        for seq, (role, metadata) in enumerate(rows, start=1)
    )

    with connection.schema_editor() as schema_editor:
        backfill(apps, schema_editor)

    stored = list(Message.objects.filter(session=session).order_by("seq").values_list("answer_status", "latency_ms"))
    assert stored == [
        (None, None),
        ("answered", 812),
        (None, None),
        ("no_answer", None),
        ("with_staff", None),
        ("answered", None),
        (None, None),
    ]
    assert list(Citation.objects.values_list("message__seq", "title", "url")) == [
        (2, "Tents", "https://shop.example/tents")
    ]
    assert list(ContentGap.objects.values_list("message__seq", "question", "normalized")) == [
        (4, "Message 3?", "message 3")
    ]
