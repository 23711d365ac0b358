"""Every API error leaves as ``{"success": false, "error": {"code", "message"}}``.

This module is the one place where an error becomes HTTP. Services raise the domain's
errors (``conversations.exceptions``, ``conversations.llm.ModelError``) and
``api_error_for`` maps each to a status, a body and headers; a stream sends the same
body as its ``error`` event. Views may raise ``ApiError`` for what only the edge knows
(a role the caller may not write, a rate limit). ``retryable`` tells a client that
sending the same request again may succeed.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.db import OperationalError
from django.http import HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from psycopg_pool import PoolTimeout
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from conversations.exceptions import (
    Busy,
    ClientMessageIdReused,
    ConversationError,
    HandoffDisabled,
    MessageTooLong,
    OverBudget,
    SessionNotFound,
    StaffOnly,
)
from conversations.llm import ModelError, ModelFailure

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
        retry_after: int | None = None,
        extra: dict | None = None,
        headers: dict | None = None,
    ):
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        self.extra = extra or {}
        self.headers = headers or {}

    @classmethod
    def session_not_found(cls) -> ApiError:
        return api_error_for(SessionNotFound())

    @classmethod
    def internal(cls) -> ApiError:
        return cls(500, "internal_error", "Something went wrong on our side.", retryable=True)

    def body(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.retryable:
            error["retryable"] = True
        if self.retry_after is not None:
            error["retry_after"] = self.retry_after
        return {"success": False, "error": error, **self.extra}


def api_error_for(error: BaseException, *, session_id: str | None = None) -> ApiError:
    """The response for a domain error; ``session_id`` names the session a retry goes to."""
    if isinstance(error, OperationalError) and isinstance(error.__cause__, PoolTimeout):
        error = Busy(retry_after=settings.CHATBOT_BUSY_RETRY_AFTER)  # no connection free in time
    resumable = {"session_id": session_id} if session_id else {}
    if isinstance(error, SessionNotFound):
        # One body for unknown, expired, malformed and foreign ids: no oracle.
        return ApiError(404, "session_not_found", error.message)
    if isinstance(error, ClientMessageIdReused):
        return ApiError(409, "client_message_id_reused", error.message)
    if isinstance(error, StaffOnly):
        return ApiError(403, "staff_only", error.message)
    if isinstance(error, HandoffDisabled):
        return ApiError(403, "handoff_disabled", error.message)
    if isinstance(error, MessageTooLong):
        return ApiError(413, "message_too_long", error.message)
    if isinstance(error, Busy):
        return ApiError(
            503,
            "busy",
            error.message,
            retryable=True,
            retry_after=error.retry_after,
            extra={"session_id": error.session_id or session_id} if (error.session_id or session_id) else {},
            headers={"Retry-After": str(error.retry_after)},
        )
    if isinstance(error, OverBudget):
        return ApiError(
            429,
            "budget_exhausted",
            error.message,
            retryable=True,
            retry_after=error.retry_after,
            extra={"budget": error.budget},
            headers={"Retry-After": str(error.retry_after)},
        )
    if isinstance(error, ModelError):
        return ApiError(
            504 if error.kind == ModelFailure.TIMEOUT else 502,
            error.kind.value,
            f"{error.message} Nothing was saved; the request can be retried.",
            retryable=error.retryable,
            extra=resumable,
        )
    if isinstance(error, ConversationError):
        return ApiError(400, "invalid", error.message)
    return ApiError.internal()


def is_domain_error(error: BaseException) -> bool:
    """Whether ``error`` is an expected failure rather than a bug of ours."""
    if isinstance(error, OperationalError):
        return isinstance(error.__cause__, PoolTimeout)
    return isinstance(error, ConversationError | ModelError | ApiError)


def error_body(code: str, message: str) -> dict:
    return {"success": False, "error": {"code": code, "message": message}}


def api_exception_handler(exc, context):
    """DRF's exception handler, reshaped into our error body."""
    if isinstance(exc, ApiError):
        return Response(exc.body(), status=exc.status_code, headers=exc.headers)
    if is_domain_error(exc):
        error = api_error_for(exc)
        return Response(error.body(), status=error.status_code, headers=error.headers)
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


@csrf_exempt  # a POST gets this 404 too, not an HTML 403 for a form it never had
def session_not_found(request, *args, **kwargs):
    """For session URLs no route matches (an id with a slash in it, a message id that
    is not a number): the very bytes the API answers for any other id that is not there."""
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
