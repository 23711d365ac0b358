"""/api/schema/ and /api/docs/: the API describes itself, and its docs work offline."""

from __future__ import annotations

import re

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.templatetags.static import static
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    """The schema as JSON, fetched once for the module: it is the same for every test."""
    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200, response.content
    return response.json()


def test_the_schema_is_openapi_3(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"]


def test_the_schema_is_served_as_yaml_by_default(api):
    response = api.get("/api/schema/")

    assert response.status_code == 200
    assert yaml.safe_load(response.content)["openapi"].startswith("3.")


def test_the_schema_documents_every_endpoint_and_method(schema):
    methods = {path: set(operations) - {"parameters"} for path, operations in schema["paths"].items()}

    assert methods["/api/session/create"] == {"post"}
    assert methods["/api/session/{session_id}/messages"] == {"get", "post"}
    assert methods["/api/sessions/"] == {"get", "post"}
    assert methods["/api/sessions/{session_id}/"] == {"get", "patch", "delete"}
    assert methods["/api/sessions/{session_id}/messages/"] == {"get", "post"}
    assert methods["/api/chat"] == {"post"}
    assert methods["/api/session/{session_id}/rotate"] == {"post"}


def test_the_schema_names_the_new_id_a_rotation_answers_and_its_404(schema):
    rotate = schema["paths"]["/api/session/{session_id}/rotate"]["post"]
    answer = rotate["responses"]["200"]["content"]["application/json"]["schema"]
    name = answer["$ref"].rsplit("/", 1)[-1]

    assert {"success", "session_id"} <= set(schema["components"]["schemas"][name]["properties"])
    assert "404" in rotate["responses"]


def test_the_schema_documents_paging_and_the_404(schema):
    read = schema["paths"]["/api/session/{session_id}/messages"]["get"]

    assert {p["name"] for p in read["parameters"] if p["in"] == "query"} >= {"before", "limit"}
    assert "200" in read["responses"]
    assert "404" in read["responses"]


def test_the_schema_documents_the_error_body(schema):
    write = schema["paths"]["/api/session/{session_id}/messages"]["post"]

    assert {"201", "400", "403", "404"} <= set(write["responses"])
    error = write["responses"]["403"]["content"]["application/json"]["schema"]
    if "$ref" in error:
        error = schema["components"]["schemas"][error["$ref"].rsplit("/", 1)[-1]]
    assert set(error["properties"]) >= {"success", "error"}
    assert set(error["properties"]["error"]["properties"]) >= {"code", "message"}


def test_the_schema_names_the_fields_of_a_created_session(schema):
    created = schema["paths"]["/api/session/create"]["post"]["responses"]["201"]["content"]["application/json"]
    name = created["schema"]["$ref"].rsplit("/", 1)[-1]

    assert set(schema["components"]["schemas"][name]["properties"]) >= {
        "success",
        "session_id",
        "created_at",
        "expires_at",
    }


def test_the_docs_page_renders(api):
    response = api.get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "/api/docs/?script=" in response.content.decode()  # which names /api/schema/ (below)


def test_the_docs_page_loads_nothing_from_another_site(api):
    html = api.get("/api/docs/").content.decode()

    referenced = re.findall(r'\b(?:src|href)\s*=\s*["\']([^"\']+)["\']', html)
    assert referenced, "the page should load Swagger UI's script and style"
    for url in referenced:
        assert not re.match(r"^(?:[a-z][a-z0-9+.-]*:)?//", url, re.I), url
    assert not re.search(r"cdn|unpkg|jsdelivr|cdnjs|googleapis", html, re.I)


def test_every_file_the_docs_page_loads_is_one_of_our_static_files(api):
    html = api.get("/api/docs/").content.decode()
    prefix = static("")

    assets = re.findall(r'\b(?:src|href)\s*=\s*["\']([^"\']+)["\']', html)
    scripts = [url for url in assets if url.endswith(".js")]
    assert scripts, "Swagger UI's script must be on the page"
    assert "/api/docs/?script=" in assets  # the page's own initialising script (below)
    for url in assets:
        if url == "/api/docs/?script=":
            continue
        assert url.startswith(prefix), url
        assert finders.find(url.removeprefix(prefix).split("?")[0]), f"{url} is not among the static files"


def test_the_docs_page_is_under_the_pages_content_security_policy(api):
    response = api.get("/api/docs/")
    policy = dict(directive.split(" ", 1) for directive in response["Content-Security-Policy"].split("; "))

    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert response["Referrer-Policy"] == "no-referrer"


def test_the_docs_page_has_no_inline_script_or_style(api):
    html = api.get("/api/docs/").content.decode()

    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert "<style" not in html
    assert not re.search(r"\son[a-z]+\s*=", html)  # no inline event handlers either


def test_the_docs_pages_initialising_script_is_served_as_javascript(api):
    response = api.get("/api/docs/?script=")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert "/api/schema/" in response.content.decode()
