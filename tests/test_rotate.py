"""POST /api/session/<id>/rotate: a visitor stops sharing a link.

The conversation gets a new id and keeps every message; the old id answers exactly what
an id that never existed answers, on every endpoint that takes one.
"""

from __future__ import annotations

import pytest

from conversations.ids import is_well_formed, new_public_id
from conversations.models import Session
from tests.http import assert_error

pytestmark = pytest.mark.django_db


def talk(api, session_id: str | None, query: str) -> dict:
    body = {"query": query, **({"session_id": session_id} if session_id else {})}
    response = api.post("/api/chat", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def rotate(api, session_id: str):
    return api.post(f"/api/session/{session_id}/rotate")


def rotated(api, session_id: str) -> str:
    response = rotate(api, session_id)
    assert response.status_code == 200, response.content
    return response.json()["session_id"]


def test_it_answers_the_new_id_and_the_old_one_no_longer_reaches_the_session(api, fake_llm):
    old_id = talk(api, None, "Do you ship to Norway?")["session_id"]

    response = rotate(api, old_id)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"success", "session_id", "created_at", "expires_at"}
    assert body["success"] is True
    assert body["session_id"] != old_id and is_well_formed(body["session_id"])
    assert Session.objects.get().public_id == body["session_id"]
    assert not Session.objects.filter(public_id=old_id).exists()


def test_the_new_id_continues_the_conversation_with_every_earlier_message(api, fake_llm):
    fake_llm.reset(echo=True)
    old_id = talk(api, None, "first question")["session_id"]
    talk(api, old_id, "second question")
    before = api.get(f"/api/session/{old_id}/messages").json()["messages"]

    new_id = rotated(api, old_id)
    after = api.get(f"/api/session/{new_id}/messages").json()["messages"]
    turn = talk(api, new_id, "third question")

    assert after == before
    assert turn["session_id"] == new_id
    assert (turn["messages"]["user"]["seq"], turn["messages"]["assistant"]["seq"]) == (5, 6)
    assert [m["content"] for m in fake_llm.last_messages if m["role"] == "user"] == [
        "first question",
        "second question",
        "third question",
    ]


# Every request that names a session, with {id} where the id goes. Each must answer the
# rotated id exactly as it answers an id that never existed.
REQUESTS_NAMING_A_SESSION = {
    "read the messages": ("get", "/api/session/{id}/messages", None),
    "write a message": ("post", "/api/session/{id}/messages", {"message": "still there?"}),
    "a chat turn": ("post", "/api/chat", {"query": "still there?", "session_id": "{id}"}),
    "a chat turn, ?session=": ("post", "/api/chat?session={id}", {"query": "still there?"}),
    "a streamed chat turn": ("post", "/api/chat", {"query": "still there?", "session_id": "{id}", "stream": True}),
    "open the live feed": ("get", "/api/session/{id}/events", None),
    "ask for a person": ("post", "/api/session/{id}/handoff", None),
    "rotate again": ("post", "/api/session/{id}/rotate", None),
    "the session resource": ("get", "/api/sessions/{id}/", None),
    "rename the session": ("patch", "/api/sessions/{id}/", {"title": "mine now"}),
    "erase the session": ("delete", "/api/sessions/{id}/", None),
    "the resource's messages": ("get", "/api/sessions/{id}/messages/", None),
    "write through the resource": ("post", "/api/sessions/{id}/messages/", {"message": "still there?"}),
}


def request_naming(api, request: tuple, session_id: str):
    method, path, body = request
    path = path.replace("{id}", session_id)
    if body is None:
        return getattr(api, method)(path)
    filled = {key: session_id if value == "{id}" else value for key, value in body.items()}
    return getattr(api, method)(path, filled, format="json")


@pytest.mark.parametrize("request_name", REQUESTS_NAMING_A_SESSION)
def test_the_old_id_answers_every_endpoint_as_an_unknown_id_does(api, fake_llm, settings, request_name):
    settings.CHATBOT_HANDOFF_ENABLED = True
    old_id = talk(api, None, "Hello")["session_id"]
    new_id = rotated(api, old_id)
    request = REQUESTS_NAMING_A_SESSION[request_name]

    revoked = request_naming(api, request, old_id)
    unknown = request_naming(api, request, new_public_id())

    assert_error(revoked, 404, "session_not_found")
    assert (revoked.status_code, revoked.content) == (unknown.status_code, unknown.content)
    assert Session.objects.get().public_id == new_id
    assert Session.objects.get().messages.count() == 2  # nothing written through the old id


def test_the_full_page_shows_the_old_link_as_it_shows_an_unknown_one(api, client, fake_llm):
    old_id = talk(api, None, "A question only the owner should see")["session_id"]
    rotated(api, old_id)
    never = new_public_id()

    revoked = client.get(f"/chat?session={old_id}")
    unknown = client.get(f"/chat?session={never}")

    assert revoked.status_code == unknown.status_code == 200
    assert revoked.context["not_found"] and revoked.context["session"] is None
    assert b"A question only the owner should see" not in revoked.content
    assert revoked.content.replace(old_id.encode(), b"ID") == unknown.content.replace(never.encode(), b"ID")


@pytest.mark.parametrize("kind", ["unknown", "malformed", "someone else's"])
def test_it_answers_an_id_it_may_not_use_with_the_same_404(api, django_user_model, kind):
    owner = django_user_model.objects.create_user("owner", password="pw")
    session_id = {
        "unknown": new_public_id(),
        "malformed": "not-an-id",
        "someone else's": Session.objects.create(owner=owner).public_id,
    }[kind]
    ids_before = set(Session.objects.values_list("public_id", flat=True))

    response = rotate(api, session_id)

    assert_error(response, 404, "session_not_found")
    assert response.content == api.get(f"/api/session/{new_public_id()}/messages").content
    assert set(Session.objects.values_list("public_id", flat=True)) == ids_before


def test_the_owner_of_a_signed_in_session_may_rotate_it(django_user_model):
    from rest_framework.test import APIClient

    owner = django_user_model.objects.create_user("owner", password="pw")
    client = APIClient()
    client.force_login(owner)
    session = Session.objects.create(owner=owner)

    new_id = rotated(client, session.public_id)

    assert client.get(f"/api/sessions/{new_id}/").status_code == 200
    session.refresh_from_db()
    assert session.public_id == new_id and session.owner == owner


def test_rotations_count_against_the_visitors_write_budget(api, settings):
    settings.CHATBOT_RATELIMIT_WRITE_IP = "2/m"
    session_id = Session.objects.create().public_id

    for _ in range(2):
        session_id = rotated(api, session_id)
    refused = rotate(api, session_id)

    assert_error(refused, 429, "rate_limited")
    assert refused["Retry-After"]
    assert Session.objects.get().public_id == session_id  # the refused one changed nothing
