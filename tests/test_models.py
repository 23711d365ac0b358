"""Session and Message: ids, expiry, titles, seq numbers and the queries the API pages with."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from conversations.models import Message, MessageDraft, Role, Session, TurnReservation

pytestmark = pytest.mark.django_db

URL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def add(session: Session, content: str, role: str = Role.USER) -> Message:
    return session.add_message(MessageDraft(role=role, content=content))


def fill(session: Session, count: int) -> None:
    Message.objects.bulk_create(
        Message(session=session, seq=seq, role=Role.USER, content=f"message {seq}", token_count=5)
        for seq in range(1, count + 1)
    )
    Session.objects.filter(pk=session.pk).update(last_seq=count)


# --- The public id ---------------------------------------------------------------------


def test_it_gives_each_session_a_url_safe_id_of_at_least_128_random_bits(monkeypatch):
    requested = []
    token_bytes = secrets.token_bytes

    def spy(nbytes=None):
        requested.append(nbytes)
        return token_bytes(nbytes)

    monkeypatch.setattr(secrets, "token_bytes", spy)

    session = Session.objects.create()

    assert requested, "the id must come from the secrets module"
    assert max(requested) >= 16
    assert URL_SAFE.match(session.public_id)
    assert len(session.public_id) >= 22  # 128 bits in base64url


def test_session_ids_are_unique_and_not_sequential():
    ids = [Session.objects.create().public_id for _ in range(50)]

    assert len(set(ids)) == len(ids)
    assert ids != sorted(ids)
    # Random ids share almost no prefix; counters and timestamps share long ones.
    assert max(len(_common_prefix(a, b)) for a, b in zip(ids, ids[1:], strict=False)) < 6


def _common_prefix(a: str, b: str) -> str:
    length = 0
    while length < min(len(a), len(b)) and a[length] == b[length]:
        length += 1
    return a[:length]


def test_a_session_is_called_a_chat_session():
    assert Session._meta.verbose_name == "chat session"


def test_a_session_shows_its_title_or_a_shortened_id():
    untitled = Session.objects.create()
    titled = Session.objects.create(title="Opening hours")

    assert str(titled) == "Opening hours"
    assert untitled.public_id[:6] in str(untitled)
    assert untitled.public_id not in str(untitled)


# --- Expiry ----------------------------------------------------------------------------


def test_a_new_session_expires_30_days_after_its_last_activity():
    session = Session.objects.create()

    assert session.expires_at - session.last_activity_at == timedelta(days=30)


def test_the_session_lifetime_is_configurable(settings):
    settings.CHATBOT_SESSION_TTL_DAYS = 7

    session = Session.objects.create()

    assert session.expires_at - session.last_activity_at == timedelta(days=7)


def test_adding_a_message_slides_the_expiry_forward():
    long_ago = timezone.now() - timedelta(days=20)
    session = Session.objects.create(last_activity_at=long_ago, created_at=long_ago)
    assert session.expires_at == long_ago + timedelta(days=30)

    add(session, "Still there?")

    session.refresh_from_db()
    assert session.last_activity_at > long_ago + timedelta(days=19)
    assert session.expires_at == session.last_activity_at + timedelta(days=30)
    assert session.created_at == long_ago


def test_active_and_expired_split_sessions_at_their_expiry():
    live = Session.objects.create()
    dead = Session.objects.create(expires_at=timezone.now() - timedelta(seconds=1))

    assert list(Session.objects.active()) == [live]
    assert list(Session.objects.expired()) == [dead]


# --- Titles ----------------------------------------------------------------------------


def test_the_title_comes_from_the_first_user_message():
    session = Session.objects.create()

    add(session, "Welcome! How can I help?", role=Role.ASSISTANT)
    add(session, "  What are your\n opening   hours? ")
    add(session, "And on Sundays?")

    session.refresh_from_db()
    assert session.title == "What are your opening hours?"


def test_a_long_first_message_is_cut_to_fit_the_title():
    session = Session.objects.create()

    add(session, "word " * 100)

    session.refresh_from_db()
    assert len(session.title) == 80
    assert session.title.endswith("…")
    assert session.title.startswith("word word")


def test_a_title_given_by_hand_is_kept():
    session = Session.objects.create(title="Refund for order 1234")

    add(session, "Hello")

    session.refresh_from_db()
    assert session.title == "Refund for order 1234"


# --- Messages and their seq ------------------------------------------------------------


def test_messages_are_numbered_from_one_in_the_order_they_are_added():
    session = Session.objects.create()

    for text in ["first", "second", "third"]:
        add(session, text)

    assert list(session.messages.values_list("seq", "content")) == [(1, "first"), (2, "second"), (3, "third")]
    session.refresh_from_db()
    assert session.last_seq == 3


def test_each_session_counts_its_own_seq():
    one, two = Session.objects.create(), Session.objects.create()

    add(one, "a")
    add(one, "b")
    message = add(two, "c")

    assert message.seq == 1


def test_a_seq_cannot_repeat_within_a_session():
    session = Session.objects.create()
    Message.objects.create(session=session, seq=1, role=Role.USER, content="one")

    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(session=session, seq=1, role=Role.USER, content="again")


def test_a_client_message_id_is_unique_per_session_when_given():
    one, two = Session.objects.create(), Session.objects.create()
    Message.objects.create(session=one, seq=1, role=Role.USER, content="a", client_message_id="m-1")
    Message.objects.create(session=two, seq=1, role=Role.USER, content="a", client_message_id="m-1")
    Message.objects.create(session=one, seq=2, role=Role.USER, content="b")
    Message.objects.create(session=one, seq=3, role=Role.USER, content="c")  # absent ids never clash

    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(session=one, seq=4, role=Role.USER, content="d", client_message_id="m-1")


def test_messages_store_role_metadata_channel_and_a_token_count():
    session = Session.objects.create()

    message = session.add_message(
        MessageDraft(role=Role.ASSISTANT, content="Hi there", metadata={"model": "m"}, channel="widget")
    )

    message.refresh_from_db()
    assert (message.role, message.content, message.metadata, message.channel) == (
        "assistant",
        "Hi there",
        {"model": "m"},
        "widget",
    )
    assert message.token_count > 0
    assert message.created_at is not None


def test_deleting_a_session_deletes_its_messages():
    session = Session.objects.create()
    add(session, "forget me")

    session.delete()

    assert not Message.objects.exists()


# --- Paging ----------------------------------------------------------------------------


def test_page_before_returns_the_latest_messages_oldest_first():
    session = Session.objects.create()
    fill(session, 10)

    page, has_more = session.messages.page_before(None, 3)

    assert [m.seq for m in page] == [8, 9, 10]
    assert has_more is True


def test_page_before_returns_the_page_before_a_seq():
    session = Session.objects.create()
    fill(session, 10)

    page, has_more = session.messages.page_before(8, 3)
    first_page, first_has_more = session.messages.page_before(3, 3)

    assert [m.seq for m in page] == [5, 6, 7]
    assert has_more is True
    assert [m.seq for m in first_page] == [1, 2]
    assert first_has_more is False


def test_an_index_serves_the_page_before_a_seq_without_scanning_the_session():
    session = Session.objects.create()
    fill(session, 50)
    queryset = session.messages.filter(seq__lt=30).order_by("-seq")[:10]

    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            # A table this small would be scanned anyway; ask whether an index *can* serve it.
            cursor.execute("SET LOCAL enable_seqscan = off")
            # Stale statistics (another test's 100,000 rows) may favour an unordered
            # bitmap scan plus a sort; the question is whether the index serves it in order.
            cursor.execute("SET LOCAL enable_bitmapscan = off")
            plan = queryset.explain()
        assert re.search(r"Index Cond: .*seq < ", plan), plan
        assert "Sort" not in plan, plan  # read in index order, not sorted afterwards
    else:
        plan = queryset.explain()
        assert re.search(r"USING (COVERING )?INDEX .*seq<\?", plan), plan
        assert "TEMP B-TREE" not in plan, plan  # read in index order, not sorted afterwards


# --- Who may reach a session -----------------------------------------------------------


def test_listing_shows_staff_every_session_a_member_their_own_and_anonymous_nobody(django_user_model, member):
    staff = django_user_model.objects.create_user("staff", is_staff=True)
    theirs = Session.objects.create(owner=member)
    anonymous = Session.objects.create()

    assert set(Session.objects.visible_to(staff)) == {theirs, anonymous}
    assert list(Session.objects.visible_to(member)) == [theirs]
    assert list(Session.objects.visible_to(AnonymousUser())) == []


def test_readable_by_finds_an_active_session_its_caller_may_use(member):
    anonymous = Session.objects.create()
    theirs = Session.objects.create(owner=member)

    assert Session.objects.readable_by(anonymous.public_id, AnonymousUser()) == anonymous
    assert Session.objects.readable_by(theirs.public_id, member) == theirs


@pytest.mark.parametrize(
    "public_id",
    ["unknown", "x" * 32, "x" * 500, "../../etc", "\x00", "session_123", ""],
)
def test_readable_by_answers_none_for_unknown_and_malformed_ids(public_id):
    Session.objects.create()

    assert Session.objects.readable_by(public_id, AnonymousUser()) is None


def test_readable_by_answers_none_for_expired_and_foreign_sessions(django_user_model, member):
    stranger = django_user_model.objects.create_user("stranger")
    expired = Session.objects.create(expires_at=timezone.now() - timedelta(seconds=1))
    theirs = Session.objects.create(owner=member)

    assert Session.objects.readable_by(expired.public_id, AnonymousUser()) is None
    assert Session.objects.readable_by(theirs.public_id, stranger) is None
    assert Session.objects.readable_by(theirs.public_id, AnonymousUser()) is None


# --- A turn's messages, in one transaction ----------------------------------------------

TURN = [
    MessageDraft(role=Role.USER, content="Do you ship to Norway?", channel="widget", client_message_id="c-turn-1"),
    MessageDraft(role=Role.ASSISTANT, content="Yes, in 3–5 days.", metadata={"usage": {"total_tokens": 9}}),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("in_transaction", [False, True], ids=["on its own", "inside a transaction"])
def test_append_turn_stores_the_pair_and_drops_the_reservation_in_every_way_it_runs(in_transaction):
    """On PostgreSQL outside a transaction it is one statement; otherwise the ORM path.
    Both must store the same rows."""
    session = Session.objects.create()
    add(session, "earlier")
    TurnReservation.objects.claim(session=session, client_message_id="c-turn-1", query_digest="d")

    if in_transaction:
        with transaction.atomic():
            stored = session.append_turn(TURN, releasing="c-turn-1")
    else:
        stored = session.append_turn(TURN, releasing="c-turn-1")

    rows = list(
        Message.objects.filter(session=session, seq__gt=1).values_list(
            "id", "seq", "role", "content", "metadata", "channel", "client_message_id", "token_count"
        )
    )
    assert rows == [
        (stored[0].pk, 2, "user", "Do you ship to Norway?", {}, "widget", "c-turn-1", stored[0].token_count),
        (
            stored[1].pk,
            3,
            "assistant",
            "Yes, in 3–5 days.",
            {"usage": {"total_tokens": 9}},
            "api",
            None,
            stored[1].token_count,
        ),
    ]
    session.refresh_from_db()
    assert (session.last_seq, session.title) == (3, "earlier")
    assert not TurnReservation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_append_turn_writes_nothing_when_its_client_message_id_is_taken():
    session = Session.objects.create()
    session.append_turn(TURN)

    with pytest.raises(IntegrityError):
        session.append_turn(TURN)

    session.refresh_from_db()
    assert session.last_seq == 2
    assert Message.objects.filter(session=session).count() == 2


@pytest.mark.django_db(transaction=True)
def test_append_turn_on_a_deleted_session_raises_does_not_exist():
    session = Session.objects.create()
    Session.objects.filter(pk=session.pk).delete()

    with pytest.raises(Session.DoesNotExist):
        session.append_turn(TURN)


def test_a_message_written_without_naming_its_author_column_has_no_author_name():
    # What an instance on the previous release writes while this one migrates.
    session = Session.objects.create()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Message._meta.db_table} "  # noqa: S608 - the model's own table
            "(session_id, seq, role, content, metadata, channel, token_count, created_at) "
            "VALUES (%s, 1, 'user', 'hello', '{}', 'api', 1, %s)",
            [session.pk, connection.ops.adapt_datetimefield_value(timezone.now())],
        )

    assert Message.objects.get(session=session).author_name == ""
