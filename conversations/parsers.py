"""The one request parser: JSON, bounded in size and depth.

DRF's JSONParser reads the whole body whatever its length, and a deeply nested
document makes Python's json module hit the recursion limit, which DRF does not catch:
one request would cost the server its memory, the other would answer with a 500.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser


class BodyTooLarge(APIException):
    status_code = 413
    default_code = "body_too_large"


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        limit = settings.CHATBOT_MAX_BODY_BYTES
        length = request.META.get("CONTENT_LENGTH") if request is not None else None
        if length and length.isdigit() and int(length) > limit:
            raise BodyTooLarge(f"The request body may be at most {limit} bytes.")
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
