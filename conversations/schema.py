"""OpenAPI: document the error body and the error statuses every operation can answer.

drf-spectacular documents what a view returns on success; the errors come from one
exception handler (conversations.errors), so they are documented in one place too.
"""

from __future__ import annotations

ERROR = {
    "type": "object",
    "description": 'Every error: {"success": false, "error": {"code", "message"}}.',
    "properties": {
        "success": {"type": "boolean", "enum": [False]},
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "example": "session_not_found"},
                "message": {"type": "string"},
                "retryable": {"type": "boolean", "description": "Sending the same request again may succeed."},
            },
            "required": ["code", "message"],
        },
        "session_id": {"type": "string", "description": "On chat errors: the session the retry should name."},
        "fields": {"type": "object", "description": "On validation errors: the messages for each field."},
    },
    "required": ["success", "error"],
}

COMMON = {
    "400": "The request is invalid; `fields` says why.",
    "429": "Too many requests; see the Retry-After header.",
}
WITH_BODY = {
    "413": "The body or the message is too long.",
    "415": "The body must be JSON.",
}
WITH_SESSION = {"404": "No such session, or it has expired (the same answer for every id that is not yours)."}
WRITES_ROLES = {"403": "Only staff or the server API key may write assistant or system messages."}


def document_errors(result, generator, request, public):
    """A drf-spectacular postprocessing hook."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            errors = dict(COMMON)
            if method in {"post", "put", "patch"}:
                errors |= WITH_BODY
            if "{session_id}" in path:
                errors |= WITH_SESSION
            if path.endswith("/messages") or path.endswith("/messages/"):
                errors |= WRITES_ROLES if method == "post" else {}
            for status, description in errors.items():
                operation["responses"].setdefault(status, {"description": description, "content": reference})
            for status, response in operation["responses"].items():
                if status[0] in "45" and "content" not in response:
                    response["content"] = reference
    return result
