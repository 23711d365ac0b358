"""The visitor's language: which one a request gets, the strings sent for it, the page
rendered in it, and the model told to answer in it. (In Chromium: tests/browser/test_languages.py.)"""

from __future__ import annotations

import gettext
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conversations.languages import browser_catalog, language_for
from tests.http import assert_error
from tests.test_settings import production_env, run, settings_under

REPO = Path(__file__).resolve().parent.parent
LOCALE = REPO / "locale"
SHIPPED = ["de", "es", "fr", "ar"]

pytestmark = pytest.mark.django_db


# --- Choosing the language ---------------------------------------------------------------


def test_the_first_language_asked_for_that_is_shipped_wins():
    assert language_for(["fr", "de"]) == "fr"
    assert language_for(["pt-BR", "pt", "es-MX", "en"]) == "es"


def test_a_regional_variant_counts_as_its_language():
    assert language_for(["de-AT"]) == "de"
    assert language_for(["AR-eg"]) == "ar"
    assert language_for(["en-US"]) == "en"


def test_a_language_not_shipped_falls_back_to_chatbot_language(settings):
    assert language_for(["pt"]) == "en"
    assert language_for([]) == "en"
    assert language_for(["", "x" * 200, "../../etc"]) == "en"

    settings.CHATBOT_LANGUAGE = "fr"

    assert language_for(["pt", "ja"]) == "fr"


def test_chatbot_language_must_be_a_shipped_language():
    assert settings_under(production_env(CHATBOT_LANGUAGE="de"), "CHATBOT_LANGUAGE") == {"CHATBOT_LANGUAGE": "de"}

    result = run(["manage.py", "check"], production_env(CHATBOT_LANGUAGE="pt"))

    assert result.returncode != 0
    assert "CHATBOT_LANGUAGE must be one of en, de, es, fr, ar" in result.stderr


def test_production_serves_static_files_through_the_minifying_storage():
    storages = settings_under(production_env(), "STORAGES")["STORAGES"]

    assert storages["staticfiles"]["BACKEND"] == "widget.storage.MinifiedManifestStaticFilesStorage"


# --- The widget's config: the language and its strings -----------------------------------


def test_the_widget_config_picks_the_language_and_sends_its_strings(api):
    body = api.get("/api/widget/config?lang=de-AT,de,en").json()

    assert body["language"] == "de"
    assert body["direction"] == "ltr"
    assert body["catalog"]["Open chat"] == "Chat öffnen"
    assert body["catalog"] == browser_catalog("de")


def test_the_widget_config_says_arabic_is_written_right_to_left(api):
    body = api.get("/api/widget/config?lang=ar").json()

    assert (body["language"], body["direction"]) == ("ar", "rtl")
    assert body["catalog"]["Send"] == "إرسال"


def test_english_sends_no_strings(api):
    body = api.get("/api/widget/config?lang=en-GB").json()

    assert (body["language"], body["direction"], body["catalog"]) == ("en", "ltr", {})


def test_the_widget_config_without_a_language_gets_chatbot_language(api, settings):
    settings.CHATBOT_LANGUAGE = "es"

    for url in ("/api/widget/config", "/api/widget/config?lang=pt-BR,ja"):
        body = api.get(url).json()
        assert body["language"] == "es"
        assert body["catalog"]["Send"] == "Enviar"


# --- The full page ------------------------------------------------------------------------


def html_root(content: str) -> tuple[str, str]:
    match = re.search(r'<html lang="([^"]+)" dir="([^"]+)">', content)
    assert match, content[:200]
    return match.group(1), match.group(2)


def inline_catalog(content: str) -> dict:
    match = re.search(r'<script id="cb-catalog" type="application/json">(.*?)</script>', content, re.S)
    assert match, "the page inlines no catalog"
    return json.loads(match.group(1))


def test_the_page_follows_the_browsers_accept_language(client):
    response = client.get("/chat", HTTP_ACCEPT_LANGUAGE="de-CH,de;q=0.9,en;q=0.5")
    content = response.content.decode()

    assert html_root(content) == ("de", "ltr")
    assert "Neues Gespräch" in content
    assert 'placeholder="Nachricht eingeben…"' in content
    assert '<h1 id="cb-title">Chatten Sie mit uns</h1>' in content
    assert "Hallo! Wie kann ich Ihnen heute helfen?" in content
    assert inline_catalog(content) == browser_catalog("de")
    assert response["Content-Language"] == "de"
    assert "Accept-Language" in response["Vary"]


def test_the_page_in_arabic_is_right_to_left(client):
    content = client.get("/chat?lang=ar").content.decode()

    assert html_root(content) == ("ar", "rtl")
    assert "محادثة جديدة" in content


def test_lang_in_the_address_beats_the_browser(client):
    content = client.get("/chat?lang=fr", HTTP_ACCEPT_LANGUAGE="de").content.decode()

    assert html_root(content) == ("fr", "ltr")
    assert "Nouvelle conversation" in content


