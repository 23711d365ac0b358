"""The visitor's language: which of the shipped languages a request gets, and the
strings the browser needs in it.

The widget, the full page and the model all follow one rule: the first language asked
for that we ship (a regional variant counts as its language, so de-AT is German), else
``CHATBOT_LANGUAGE``. English is the source language: its strings are in the code, so
it has no catalog to send.
"""

from __future__ import annotations

import gettext as gettext_module
from collections.abc import Iterable
from functools import lru_cache

from django.conf import settings
from django.utils.translation import get_language_info, get_supported_language_variant, gettext
from django.utils.translation.trans_real import parse_accept_lang_header

SOURCE_LANGUAGE = "en"
# A widget sends its data-lang and the browser's list; more than this is not a preference.
MAX_CANDIDATES = 10


def supported_languages() -> list[str]:
    return [code for code, _ in settings.LANGUAGES]


def language_for(candidates: Iterable[str]) -> str:
    """The first of ``candidates`` (language tags, best first) that we ship, else
    CHATBOT_LANGUAGE."""
    for candidate in list(candidates)[:MAX_CANDIDATES]:
        code = candidate.strip().lower().replace("_", "-")
        if not code:
            continue
        try:
            return get_supported_language_variant(code)
        except LookupError:
            continue
    return settings.CHATBOT_LANGUAGE


def listed(value: str) -> list[str]:
    """``?lang=de-AT,de,en`` as a list."""
    return value.split(",")[:MAX_CANDIDATES]


def page_language(request) -> str:
    """The full page's language: ``?lang=``, else the browser's Accept-Language."""
    asked = listed(request.GET.get("lang", ""))
    accepted = [code for code, _ in parse_accept_lang_header(request.headers.get("Accept-Language", ""))]
    return language_for([*asked, *(code for code in accepted if code != "*")])


def translated(text: str) -> str:
    """An operator's setting in the active language: the defaults are in the catalogs, an
    operator's own text is not and stays as written. (gettext("") would be the catalog's
    header.)"""
    return gettext(text) if text else text


def is_right_to_left(language: str) -> bool:
    return get_language_info(language)["bidi"]


def language_name(language: str) -> str:
    """The language's English name, as the model is told it ("German")."""
    return get_language_info(language)["name"]


@lru_cache
def browser_catalog(language: str) -> dict[str, str]:
    """The browser's strings (the djangojs domain) translated into ``language``: what
    conversation.js's gettext looks up. A string with no translation is left out, and
    gettext then shows the English it was written in."""
    if language == SOURCE_LANGUAGE:
        return {}
    for path in settings.LOCALE_PATHS:
        try:
            translation = gettext_module.translation("djangojs", str(path), languages=[language])
        except FileNotFoundError:
            continue
        return {key: text for key, text in translation._catalog.items() if isinstance(key, str) and key and text}
    return {}
