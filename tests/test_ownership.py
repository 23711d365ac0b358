"""Who may read a conversation: a signed-in user's sessions are theirs (and staff's);
an anonymous session belongs to whoever holds its id. Everyone else gets the common 404."""

from __future__ import annotations

import string

import pytest
from rest_framework.test import APIClient

from conversations.models import Session

pytestmark = pytest.mark.django_db

NOT_FOUND = {"success": False, "error": {"code": "session_not_found", "message": "No such session, or it has expired."}}


@pytest.fixture
def alice(django_user_model):
    client = APIClient()
    client.force_login(django_user_model.objects.create_user("alice", password="pw"))
    return client


@pytest.fixture
def mallory(django_user_model):
    client = APIClient()
    client.force_login(django_user_model.objects.create_user("mallory", password="pw"))
    return client


@pytest.fixture
def alices_session(alice, fake_llm):
    return alice.post("/api/chat", {"query": "my private question"}, format="json").json()["session_id"]


def test_a_signed_in_users_chat_session_is_owned_by_them(alices_session):
    assert Session.objects.get(public_id=alices_session).owner.username == "alice"


@pytest.mark.parametrize("who", ["mallory", "api"])
def test_others_get_the_same_404_as_for_an_unknown_id(request, alices_session, who):
    client = request.getfixturevalue(who)

    for response in [
        client.get(f"/api/session/{alices_session}/messages"),
        client.get(f"/api/sessions/{alices_session}/"),
        client.get(f"/api/sessions/{alices_session}/messages/"),
        client.post(f"/api/session/{alices_session}/messages", {"message": "hi"}, format="json"),
        client.post("/api/chat", {"query": "hi", "session_id": alices_session}, format="json"),
        client.delete(f"/api/sessions/{alices_session}/"),
    ]:
        assert response.status_code == 404
        assert response.json() == NOT_FOUND
    assert Session.objects.get(public_id=alices_session).last_seq == 2


def test_the_owner_and_staff_can_read_it(alice, staff_api, alices_session):
    for client in [alice, staff_api]:
        response = client.get(f"/api/session/{alices_session}/messages")
        assert response.status_code == 200
        assert response.json()["messages"][0]["content"] == "my private question"


def test_anonymous_sessions_are_never_listed(api, fake_llm):
    api.post("/api/chat", {"query": "hello"}, format="json")

    response = api.get("/api/sessions/")

    assert response.status_code == 200
    assert response.json()["results"] == []


def test_signed_in_users_list_only_their_own_sessions(alice, mallory, alices_session, fake_llm):
    mallory.post("/api/chat", {"query": "mallory's"}, format="json")

    listed = [s["session_id"] for s in alice.get("/api/sessions/").json()["results"]]

    assert listed == [alices_session]


def test_session_ids_are_long_random_and_unrelated(api):
    ids = [api.post("/api/session/create", {}, format="json").json()["session_id"] for _ in range(20)]

    assert len(set(ids)) == 20
    assert all(len(i) == 32 and set(i) <= set(string.ascii_letters + string.digits + "-_") for i in ids)
    assert len({i[:4] for i in ids}) > 15  # no shared prefix: not a counter or a timestamp


def test_a_client_cannot_choose_its_session_id(api):
    response = api.post("/api/session/create", {"session_id": "session_123"}, format="json")

    assert response.status_code == 201
    assert response.json()["session_id"] != "session_123"
    assert not Session.objects.filter(public_id="session_123").exists()