def test_the_page_in_english_inlines_an_empty_catalog(client):
    content = client.get("/chat", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()

    assert html_root(content) == ("en", "ltr")
    assert inline_catalog(content) == {}
    assert "New conversation" in content


def test_a_page_in_no_shipped_language_gets_chatbot_language(client, settings):
    settings.CHATBOT_LANGUAGE = "es"

    content = client.get("/chat?lang=pt", HTTP_ACCEPT_LANGUAGE="ja").content.decode()

    assert html_root(content) == ("es", "ltr")
    assert "Nueva conversación" in content


def test_an_operators_own_title_and_greeting_are_shown_as_written(client, settings):
    settings.CHATBOT_PAGE_TITLE = "Ask Acme"
    settings.CHATBOT_GREETING = "Moin! Was suchst du?"

    content = client.get("/chat?lang=de").content.decode()

    assert '<h1 id="cb-title">Ask Acme</h1>' in content
    assert "Moin! Was suchst du?" in content


# --- The chat turn: the model answers in the visitor's language ---------------------------


def test_the_model_is_told_to_answer_in_the_visitors_language(api, fake_llm, settings):
    settings.CHATBOT_SYSTEM_PROMPT = "You are the Acme assistant."

    response = api.post("/api/chat", {"query": "Wie lange dauert der Versand?", "language": "de"}, format="json")

    assert response.status_code == 200
    system = fake_llm.last_messages[0]
    assert system["role"] == "system"
    assert system["content"].startswith("You are the Acme assistant.")
    assert "Answer in German (language code de), the visitor's language." in system["content"]


def test_the_instruction_stands_alone_when_there_is_no_system_prompt(api, fake_llm, settings):
    settings.CHATBOT_SYSTEM_PROMPT = ""

    api.post("/api/chat", {"query": "مرحبا", "language": "ar"}, format="json")

    assert fake_llm.last_messages[0] == {
        "role": "system",
        "content": "Answer in Arabic (language code ar), the visitor's language.",
    }


def test_a_turn_without_a_language_keeps_the_system_prompt_as_it_is(api, fake_llm, settings):
    settings.CHATBOT_SYSTEM_PROMPT = "You are the Acme assistant."

    api.post("/api/chat", {"query": "Hello"}, format="json")

    assert fake_llm.last_messages[0] == {"role": "system", "content": "You are the Acme assistant."}


def test_a_language_not_shipped_is_refused_before_anything_is_written(api, fake_llm):
    response = api.post("/api/chat", {"query": "Olá", "language": "pt"}, format="json")

    assert_error(response, 400)
    assert "language" in response.json()["fields"]
    assert fake_llm.requests == []


# --- The catalogs -------------------------------------------------------------------------


def po_files() -> list[Path]:
    return sorted(LOCALE.glob("*/LC_MESSAGES/*.po"))


def test_every_shipped_language_has_both_catalogs():
    assert sorted(str(p.relative_to(LOCALE)) for p in po_files()) == sorted(
        f"{language}/LC_MESSAGES/{domain}.po" for language in SHIPPED for domain in ("django", "djangojs")
    )


def po_entries(po: Path) -> list[tuple[str, str, bool]]:
    """(msgid, msgstr, fuzzy) of each entry after the header, continued lines joined."""
    entries = []
    for block in po.read_text(encoding="utf-8").split("\n\n")[1:]:
        fields: dict[str, str] = {}
        current = None
        for line in block.splitlines():
            if line.startswith(("msgid ", "msgstr ")):
                current, _, quoted = line.partition(" ")
                fields[current] = json.loads(quoted)
            elif line.startswith('"') and current:
                fields[current] += json.loads(line)
        entries.append((fields["msgid"], fields["msgstr"], "#, fuzzy" in block))
    return entries


@pytest.mark.parametrize("po", po_files(), ids=lambda p: str(p.relative_to(LOCALE)))
def test_every_string_is_translated(po):
    """No empty or fuzzy translation ships (a missing one would still show English)."""
    entries = po_entries(po)

    assert entries
    assert [msgid for msgid, msgstr, fuzzy in entries if not msgstr or fuzzy] == []


@pytest.mark.parametrize("po", po_files(), ids=lambda p: str(p.relative_to(LOCALE)))
def test_every_compiled_catalog_is_up_to_date_with_its_po_file(po, tmp_path):
    """A .po edited without `manage.py compilemessages` ships its old translations."""
    msgfmt = shutil.which("msgfmt")
    if msgfmt is None:
        if os.environ.get("CI") == "true":
            pytest.fail("msgfmt is missing; CI must check the compiled catalogs (./dev.sh test installs gettext)")
        pytest.skip("msgfmt is missing (apt-get install gettext)")
    compiled = tmp_path / "fresh.mo"
    subprocess.run([msgfmt, "--check-format", "-o", str(compiled), str(po)], check=True)  # noqa: S603

    committed = po.with_suffix(".mo")

    assert committed.exists(), f"{committed} is missing: run manage.py compilemessages"
    with compiled.open("rb") as fresh, committed.open("rb") as shipped:
        assert gettext.GNUTranslations(shipped)._catalog == gettext.GNUTranslations(fresh)._catalog, (
            f"{committed} is older than {po.name}: run manage.py compilemessages"
        )
