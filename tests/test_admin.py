"""The admin: staff find sessions and read their transcripts, with each answer's sources; messages
stay as they were said; the questions the site's pages did not answer are listed as content gaps."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib import admin
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations.models import Message, MessageDraft, Role, Session
from tests.admin_helpers import listed_ids

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(member):
    session = Session.objects.create(owner=member, source="widget")
    for role, text in [
        (Role.USER, "Do you ship to Norway?"),
        (Role.ASSISTANT, "Yes, within five working days."),
        (Role.USER, "What does shipping cost?"),
    ]:
        session.add_message(MessageDraft(role=role, content=text))
    session.refresh_from_db()
    return session


# --- The sessions list -----------------------------------------------------------------


def test_staff_see_the_sessions_list_with_its_columns(staff_client, conversation):
    response = staff_client.get("/admin/conversations/session/")

    assert response.status_code == 200
    html = response.content.decode()
    headers = [
        # A sorted column's header starts with its sort priority.
        re.sub(r"<[^>]+>", "", h).strip().lstrip("0123456789 \n").lower()
        for h in re.findall(r"<th[^>]*scope=\"col\".*?</th>", html, re.S)
    ]
    for column in ["public id", "title", "source", "messages", "last activity", "owner"]:
        assert any(header.startswith(column) for header in headers), (column, headers)
    assert conversation.public_id in html
    assert "Do you ship to Norway?" in html  # the title
    assert "member" in html  # the owner


def test_the_list_shows_how_many_messages_each_session_has(staff_client, conversation):
    response = staff_client.get("/admin/conversations/session/")

    row = next(r for r in re.findall(r"<tr.*?</tr>", response.content.decode(), re.S) if conversation.public_id in r)
    assert re.search(r'class="field-message_count[^"]*">3<', row), row


def test_the_list_costs_the_same_queries_however_many_sessions_it_shows(staff_client, django_user_model):
    def list_queries(sessions: int) -> int:
        for number in range(sessions):
            owner = django_user_model.objects.create_user(f"visitor{Session.objects.count()}")
            session = Session.objects.create(owner=owner, handled_by=django_user_model.objects.get(username="support"))
            session.add_message(MessageDraft(role=Role.USER, content=f"question {number}"))
        with CaptureQueriesContext(connection) as queries:
            response = staff_client.get("/admin/conversations/session/")
        assert response.status_code == 200
        return len(queries)

    assert list_queries(1) == list_queries(29)


def test_a_searched_list_counts_what_it_found_not_every_session(staff_client, conversation):
    Session.objects.create().add_message(MessageDraft(role=Role.USER, content="Where is my invoice?"))

    with CaptureQueriesContext(connection) as queries:
        response = staff_client.get("/admin/conversations/session/", {"q": "invoice"})

    html = response.content.decode()
    assert re.search(r"1 result\b", html)
    assert "Show all" in html and "2 total" not in html
    everything = [
        q["sql"]
        for q in queries
        if re.fullmatch(r'SELECT COUNT\(\*\) AS "__count" FROM "conversations_session"', q["sql"])
    ]
    assert everything == []


def test_each_rows_selection_checkbox_is_djangos_own_markup(conversation):
    conversation.title = 'Refund <b>"now"</b> & later'
    session_admin = admin.site._registry[Session]

    written = session_admin.action_checkbox(conversation)

    assert written == admin.ModelAdmin.action_checkbox(session_admin, conversation)
    assert "&lt;b&gt;&quot;now&quot;&lt;/b&gt; &amp; later" in written


def test_the_list_narrows_by_date_with_filters_not_a_date_bar(staff_client, conversation):
    response = staff_client.get("/admin/conversations/session/")

    assert response.context["cl"].date_hierarchy is None
    filters = [spec.title for spec in response.context["cl"].filter_specs]
    assert "last activity at" in filters and "created at" in filters


def test_search_finds_a_session_by_a_word_from_any_of_its_messages(staff_client, conversation):
    other = Session.objects.create()
    other.add_message(MessageDraft(role=Role.USER, content="Where is my invoice?"))

    response = staff_client.get("/admin/conversations/session/", {"q": "five working"})

    assert listed_ids(response) == {conversation.public_id}


def test_search_finds_a_session_by_its_id(staff_client, conversation):
    Session.objects.create()

    response = staff_client.get("/admin/conversations/session/", {"q": conversation.public_id})

    assert listed_ids(response) == {conversation.public_id}


def test_search_lists_each_session_once_however_many_messages_match(staff_client, conversation):
    response = staff_client.get("/admin/conversations/session/", {"q": "ship"})

    assert [s.public_id for s in response.context["cl"].result_list] == [conversation.public_id]


def test_a_search_on_postgresql_counts_its_matches_without_asking_the_database_again(
    on_postgres, staff_client, conversation
):
    for _ in range(3):
        Session.objects.create().add_message(MessageDraft(role=Role.USER, content="Where is my invoice?"))

    with CaptureQueriesContext(connection) as queries:
        response = staff_client.get("/admin/conversations/session/", {"q": "invoice"})
    counts = [q["sql"] for q in queries if 'COUNT(*) AS "__count" FROM "conversations_session"' in q["sql"]]
    filtered = staff_client.get("/admin/conversations/session/", {"q": "invoice", "source__exact": "page"})

    assert re.search(r"3 results\b", response.content.decode())
    assert len(listed_ids(response)) == 3
    assert counts and all("waiting_since" in sql for sql in counts)  # the "waiting" link's count alone
    assert re.search(r"0 results\b", filtered.content.decode())


def test_a_search_by_message_text_keeps_the_active_filters(staff_client, conversation):
    elsewhere = Session.objects.create(source="page")
    elsewhere.add_message(MessageDraft(role=Role.USER, content="Do you ship to Sweden?"))

    response = staff_client.get("/admin/conversations/session/", {"q": "ship", "source__exact": "page"})

    assert listed_ids(response) == {elsewhere.public_id}


def test_the_list_filters_by_source(staff_client, conversation):
    Session.objects.create(source="page")

    response = staff_client.get("/admin/conversations/session/", {"source__exact": "widget"})

    assert listed_ids(response) == {conversation.public_id}


def test_the_list_filters_by_owner(staff_client, conversation, django_user_model):
    Session.objects.create(owner=django_user_model.objects.create_user("someone"))
    Session.objects.create()

    response = staff_client.get("/admin/conversations/session/", {"owner__id__exact": conversation.owner_id})

    assert listed_ids(response) == {conversation.public_id}


def test_the_list_filters_by_date(staff_client, conversation):
    old = timezone.now() - timedelta(days=400)
    Session.objects.create(created_at=old, last_activity_at=old)
    midnight = conversation.created_at.replace(hour=0, minute=0, second=0, microsecond=0)

    # The "Today" link of the date filter, as the admin writes it.
    by_creation = staff_client.get("/admin/conversations/session/", {"created_at__gte": str(midnight)})
    by_activity = staff_client.get("/admin/conversations/session/", {"last_activity_at__year": midnight.year})

    assert listed_ids(by_creation) == {conversation.public_id}
    assert listed_ids(by_activity) == {conversation.public_id}


# --- A session's page -----------------------------------------------------------------


def test_the_session_page_shows_the_transcript_in_order(staff_client, conversation):
    response = staff_client.get(f"/admin/conversations/session/{conversation.pk}/change/")

    assert response.status_code == 200
    html = response.content.decode()
    positions = [
        html.index(text)
        for text in ["Do you ship to Norway?</", "Yes, within five working days.", "What does shipping cost?"]
    ]
    assert positions == sorted(positions)
    assert re.findall(r'data-seq="(\d+)"', html) == ["1", "2", "3"]
    assert 'class="msg msg-user"' in html and 'class="msg msg-assistant"' in html


def test_the_transcript_follows_seq_not_the_order_rows_were_written(staff_client):
    session = Session.objects.create()
    Message.objects.bulk_create(
        Message(session=session, seq=seq, role=Role.USER, content=f"line number {seq}") for seq in [3, 1, 2]
    )
    Session.objects.filter(pk=session.pk).update(last_seq=3)

    html = staff_client.get(f"/admin/conversations/session/{session.pk}/change/").content.decode()

    assert re.findall(r"line number (\d)", html) == ["1", "2", "3"]


def test_the_transcript_shows_a_visitors_html_as_text(staff_client):
    session = Session.objects.create()
    session.add_message(MessageDraft(role=Role.USER, content="<script>alert('hi')</script>"))

    html = staff_client.get(f"/admin/conversations/session/{session.pk}/change/").content.decode()

    assert "<script>alert(" not in html
    assert "&lt;script&gt;alert(" in html


def test_a_session_without_messages_says_so(staff_client):
    session = Session.objects.create()

    response = staff_client.get(f"/admin/conversations/session/{session.pk}/change/")

    assert response.status_code == 200
    assert "No messages yet." in response.content.decode()


def test_an_expired_session_can_still_be_read_in_the_admin(staff_client):
    session = Session.objects.create(expires_at=timezone.now() - timedelta(days=1))
    session.add_message(MessageDraft(role=Role.USER, content="Late question"))
    Session.objects.filter(pk=session.pk).update(expires_at=timezone.now() - timedelta(days=1))

    response = staff_client.get(f"/admin/conversations/session/{session.pk}/change/")

    assert response.status_code == 200
    assert "Late question" in response.content.decode()


# --- What the admin may not do ----------------------------------------------------------


def test_messages_cannot_be_edited_in_the_admin(admin_client, conversation):
    if admin.site.is_registered(Message):
        message_admin = admin.site._registry[Message]
        request = admin_client.get("/admin/").wsgi_request
        assert not message_admin.has_add_permission(request)
        assert not message_admin.has_change_permission(request)
        assert not message_admin.has_delete_permission(request)
    else:
        assert admin_client.get("/admin/conversations/message/").status_code == 404


def test_saving_a_session_in_the_admin_leaves_its_messages_alone(admin_client, conversation):
    before = list(conversation.messages.values_list("seq", "role", "content"))

    response = admin_client.post(
        f"/admin/conversations/session/{conversation.pk}/change/",
        {"title": "Shipping to Norway", "metadata": "{}", "content": "rewritten", "message": "rewritten"},
    )

    assert response.status_code == 302, response.content
    conversation.refresh_from_db()
    assert conversation.title == "Shipping to Norway"
    assert list(conversation.messages.values_list("seq", "role", "content")) == before


def test_sessions_are_not_created_in_the_admin(admin_client):
    assert admin_client.get("/admin/conversations/session/add/").status_code == 403


# --- Who may look ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/conversations/session/", "/admin/conversations/session/{pk}/change/"])
def test_signed_in_members_who_are_not_staff_are_sent_to_log_in(member, conversation, path):
    client = Client()
    client.force_login(member)

    response = client.get(path.format(pk=conversation.pk))

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert "Norway" not in response.content.decode()


@pytest.mark.parametrize("path", ["/admin/conversations/session/", "/admin/conversations/session/{pk}/change/"])
def test_anonymous_visitors_are_sent_to_log_in(client, conversation, path):
    response = client.get(path.format(pk=conversation.pk))

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_staff_without_permission_on_sessions_are_refused(django_user_model, conversation):
    client = Client()
    client.force_login(django_user_model.objects.create_user("intern", is_staff=True))

    assert client.get("/admin/conversations/session/").status_code == 403
    assert client.get(f"/admin/conversations/session/{conversation.pk}/change/").status_code == 403


BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
INVISIBLE = "\u200b\u2060\ufeff"


def test_bidi_controls_and_invisible_characters_cannot_reorder_what_staff_read(staff_client):
    session = Session.objects.create(title="Refund for \u202egnp.exe\u202c")
    session.add_message(MessageDraft(role=Role.USER, content="Pay\u200b to \u2066account\u2069 \u202e0987"))

    listed = staff_client.get("/admin/conversations/session/").content.decode()
    page = staff_client.get(f"/admin/conversations/session/{session.pk}/change/").content.decode()

    assert "Refund for gnp.exe" in listed
    assert "Pay to account 0987" in page
    transcript = page.split('aria-label="Transcript"')[1]
    for character in BIDI + INVISIBLE:
        assert character not in listed
        assert character not in transcript
    # Stored as written: the admin shows them removed, the record keeps them.
    assert session.messages.get().content == "Pay\u200b to \u2066account\u2069 \u202e0987"


def test_zero_width_joiners_stay_for_emoji_and_scripts(staff_client):
    Session.objects.create(title="👩\u200d💻 می\u200cخواهم")

    assert "👩\u200d💻 می\u200cخواهم" in staff_client.get("/admin/conversations/session/").content.decode()


# --- The knowledge base: each answer's sources, no-answer questions, content gaps ----------

XSS = "<img src=x onerror=alert(1)>"
NO_ANSWER = {"answer_status": "no_answer", "citations": []}


def session_of(*turns: tuple[str, str] | tuple[str, str, dict]) -> Session:
    """A session of (role, content) or (role, content, metadata) turns."""
    session = Session.objects.create()
    for role, text, *metadata in turns:
        session.add_message(MessageDraft(role, text, *metadata))
    return session


def transcript_of(client, session: Session) -> str:
    html = client.get(f"/admin/conversations/session/{session.pk}/change/").content.decode()
    return html.split('aria-label="Transcript"')[1]


# --- Sources in the transcript ----------------------------------------------------------


def test_the_transcript_lists_each_answers_sources(staff_client, settings):
    settings.CHATBOT_LINK_HOSTS = ["shop.example"]
    cited = [
        {"id": 1, "title": "Trail 2 tent", "url": "https://shop.example/tents/trail-2", "heading": "Tents > Trail 2",
         "snippet": "Sleeps two people."},
        {"id": 3, "title": "Care guide.pdf", "url": None, "heading": "", "snippet": "Rinse in cold water."},
    ]  # fmt: skip
    session = session_of(
        (Role.USER, "Which tent for two?"), (Role.ASSISTANT, "The Trail 2 [1]; wash it cold [3].", {"citations": cited})
    )

    transcript = transcript_of(staff_client, session)

    sources = re.search(r'<ol class="sources" aria-label="Sources of message 2">(.*?)</ol>', transcript, re.S)
    assert sources, transcript
    entries = re.findall(r"<li.*?</li>", sources.group(1), re.S)
    assert len(entries) == 2
    assert (
        '<li value="1"><a href="https://shop.example/tents/trail-2" target="_blank" rel="noopener noreferrer">'
        in (entries[0])
    )
    assert "Trail 2 tent</a>" in entries[0]
    assert "Tents &gt; Trail 2" in entries[0] and "Sleeps two people." in entries[0]
    # No URL: the title, without a link.
    assert entries[1].startswith('<li value="3">Care guide.pdf<') and "<a" not in entries[1]


def test_a_source_on_a_host_replies_may_not_link_to_is_shown_as_text(staff_client, settings):
    settings.CHATBOT_LINK_HOSTS = ["shop.example"]
    cited = [
        {"id": 1, "title": "Look-alike", "url": "https://evil.example/login", "heading": "", "snippet": "x"},
        {"id": 2, "title": "Script", "url": "javascript:alert(1)", "heading": "", "snippet": "y"},
    ]
    session = session_of((Role.USER, "Hi"), (Role.ASSISTANT, "See [1] and [2].", {"citations": cited}))

    transcript = transcript_of(staff_client, session)

    assert "Look-alike" in transcript and "Script" in transcript
    assert "evil.example" not in transcript and "javascript:" not in transcript


def test_markup_in_a_source_is_shown_as_text(staff_client):
    cited = [{"id": 1, "title": XSS, "url": None, "heading": XSS, "snippet": f"{XSS}\u202e"}]
    session = session_of((Role.USER, "Hi"), (Role.ASSISTANT, "See [1].", {"citations": cited}))

    transcript = transcript_of(staff_client, session)

    assert "<img" not in transcript
    assert transcript.count("&lt;img src=x onerror=alert(1)&gt;") == 3
    assert "\u202e" not in transcript


def test_answers_without_citations_and_malformed_ones_list_no_sources(staff_client):
    session = session_of(
        (Role.USER, "Hi"),
        (Role.ASSISTANT, "Hello.", {"citations": []}),
        (Role.ASSISTANT, "Odd.", {"citations": "not a list"}),
        (Role.ASSISTANT, "Odder.", {"citations": ["not an object"]}),
    )

    response = staff_client.get(f"/admin/conversations/session/{session.pk}/change/")

    assert response.status_code == 200
    assert 'class="sources"' not in response.content.decode()


# --- Sessions with questions the knowledge base did not answer -------------------------------


@pytest.fixture
def gaps():
    """Two sessions with a question the pages did not answer, one where all were answered."""
    return {
        "returns": session_of(
            (Role.USER, "Do you sell tents?"),
            (Role.ASSISTANT, "Yes [1].", {"answer_status": "answered"}),
            (Role.USER, "Can I return a tent I used?"),
            (Role.ASSISTANT, "I couldn't find that on this site.", NO_ANSWER),
        ),
        "warranty": session_of(
            (Role.USER, f"Warranty on stoves? {XSS}"),
            (Role.ASSISTANT, "I couldn't find that on this site.", NO_ANSWER),
        ),
        "answered": session_of(
            (Role.USER, "Which tent for two?"), (Role.ASSISTANT, "The Trail 2 [1].", {"answer_status": "answered"})
        ),
    }


def test_the_sessions_list_filters_by_no_answer_questions(staff_client, gaps):
    with_gaps = staff_client.get("/admin/conversations/session/", {"no_answer": "yes"})
    without = staff_client.get("/admin/conversations/session/", {"no_answer": "no"})

    assert listed_ids(with_gaps) == {gaps["returns"].public_id, gaps["warranty"].public_id}
    assert listed_ids(without) == {gaps["answered"].public_id}
    assert "Has no-answer questions" in with_gaps.content.decode()


def test_content_gaps_lists_the_unanswered_questions_newest_first_linked_to_their_transcripts(staff_client, gaps):
    response = staff_client.get("/admin/conversations/session/content-gaps/")

    assert response.status_code == 200
    html = response.content.decode()
    rows = re.findall(r"<tr>\s*<td>(.*?)</td>.*?<a href=\"([^\"]+)\"", html, re.S)
    transcript = "/admin/conversations/session/{}/change/#msg-{}"
    assert rows == [
        ("Warranty on stoves? &lt;img src=x onerror=alert(1)&gt;", transcript.format(gaps["warranty"].pk, 2)),
        ("Can I return a tent I used?", transcript.format(gaps["returns"].pk, 4)),
    ]
    assert "Which tent for two?" not in html and "Do you sell tents?" not in html


def test_the_sessions_list_links_to_content_gaps(staff_client):
    html = staff_client.get("/admin/conversations/session/").content.decode()

    assert 'href="/admin/conversations/session/content-gaps/"' in html


def test_content_gaps_says_so_when_there_are_none(staff_client):
    response = staff_client.get("/admin/conversations/session/content-gaps/")

    assert "No content gaps" in response.content.decode()


def test_content_gaps_cost_the_same_few_queries_however_many_there_are(staff_client, django_assert_max_num_queries):
    for number in range(30):
        session_of((Role.USER, f"question {number}"), (Role.ASSISTANT, "I couldn't find that.", NO_ANSWER))

    with django_assert_max_num_queries(8):
        response = staff_client.get("/admin/conversations/session/content-gaps/")

    assert len(response.context["page"].object_list) == 30


# --- Who may see content gaps ------------------------------------------------------------


def test_content_gaps_send_anonymous_visitors_and_members_to_log_in(client, member, gaps):
    signed_in = Client()
    signed_in.force_login(member)

    for visitor in (client, signed_in):
        response = visitor.get("/admin/conversations/session/content-gaps/")
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
        assert "return a tent" not in response.content.decode()


def test_content_gaps_refuse_staff_without_permission_on_sessions(django_user_model, gaps):
    client = Client()
    client.force_login(django_user_model.objects.create_user("intern", is_staff=True))

    response = client.get("/admin/conversations/session/content-gaps/")

    assert response.status_code == 403
    assert "return a tent" not in response.content.decode()
