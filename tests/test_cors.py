"""Cross-origin calls: only allowlisted origins, only under /api/, never with cookies."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.servers import ROOT

pytestmark = pytest.mark.django_db

SHOP = "https://shop.example.com"


@pytest.fixture
def allowlist(settings):
    settings.CORS_ALLOW_ALL_ORIGINS = False
    settings.CORS_ALLOWED_ORIGINS = [SHOP]


def preflight(client, path, origin):
    return client.options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
    )


def test_a_preflight_from_an_allowed_origin_is_answered_without_credentials(client, allowlist):
    response = preflight(client, "/api/chat", SHOP)

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == SHOP
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert "content-type" in response["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in response


def test_a_preflight_from_another_origin_is_refused(client, allowlist):
    response = preflight(client, "/api/chat", "https://evil.example.net")

    assert "Access-Control-Allow-Origin" not in response


def test_a_lookalike_origin_is_refused(client, allowlist):
    for origin in ["https://shop.example.com.evil.net", "http://shop.example.com", "https://x.shop.example.com"]:
        assert "Access-Control-Allow-Origin" not in preflight(client, "/api/chat", origin)


def test_paths_outside_the_api_get_no_cors_headers(client, allowlist):
    response = client.get("/healthz", HTTP_ORIGIN=SHOP)

    assert "Access-Control-Allow-Origin" not in response


def test_an_allowed_origin_can_read_api_answers(client, allowlist):
    response = client.post("/api/session/create", {}, content_type="application/json", HTTP_ORIGIN=SHOP)

    assert response.status_code == 201
    assert response["Access-Control-Allow-Origin"] == SHOP


def settings_under(env: dict[str, str]) -> dict:
    """The CORS settings a fresh process builds from ``env`` alone."""
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'all': s.CORS_ALLOW_ALL_ORIGINS, 'allowed': s.CORS_ALLOWED_ORIGINS, "
        "'credentials': s.CORS_ALLOW_CREDENTIALS, 'urls': s.CORS_URLS_REGEX}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CHATBOT_", "DEBUG", "SECRET_KEY"))}
    output = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "chatbot.settings", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(output.stdout)


def test_in_production_only_the_allowlist_from_the_environment_may_call():
    cors = settings_under(
        {"DEBUG": "false", "SECRET_KEY": "x" * 50, "CHATBOT_ALLOWED_ORIGINS": f"{SHOP}, https://www.example.org"}
    )

    assert cors == {
        "all": False,
        "allowed": [SHOP, "https://www.example.org"],
        "credentials": False,
        "urls": r"^/api/.*$",
    }


def test_in_production_with_no_allowlist_no_origin_may_call():
    cors = settings_under({"DEBUG": "false", "SECRET_KEY": "x" * 50})

    assert cors["all"] is False
    assert cors["allowed"] == []


def test_in_development_with_no_allowlist_any_origin_may_call():
    assert settings_under({"DEBUG": "true"})["all"] is True
