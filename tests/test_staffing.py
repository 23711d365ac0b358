"""Staff take a conversation over (conversations/staffing.py): the bot falls silent, the
visitor's messages are stored for staff, staff replies are stored as the answers they
are, and after hand back the bot answers again knowing what staff said."""

from __future__ import annotations

import json

import pytest

from conversations import staffing
from conversations.exceptions import EmptyReply, StaffOnly
from conversations.models import Message, Role, Session
from tests.http import Feed, post_json


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("ann", first_name="Ann", last_name="Lee", is_staff=True)


@pytest.fixture
def session(db):
    return Session.objects.create(source="widget")


def chat(api, session, query, **extra):
    response = api.post("/api/chat", {"query": query, "session_id": session.public_id, **extra}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_after_take_over_a_chat_turn_stores_the_visitors_message_and_asks_no_model(api, fake_llm, session, staff):
    staffing.take_over(session=session, staff=staff)

    answer = chat(api, session, "I need a human")

    assert fake_llm.requests == []
    assert answer["answer"] == ""
    assert answer["citations"] == []
    assert answer["answer_status"] == "with_staff"
    assert answer["messages"]["assistant"] is None
    assert answer["messages"]["user"]["content"] == "I need a human"
    assert [(m.seq, m.role) for m in session.messages.all()] == [(1, Role.USER)]


def test_a_streamed_turn_after_take_over_ends_with_the_same_answer(api, fake_llm, session, staff):
    staffing.take_over(session=session, staff=staff)

    response = api.post(
        "/api/chat", {"query": "Hello?", "session_id": session.public_id, "stream": True}, format="json"
    )
    frames = b"".join(response.streaming_content).decode().strip().split("\n\n")
    events = [
        (frame.split("\n")[0].removeprefix("event: "), json.loads(frame.split("data: ", 1)[1])) for frame in frames
    ]

    assert [name for name, _ in events] == ["session", "done"]
    assert events[1][1]["answer_status"] == "with_staff"
    assert events[1][1]["messages"]["assistant"] is None
    assert fake_llm.requests == []


def test_a_replayed_client_message_id_after_take_over_stores_nothing_twice(api, fake_llm, session, staff):
    staffing.take_over(session=session, staff=staff)

    first = chat(api, session, "Are you there?", client_message_id="m-1")
    again = chat(api, session, "Are you there?", client_message_id="m-1")

    assert (first["replayed"], again["replayed"]) == (False, True)
    assert again["answer_status"] == "with_staff"
    assert again["messages"]["user"]["id"] == first["messages"]["user"]["id"]
    assert session.messages.count() == 1


def test_a_staff_reply_is_an_assistant_message_with_the_staff_members_name(api, session, staff):
    staffing.take_over(session=session, staff=staff)

    reply = staffing.reply_as_staff(session=session, staff=staff, text="Hi, Ann here.")

    assert (reply.role, reply.author, reply.author_name) == (Role.ASSISTANT, staff, "Ann Lee")
    page = api.get(f"/api/session/{session.public_id}/messages").json()
    assert page["messages"][-1]["author_name"] == "Ann Lee"
    assert page["status"] == {"handled_by": "Ann Lee", "waiting": False}


def test_the_bots_messages_and_the_visitors_have_no_author_name(api, fake_llm, session):
    answer = chat(api, session, "Hello")

    assert answer["messages"]["user"]["author_name"] is None
    assert answer["messages"]["assistant"]["author_name"] is None


def test_a_staff_name_is_kept_on_the_message_when_the_account_goes(session, staff):
    reply = staffing.reply_as_staff(session=session, staff=staff, text="Bye")

    staff.delete()

    reply.refresh_from_db()
    assert (reply.author, reply.author_name) == (None, "Ann Lee")


def test_after_hand_back_the_bot_answers_with_the_staff_reply_in_its_context(api, fake_llm, session, staff):
    staffing.take_over(session=session, staff=staff)
    chat(api, session, "Can a person help?")
    staffing.reply_as_staff(session=session, staff=staff, text="Yes: your order ships on Monday.")
    staffing.hand_back(session=session, staff=staff)

    answer = chat(api, session, "Thanks, and the bot?")

    assert answer["answer_status"] != "with_staff"
    assert len(fake_llm.requests) == 1
    seen = [(m["role"], m["content"]) for m in fake_llm.last_messages]
    assert ("user", "Can a person help?") in seen
    assert ("assistant", "Yes: your order ships on Monday.") in seen
    assert seen[-1] == ("user", "Thanks, and the bot?")


def test_asking_for_a_person_marks_the_session_waiting_once_and_taking_over_clears_it(api, session, staff):
    staffing.ask_for_person(session=session)
    first_wait = Session.objects.get(pk=session.pk).waiting_since
    staffing.ask_for_person(session=session)

    assert first_wait is not None
    assert Session.objects.get(pk=session.pk).waiting_since == first_wait
    assert api.get(f"/api/session/{session.public_id}/messages").json()["status"] == {
        "handled_by": None,
        "waiting": True,
    }

    staffing.take_over(session=session, staff=staff)
    staffing.ask_for_person(session=session)

    assert Session.objects.get(pk=session.pk).waiting_since is None


def test_only_staff_may_take_over_reply_or_hand_back(session, member):
    with pytest.raises(StaffOnly):
        staffing.take_over(session=session, staff=member)
    with pytest.raises(StaffOnly):
        staffing.reply_as_staff(session=session, staff=member, text="hello")
    with pytest.raises(StaffOnly):
        staffing.hand_back(session=session, staff=member)
    assert Message.objects.count() == 0


def test_an_empty_staff_reply_is_refused(session, staff):
    with pytest.raises(EmptyReply):
        staffing.reply_as_staff(session=session, staff=staff, text="  \n")


@pytest.mark.usefixtures("transactional_db")
def test_the_visitors_message_and_the_staff_reply_reach_the_live_feed(live_url, live_hub, fake_llm, staff):
    status, created, _ = post_json(live_url, "/api/session/create", {"source": "widget"})
    session = Session.objects.get(public_id=created["session_id"])
    staffing.take_over(session=session, staff=staff)
    feed = Feed(live_url, f"/api/session/{session.public_id}/events")

    status, answer, _ = post_json(live_url, "/api/chat", {"query": "Hello, Ann?", "session_id": session.public_id})
    staffing.reply_as_staff(session=session, staff=staff, text="Hello! <b>Ann</b> here.")

    assert status == 200, answer
    assert answer["answer_status"] == "with_staff"
    visitor, reply = feed.messages(2)
    feed.close()
    assert (visitor["role"], visitor["content"], visitor["author_name"]) == ("user", "Hello, Ann?", None)
    assert (reply["role"], reply["content"], reply["author_name"]) == (
        "assistant",
        "Hello! <b>Ann</b> here.",
        "Ann Lee",
    )
    assert fake_llm.requests == []
