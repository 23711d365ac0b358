"""Session ids: what they look like, and how they are shortened for display.

Kept free of Django imports so the logging configuration can use it at start-up.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import unquote

PUBLIC_ID_BYTES = 24  # 192 bits of randomness
PUBLIC_ID_LENGTH = 32  # token_urlsafe(24) is 32 URL-safe characters
SHOWN_CHARS = 6

_CHAR = "[A-Za-z0-9_-]"
_ID_IN_TEXT = re.compile(
    rf"(?<!{_CHAR})({_CHAR}{{{SHOWN_CHARS}}}){_CHAR}{{{PUBLIC_ID_LENGTH - SHOWN_CHARS}}}(?!{_CHAR})"
)


_WHOLE_ID = re.compile(rf"{_CHAR}{{{PUBLIC_ID_LENGTH}}}")


def is_well_formed(public_id: str) -> bool:
    """Whether ``public_id`` could be an id at all. Checked before any query, since a
    database may choke on what a client can put in a URL (PostgreSQL on NUL)."""
    return bool(_WHOLE_ID.fullmatch(public_id))


def new_public_id() -> str:
    return secrets.token_urlsafe(PUBLIC_ID_BYTES)


def shorten(public_id: str) -> str:
    """Enough of an id to tell sessions apart in logs, too little to use it."""
    return f"{public_id[:SHOWN_CHARS]}…"


# A run of id characters and percent-escapes: a word of a URL as a log line writes it.
_URL_WORD = re.compile(r"(?:[A-Za-z0-9_-]|%[0-9A-Fa-f]{2})+")


def redact(text: str) -> str:
    """``text`` with every session id in it shortened, however a URL spelled it.

    Access logs write the request line as the client sent it, and Django decodes it
    before looking the id up: ``/chat?session=%51gYn8…`` names the session ``QgYn8…``.
    So each word is decoded as Django decodes it (and again, for ids escaped twice)
    before it is searched; a word that holds an id is written decoded and shortened.
    """
    return _URL_WORD.sub(_redact_word, text)


def _redact_word(match: re.Match) -> str:
    word = match.group(0)
    decoded = word
    for _ in range(3):
        if "%" not in decoded:
            break
        decoded = unquote(decoded)
    redacted = _ID_IN_TEXT.sub(r"\1…", decoded)
    return redacted if redacted != decoded else word
