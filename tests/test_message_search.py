"""Message search: staff find sessions by the words of their messages through the
full-text index (PostgreSQL GIN, SQLite FTS5), English stems included, and nothing a
person types can make the search fail. Runs on both databases."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from conversations.models import Message, MessageDraft, Role, Session
from conversations.search import messages_matching, search_words
from tests.admin_helpers import listed_ids

pytestmark = pytest.mark.django_db


def say(session: Session, text: str, role: str = Role.USER) -> Message:
    return session.add_message(MessageDraft(role=role, content=text))


def found(text: str) -> set[str]:
    return set(messages_matching(text).values_list("content", flat=True))


def test_a_message_is_found_by_another_form_of_its_words():
    session = Session.objects.create()
    say(session, "Your parcel shipped on Monday.")
    say(session, "The tent has two doors.")

    assert found("shipping") == {"Your parcel shipped on Monday."}
    assert found("door") == {"The tent has two doors."}


def test_every_word_must_be_in_the_message():
    session = Session.objects.create()
    say(session, "Returns are free within thirty days.")
    say(session, "Shipping is free over 50 euros.")

    assert found("free returns") == {"Returns are free within thirty days."}
    assert found("free") == {"Returns are free within thirty days.", "Shipping is free over 50 euros."}


def test_quotes_group_nothing_every_word_still_counts_alone():
    session = Session.objects.create()
    say(session, "Do you ship to Norway?")
    say(session, "Norway is where I want it shipped.")

    assert found('"Norway ship"') == {"Do you ship to Norway?", "Norway is where I want it shipped."}


def test_a_message_added_after_the_index_was_built_is_found():
    session = Session.objects.create()
    assert found("waterproof") == set()

    say(session, "Is the jacket waterproof?")

    assert found("waterproof") == {"Is the jacket waterproof?"}


def test_a_deleted_message_or_session_is_no_longer_found():
    kept, dropped = Session.objects.create(), Session.objects.create()
    say(kept, "The warranty lasts two years.")
    gone = say(kept, "The warranty card is in the box.")
    say(dropped, "Warranty claims go through the shop.")

    Message.objects.filter(pk=gone.pk).delete()
    dropped.delete()

    assert found("warranty") == {"The warranty lasts two years."}


def test_a_message_whose_text_changes_is_found_by_its_new_words_only():
    message = say(Session.objects.create(), "I ordered the blue tent.")

    Message.objects.filter(pk=message.pk).update(content="I ordered the green sleeping bag.")

    assert found("blue") == set()
    assert found("green") == {"I ordered the green sleeping bag."}


@pytest.mark.parametrize(
    "typed",
    [
        '"',
        '"unclosed phrase',
        "ship*",
        "NEAR(ship norway)",
        "ship OR norway",
        "ship AND NOT norway",
        "-ship",
        "!ship & norway | (",
        "content:ship",
        "'; DROP TABLE conversations_message; --",
        "^ship",
        "ship:*",
        "\\",
        "🚚 ship",
        "( ) [ ] { } : ; ' \" + - * / < > = ~ ? .",
    ],
)
def test_nothing_typed_makes_the_search_fail(staff_client, typed):
    session = Session.objects.create()
    say(session, "Do you ship to Norway?")

    response = staff_client.get("/admin/conversations/session/", {"q": typed})

    assert response.status_code == 200
    assert list(messages_matching(typed)) is not None  # evaluated: the database accepted it


def test_operators_are_words_or_nothing_never_syntax():
    assert search_words('ship OR -norway "to the" NEAR( *') == ["ship", "OR", "norway", "to", "the", "NEAR"]
    assert search_words('"" -- * ()') == []


def test_a_search_with_no_word_in_it_finds_no_message():
    say(Session.objects.create(), "Anything at all.")

    assert found("*** ---") == set()


def test_the_admin_finds_a_session_by_a_stemmed_word(staff_client):
    session = Session.objects.create()
    say(session, "When will my order be shipped?")
    say(Session.objects.create(), "Where is the invoice?")

    response = staff_client.get("/admin/conversations/session/", {"q": "shipping"})

    assert listed_ids(response) == {session.public_id}


def test_the_admin_finds_a_session_by_the_start_of_its_id_as_logs_show_it(staff_client):
    session = Session.objects.create()
    Session.objects.create()

    response = staff_client.get("/admin/conversations/session/", {"q": session.short_id})

    assert listed_ids(response) == {session.public_id}


@pytest.mark.django_db(transaction=True)
def test_the_index_is_dropped_and_rebuilt_when_the_migration_is_reversed_and_applied():
    say(Session.objects.create(), "The stove burns gas.")

    call_command("migrate", "conversations", "0004", verbosity=0)
    assert not search_index_exists()
    call_command("migrate", "conversations", verbosity=0)

    assert search_index_exists()
    assert found("burning") == {"The stove burns gas."}


def search_index_exists() -> bool:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT count(*) = 2 FROM pg_indexes "
                "WHERE indexname IN ('message_content_search_idx', 'session_title_search_idx')"
            )
        else:
            cursor.execute("SELECT count(*) = 1 FROM sqlite_master WHERE name = 'conversations_message_fts'")
        return cursor.fetchone()[0]
