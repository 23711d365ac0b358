"""Every API error leaves as ``{"success": false, "error": {"code", "message"}}``.

Views raise ``ApiError`` (or let DRF raise its own exceptions); the exception handler
below is the one place that turns either into a response. ``retryable`` tells a client
that sending the same request again may succeed (the model was down or slow).
"""

from __future__ import annotations

import json
import logging

from django.http import HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

# Django's own logger for failed requests, so a bug answered here is logged (and mailed
# to ADMINS, where configured) exactly like one Django answered itself.
request_logger = logging.getLogger("django.request")


class ApiError(Exception):
    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        retryable: bool = False,
        extra: dict | None = None,
        headers: dict | None = None,
    ):
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.retryable = retryable
        self.extra = extra or {}
        self.headers = headers or {}

    @classmethod
    def session_not_found(cls) -> ApiError:
        # One body for unknown, expired, malformed and foreign ids: no oracle.
        return cls(404, "session_not_found", "No such session, or it has expired.")

    @classmethod
    def internal(cls) -> ApiError:
        return cls(500, "internal_error", "Something went wrong on our side.", retryable=True)

    @classmethod
    def from_model_error(cls, error, *, session) -> ApiError:
        return cls(
            error.status,
            error.code,
            f"{error.message} Nothing was saved; the request can be retried.",
            retryable=True,
            extra={"session_id": session.public_id},
        )

    def body(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.retryable:
            error["retryable"] = True
        return {"success": False, "error": error, **self.extra}


def error_body(code: str, message: str) -> dict:
    return {"success": False, "error": {"code": code, "message": message}}


def api_exception_handler(exc, context):
    """DRF's exception handler, reshaped into our error body."""
    if isinstance(exc, ApiError):
        return Response(exc.body(), status=exc.status_code, headers=exc.headers)
    response = drf_exception_handler(exc, context)
    if response is None:
        # A bug. Answered here rather than by handler500 so that an API client gets JSON
        # in development too, where Django would otherwise send its HTML debug page.
        request = context.get("request")
        request_logger.error("Internal Server Error: %s", getattr(request, "path", "?"), exc_info=exc)
        return Response(ApiError.internal().body(), status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    if isinstance(exc, exceptions.ValidationError):
        response.data = {
            **error_body("invalid", _first_message(exc.detail)),
            "fields": exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail},
        }
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = getattr(detail, "code", None) or _DEFAULT_CODES.get(response.status_code, "error")
        response.data = error_body(code, str(detail))
    return response


_DEFAULT_CODES = {
    status.HTTP_400_BAD_REQUEST: "invalid",
    status.HTTP_403_FORBIDDEN: "forbidden",
    status.HTTP_404_NOT_FOUND: "not_found",
    status.HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "unsupported_media_type",
}


def _first_message(detail) -> str:
    """The first human-readable message inside DRF's nested error detail."""
    while isinstance(detail, (list, dict)):
        if not detail:
            return "Invalid request."
        detail = next(iter(detail.values())) if isinstance(detail, dict) else detail[0]
    return str(detail)


def session_not_found(request, *args, **kwargs):
    """For session URLs no route matches (an id with a slash in it): the very bytes
    the API answers for any other id that is not there."""
    body = json.dumps(ApiError.session_not_found().body(), separators=(",", ":"))
    return HttpResponse(body, status=404, content_type="application/json")


def not_found(request, exception=None):
    """handler404: JSON under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """handler500: JSON under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(ApiError.internal().body(), status=500)
    return defaults.server_error(request)
