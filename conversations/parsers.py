"""The one request parser: JSON in UTF-8, bounded in size and depth, one value per key.

DRF's JSONParser reads the whole body whatever its length (DRF buffers it through
``request.body`` first, which raises ``RequestDataTooBig``, a 500, past Django's
2.5 MB), decodes it in whatever charset the client names (``charset=utf-7`` turns
``+ADw-script+AD4-`` into ``<script>``), keeps the last of duplicate keys, and lets a
deeply nested document hit the recursion limit. Every one of those is a parser
differential or a crash; here each is a 4xx. The servers refuse an oversized body
before it arrives (``conversations.bodylimits``); the limit is checked here again for
anything that reaches Django another way.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.utils.http import parse_header_parameters
from rest_framework.exceptions import APIException, ParseError, UnsupportedMediaType
from rest_framework.parsers import BaseParser

UTF_8 = {"utf-8", "utf8"}


class BodyTooLarge(APIException):
    status_code = 413
    default_code = "body_too_large"


class DuplicateKey(ValueError):
    pass


def refuse_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise DuplicateKey(f"duplicate key {duplicate!r}")
    return data


def refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


class BoundedJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        _, params = parse_header_parameters(media_type or self.media_type)
        charset = params.get("charset", "utf-8").strip().lower()
        if charset not in UTF_8:
            raise UnsupportedMediaType(media_type, detail="JSON bodies must be UTF-8.")
        limit = settings.CHATBOT_MAX_BODY_BYTES
        request = (parser_context or {}).get("request")
        length = request.META.get("CONTENT_LENGTH") if request is not None else None
        if length and length.isdigit() and int(length) > limit:
            raise BodyTooLarge(f"The request body may be at most {limit} bytes.")
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise BodyTooLarge(f"The request body may be at most {limit} bytes.")
        try:
            text = raw.decode("utf-8")
            return json.loads(text, object_pairs_hook=refuse_duplicate_keys, parse_constant=refuse_constant)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
        except UnicodeDecodeError:
            raise ParseError("JSON parse error - the body is not valid UTF-8.") from None
        except ValueError as error:  # json.JSONDecodeError, DuplicateKey, NaN and Infinity
            raise ParseError(f"JSON parse error - {error}") from None
