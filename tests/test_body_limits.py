"""CHATBOT_MAX_BODY_BYTES holds while the body arrives, on both servers the README names:
the Procfile's production command (uvicorn, ASGI) and the development server
(``manage.py runserver``, WSGI). A declared length over the limit is refused before the
body is sent, a chunked body is cut where it passes the limit, and nothing is written
to the server's temporary directory."""

from __future__ import annotations

import json
import os

import pytest
from django.urls import reverse

from conversations.bodylimits import KB_UPLOAD_PATH
from conversations.models import Session
from tests.http import RawConnection
from tests.servers import dev_server, procfile_server

LIMIT = 64 * 1024
UPLOAD_LIMIT = 4 * LIMIT
MB = 1024 * 1024


@pytest.fixture(scope="module", params=["production command", "development server"])
def server(request, django_db_setup, tmp_path_factory):
    """A real server with its own TMPDIR; yields (base URL, that directory)."""
    temp = tmp_path_factory.mktemp("server-tmp")
    log = tmp_path_factory.mktemp("server-log") / "server.log"
    start = procfile_server if request.param == "production command" else dev_server
    env = {"TMPDIR": str(temp), "CHATBOT_MAX_BODY_BYTES": str(LIMIT), "CHATBOT_KB_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT)}
    with start(env, log_path=log) as base_url:
        yield base_url, temp


def json_head(**extra: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "Connection": "keep-alive", **extra}


def assert_body_too_large(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 413
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {
        "success": False,
        "error": {"code": "body_too_large", "message": f"The request body may be at most {LIMIT} bytes."},
    }


@pytest.mark.parametrize("path", ["/api/chat", "/api/session/create", "/api/sessions/", "/admin/login/"])
def test_a_declared_100_mb_body_is_refused_before_it_is_sent(server, path):
    base_url, _ = server
    connection = RawConnection(base_url)
    connection.send_head("POST", path, json_head(**{"Content-Length": str(100 * MB)}))
    connection.send_body(b'{"query": "' + b"x" * 1000)

    # The rest never comes: an answer at all means the server did not wait for it.
    status, headers, body = connection.response()
    connection.close()

    assert_body_too_large(status, headers, body)
    assert headers["connection"] == "close"


def test_a_30_mb_chunked_body_is_cut_at_the_limit(server):
    base_url, temp = server
    connection = RawConnection(base_url)
    connection.send_head("POST", "/api/chat", json_head(**{"Transfer-Encoding": "chunked"}))
    piece = b"x" * (16 * 1024)
    while connection.sent < 30 * MB and not connection.answered():
        if not connection.send_body(piece, chunked=True):
            break  # the server has answered and hung up

    status, headers, body = connection.response()
    leftover = os.listdir(temp)
    connection.close()

    assert_body_too_large(status, headers, body)
    # Cut where it passed the limit; what was sent beyond sat in socket buffers.
    assert connection.sent < 30 * MB
    assert leftover == []


def test_a_large_declared_body_leaves_no_temporary_file(server):
    base_url, temp = server
    connection = RawConnection(base_url)
    connection.send_head("POST", "/api/session/create", json_head(**{"Content-Length": str(200 * MB)}))
    for _ in range(3 * MB // LIMIT):  # past Django's 2.5 MB in-memory threshold
        if connection.answered() or not connection.send_body(b"x" * LIMIT):
            break

    status, headers, body = connection.response()
    leftover = os.listdir(temp)  # looked at while the connection is still open
    connection.close()

    assert_body_too_large(status, headers, body)
    assert leftover == []


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_within_the_limit_is_read_like_any_other(server):
    base_url, _ = server
    connection = RawConnection(base_url)
    connection.send_head("POST", "/api/session/create", json_head(**{"Transfer-Encoding": "chunked"}))
    for part in [b'{"source": ', b'"widget", "metadata": {"from": "chunks"}}', b""]:
        connection.send_body(part, chunked=True)

    status, _, body = connection.response()
    connection.close()

    assert status == 201, body
    assert Session.objects.get(public_id=json.loads(body)["session_id"]).metadata == {"from": "chunks"}


def test_a_body_just_within_the_limit_is_accepted(server):
    base_url, _ = server
    payload = json.dumps({"metadata": {"pad": "x" * 100}, "source": "api"}).encode()
    payload += b" " * (LIMIT - len(payload))  # exactly the limit, with JSON whitespace
    connection = RawConnection(base_url)
    connection.send_head("POST", "/api/session/create", json_head(**{"Content-Length": str(len(payload))}))
    connection.send_body(payload)

    status, _, body = connection.response()
    connection.close()

    assert status in (201, 400), body  # read and judged by the API, not refused for its size
    assert json.loads(body).get("error", {}).get("code") != "body_too_large"


def test_the_admins_upload_of_knowledge_files_may_be_larger_and_is_bounded_too(server):
    assert reverse("admin:knowledge_source_upload") == KB_UPLOAD_PATH
    base_url, _ = server
    form = json_head(**{"Content-Type": "multipart/form-data; boundary=x"})

    within = RawConnection(base_url)
    within.send_head("POST", KB_UPLOAD_PATH, {**form, "Content-Length": str(2 * LIMIT)})
    within.send_body(b"x" * (2 * LIMIT))
    status, _, _ = within.response()
    within.close()
    assert status != 413  # read, then refused by the admin: nobody is logged in

    beyond = RawConnection(base_url)
    beyond.send_head("POST", KB_UPLOAD_PATH, {**form, "Content-Length": str(UPLOAD_LIMIT + 1)})
    status, _, body = beyond.response()
    beyond.close()
    assert status == 413
    assert json.loads(body)["error"]["code"] == "body_too_large"
