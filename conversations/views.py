"""The JSON API: thin views that parse, call a model method or service, serialize."""

from __future__ import annotations

import asyncio
import binascii
import logging
from base64 import b64decode

from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import connection, transaction
from django.http import JsonResponse, StreamingHttpResponse
from django.utils.dateparse import parse_datetime
from django.utils.timezone import is_naive
from django.views import defaults
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import CursorPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations import chat, feedback, feeds, inflight, languages, live, ratelimits, staffing, streaming
from conversations.display import link_hosts
from conversations.errors import ApiError, api_error_for, error_body
from conversations.exceptions import ConversationError, SessionNotFound
from conversations.llm import ModelError
from conversations.models import MessageDraft, Session
from conversations.permissions import can_write_role
from conversations.serializers import (
    RATINGS,
    ChatRequestSerializer,
    ChatResponseSerializer,
    FeedbackGivenSerializer,
    FeedbackRequestSerializer,
    FeedQuerySerializer,
    HandoffSerializer,
    MessageCreatedSerializer,
    MessageCreateSerializer,
    MessagePageSerializer,
    MessageSerializer,
    PageQuerySerializer,
    SessionCreatedSerializer,
    SessionCreateSerializer,
    SessionRotatedSerializer,
    SessionSerializer,
    SessionUpdateSerializer,
    WidgetConfigSerializer,
    chat_turn_data,
    feedback_data,
    message_data,
    message_page_data,
)

logger = logging.getLogger(__name__)

PAGE_PARAMETERS = [
    OpenApiParameter("before", int, description="Only messages with a smaller seq (the previous page)."),
    OpenApiParameter("limit", int, description="Page size (default 50, at most 200)."),
]
NOT_FOUND = OpenApiResponse(description="No such session, or it has expired.")
HANDOFF_DISABLED = OpenApiResponse(description="handoff_disabled: this site does not offer a person.")


def readable_session(request, session_id: str) -> Session:
    session = Session.objects.readable_by(session_id, request.user)
    if session is None:
        raise SessionNotFound
    return session


def message_page(request, session: Session) -> Response:
    query = PageQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    messages, has_more = session.messages.page_before(
        query.validated_data.get("before"), query.validated_data.get("limit", settings.CHATBOT_PAGE_SIZE)
    )
    return Response(message_page_data(session, messages, has_more))


def add_message(request, session: Session) -> Response:
    ratelimits.limit_message_write(request, session_id=session.public_id)
    incoming = MessageCreateSerializer(data=request.data)
    incoming.is_valid(raise_exception=True)
    data = incoming.validated_data
    if not can_write_role(request, data["role"]):
        raise ApiError(403, "role_forbidden", f"Only the server may write {data['role']} messages.")
    draft = MessageDraft(role=data["role"], content=data["message"], metadata=data["metadata"], channel=data["channel"])
    try:
        message = session.add_message(draft)
    except Session.DoesNotExist:
        raise SessionNotFound from None  # erased, or its id rotated, since it was read
    created = {"success": True, "session_id": session.public_id, "message": message_data(message)}
    return Response(created, status=status.HTTP_201_CREATED)


def owner_of(request):
    return request.user if request.user.is_authenticated else None


class JSONEvenForEventStreams(DefaultContentNegotiation):
    """A client asking for text/event-stream gets the stream, which needs no renderer,
    or, when something fails before the stream starts, a JSON error; never a 406."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class SessionCreateView(APIView):
    """POST /api/session/create — the integration guide's endpoint."""

    @extend_schema(request=SessionCreateSerializer, responses={201: SessionCreatedSerializer})
    def post(self, request):
        ratelimits.limit_session_create(request)
        incoming = SessionCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        session = Session.objects.create(owner=owner_of(request), **incoming.validated_data)
        return Response(SessionCreatedSerializer(session).data, status=status.HTTP_201_CREATED)


class SessionMessagesView(APIView):
    """GET and POST /api/session/<id>/messages — the integration guide's endpoints."""

    @extend_schema(parameters=PAGE_PARAMETERS, responses={200: MessagePageSerializer, 404: NOT_FOUND})
    def get(self, request, session_id):
        return message_page(request, readable_session(request, session_id))

    @extend_schema(request=MessageCreateSerializer, responses={201: MessageCreatedSerializer, 404: NOT_FOUND})
    def post(self, request, session_id):
        return add_message(request, readable_session(request, session_id))


class SessionEventsView(APIView):
    """GET /api/session/<id>/events — the session's live feed (``conversations.feeds``)."""

    content_negotiation_class = JSONEvenForEventStreams

    @extend_schema(
        parameters=[
            OpenApiParameter("after", int, description="Resume after this seq (the Last-Event-ID header wins)."),
            OpenApiParameter("Last-Event-ID", int, OpenApiParameter.HEADER, description="The last seq received."),
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                response={"type": "string"},
                description=(
                    "Server-Sent Events, open until the client leaves: `retry: 3000`, then `status` "
                    '({"handled_by", "waiting"}), then every message after the resume point in seq order as '
                    "`message` (id: its seq; data: the message JSON), `typing` "
                    '({"author_name"}) when a turn starts being answered, `status` on every change, and '
                    "`: ping` comments as heartbeats. Without a resume point it starts after the newest message."
                ),
            ),
            404: NOT_FOUND,
        },
    )
    def get(self, request, session_id):
        try:
            session = readable_session(request, session_id)
        finally:
            inflight.release_connection()
        last_event_id = request.headers.get("Last-Event-ID")
        query = FeedQuerySerializer(data={"after": last_event_id} if last_event_id else request.query_params)
        query.is_valid(raise_exception=True)
        after = query.validated_data.get("after", session.last_seq)
        return feeds.feed_response(session=session, after=after, is_asgi=isinstance(request._request, ASGIRequest))


class SessionHandoffView(APIView):
    """POST /api/session/<id>/handoff — the visitor asks for a person (``staffing.ask_for_person``)."""

    @extend_schema(request=None, responses={200: HandoffSerializer, 403: HANDOFF_DISABLED, 404: NOT_FOUND})
    def post(self, request, session_id):
        session = readable_session(request, session_id)
        ratelimits.limit_message_write(request, session_id=session.public_id)
        session = staffing.ask_for_person(session=session)
        return Response({"success": True, "session_id": session.public_id, "status": session.live_status()})


class MessageFeedbackView(APIView):
    """POST /api/session/<id>/messages/<message id>/feedback — the visitor rates one of
    the bot's answers, changes the rating, or withdraws it with ``"rating": null``
    (``conversations.feedback``). Any message that is not one of this session's answers
    gets the unknown session's 404."""

    @extend_schema(request=FeedbackRequestSerializer, responses={200: FeedbackGivenSerializer, 404: NOT_FOUND})
    def post(self, request, session_id, message_id):
        session = readable_session(request, session_id)
        ratelimits.limit_message_write(request, session_id=session.public_id)
        incoming = FeedbackRequestSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        rating, comment = incoming.validated_data["rating"], incoming.validated_data["comment"]
        message = feedback.rateable_answer(session=session, message_id=message_id)
        if rating is None:
            feedback.withdraw_feedback(message=message)
            stored = None
        else:
            stored = feedback.give_feedback(message=message, rating=RATINGS[rating], comment=comment)
        body = {"success": True, "session_id": session.public_id, "message_id": message.pk}
        return Response({**body, "feedback": feedback_data(stored)})


class SessionRotateView(APIView):
    """POST /api/session/<id>/rotate — stop sharing a link: the conversation gets a new
    id, and the old one answers 404 from now on (``Session.rotate_public_id``)."""

    @extend_schema(request=None, responses={200: SessionRotatedSerializer, 404: NOT_FOUND})
    def post(self, request, session_id):
        session = readable_session(request, session_id)
        ratelimits.limit_message_write(request, session_id=session.public_id)
        try:
            session.rotate_public_id()
        except Session.DoesNotExist:
            raise SessionNotFound from None  # rotated by another request a moment ago
        return Response(SessionRotatedSerializer(session).data)


class RecentActivityPagination(CursorPagination):
    ordering = ("-last_activity_at", "-id")
    page_size = 50

    def decode_cursor(self, request):
        """DRF's decoding, stricter: a cursor we did not write is a 400, not a missing
        page, and never reaches the query (a position that is not a timestamp, such as
        base64 of ``p=garbage``, would make the ORM raise a 500)."""
        encoded = request.query_params.get(self.cursor_query_param)
        try:
            if encoded is not None:
                b64decode(encoded.encode("ascii"), validate=True)  # DRF's own decoding discards junk
            cursor = super().decode_cursor(request)
            if cursor is not None and cursor.position is not None:
                position = parse_datetime(cursor.position[:64])
                if position is None or is_naive(position):
                    raise ValueError(cursor.position)
        except (NotFound, ValueError, binascii.Error):
            raise ValidationError({"cursor": ["Invalid cursor."]}) from None
        return cursor


class SessionViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Sessions as a REST resource. Listing shows staff every session and a signed-in
    user their own; anonymous sessions are reached only through their id."""

    lookup_field = "public_id"
    lookup_url_kwarg = "session_id"
    lookup_value_regex = "[^/]+"
    pagination_class = RecentActivityPagination
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return Session.objects.active().visible_to(self.request.user)

    def get_serializer_class(self):
        if self.action == "partial_update":
            return SessionUpdateSerializer
        if self.action == "messages":
            return MessageSerializer
        return SessionSerializer

    def get_object(self):
        return readable_session(self.request, self.kwargs["session_id"])

    def update(self, request, *args, **kwargs):
        ratelimits.limit_session_write(request, session_id=kwargs["session_id"])
        return super().update(request, *args, **kwargs)

    def destroy(self, request, *args, **kwargs):
        ratelimits.limit_session_write(request, session_id=kwargs["session_id"])
        return super().destroy(request, *args, **kwargs)

    def perform_update(self, serializer):
        try:
            serializer.save()
        except Session.DoesNotExist:
            raise SessionNotFound from None  # erased, or its id rotated, since it was read

    def perform_destroy(self, session):
        # Under the row lock, so a rotation committed after the session was read wins.
        with transaction.atomic():
            if not Session.objects.select_for_update().filter(pk=session.pk, public_id=session.public_id).exists():
                raise SessionNotFound
            session.delete()

    def perform_create(self, serializer):
        ratelimits.limit_session_create(self.request)
        serializer.save(owner=owner_of(self.request))

    @extend_schema(parameters=PAGE_PARAMETERS, responses={200: MessagePageSerializer, 404: NOT_FOUND})
    @action(detail=True, methods=["get"])
    def messages(self, request, session_id=None):
        return message_page(request, self.get_object())

    @extend_schema(request=MessageCreateSerializer, responses={201: MessageCreatedSerializer, 404: NOT_FOUND})
    @messages.mapping.post
    def add_message(self, request, session_id=None):
        return add_message(request, self.get_object())


class ChatView(APIView):
    """POST /api/chat — one turn: the query in, the model's answer out, both stored.

    The view only prepares the turn (in the request's thread, with the database) and
    starts it in a task of its own (``conversations.inflight``); the answer is awaited on
    the event loop, holding no thread and no database connection. With
    ``"stream": true`` (or ``Accept: text/event-stream``) it arrives as Server-Sent Events.
    """

    content_negotiation_class = JSONEvenForEventStreams

    @extend_schema(
        request=ChatRequestSerializer,
        responses={
            (200, "application/json"): ChatResponseSerializer,
            (200, "text/event-stream"): OpenApiResponse(
                response={
                    "type": "object",
                    "properties": {
                        "event": {"type": "string", "enum": ["session", "delta", "done", "error"]},
                        "data": {"type": "string", "description": "JSON"},
                    },
                    "required": ["event", "data"],
                },
                description=(
                    "With stream=true or Accept: text/event-stream: Server-Sent Events `session` "
                    '({"session_id"}), then `delta` ({"text"}) as the answer arrives, then `done` (the JSON '
                    "answer above) or `error` (the error body)."
                ),
            ),
            404: NOT_FOUND,
            409: OpenApiResponse(description="The client_message_id was used for a different message."),
            413: OpenApiResponse(description="The query is too long."),
            429: OpenApiResponse(
                description=(
                    "rate_limited, or budget_exhausted: a daily token budget (`budget`: session, address or "
                    "global) is used up. Nothing was saved; Retry-After says when to retry."
                )
            ),
            502: OpenApiResponse(description="The model failed; nothing was saved; retry."),
            503: OpenApiResponse(description="Busy: nothing was saved; retry after Retry-After seconds."),
            504: OpenApiResponse(description="The model timed out; nothing was saved; retry."),
        },
    )
    def post(self, request):
        incoming = ChatRequestSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        session_id = data.get("session_id") or request.query_params.get("session") or None
        ratelimits.limit_chat_turn(request, session_id=session_id)
        admission = inflight.admission_for(request._request)
        try:
            turn = chat.prepare_turn(
                session_id=session_id,
                user=request.user,
                query=data["query"],
                channel=data["channel"],
                client_message_id=data.get("client_message_id"),
                address=ratelimits.client_ip(request),
                language=data.get("language"),
            )
        except BaseException:
            admission.release()
            raise
        finally:
            inflight.release_connection()
        if session_id and not turn.replay and not turn.answered_elsewhere:
            # Other views of this session show that an answer is on its way.
            live.publish(turn.session.pk, "typing", {"author_name": None})
        is_asgi = isinstance(request._request, ASGIRequest)
        if data["stream"] or "text/event-stream" in request.headers.get("Accept", ""):
            return turn_event_stream(turn, admission, is_asgi=is_asgi)
        if is_asgi:
            started = start_turn(turn, admission, loop=inflight.request_loop())
            return streaming.AwaitedResponse(awaited_answer(turn, started))
        return Response(chat_turn_data(answer_here(turn, admission)))


def start_turn(turn: chat.Turn, admission: inflight.Admission, *, loop, on_delta=None) -> asyncio.Future:
    """Run the rest of the turn on ``loop``, in a task that outlives this request."""
    answering = (turn.session.pk, turn.client_message_id) if turn.owns_reservation else None
    coroutine = chat.run_turn(turn, database=inflight.on_database_thread, on_delta=on_delta)
    admission.handed_to_turn = True
    task = inflight.run_admitted(coroutine, admission=admission, answering=answering)
    return asyncio.run_coroutine_threadsafe(task, loop)


def awaited_answer(turn: chat.Turn, started):
    async def produce() -> tuple[int, bytes, dict]:
        try:
            # Shielded: a visitor who leaves cancels only the waiting, never the turn.
            result = await asyncio.shield(asyncio.wrap_future(started))
        except Exception as error:
            failure = api_error_for(error, session_id=turn.session.public_id)
            return failure.status_code, JSONRenderer().render(failure.body()), failure.headers
        return 200, JSONRenderer().render(chat_turn_data(result)), {}

    return produce


def answer_here(turn: chat.Turn, admission: inflight.Admission) -> chat.TurnResult:
    """The development server's plain turn: its thread waits, so its database work stays
    on that thread (and on the test's transaction, under the test client)."""
    try:
        return async_to_sync(chat.run_turn)(turn, database=inflight.on_request_thread)
    except (ModelError, ConversationError) as error:
        raise api_error_for(error, session_id=turn.session.public_id) from error
    finally:
        admission.release()


def turn_event_stream(turn: chat.Turn, admission: inflight.Admission, *, is_asgi: bool) -> StreamingHttpResponse:
    """The SSE answer: ``session``, then ``delta``s, then ``done`` (or ``error``)."""
    channel = streaming.EventChannel()
    started = start_turn(
        turn,
        admission,
        loop=inflight.request_loop() if is_asgi else inflight.background_loop(),
        on_delta=lambda text: channel.put("delta", text),
    )

    def finished(future) -> None:
        if future.cancelled():
            channel.put("error", ApiError.internal())
        elif future.exception() is not None:
            channel.put("error", api_error_for(future.exception(), session_id=turn.session.public_id))
        else:
            channel.put("done", future.result())
        channel.close()

    started.add_done_callback(finished)

    def encode(event, payload) -> bytes:
        if event == "delta":
            return streaming.sse("delta", {"text": payload})
        if event == "done":
            return streaming.sse("done", chat_turn_data(payload))
        return streaming.sse("error", payload.body())

    first = streaming.sse("session", {"session_id": turn.session.public_id})
    return streaming.event_stream_response(first, channel, encode, is_async=is_asgi)


class WidgetConfigView(APIView):
    """GET /api/widget/config — what the widget needs from the server: where links in
    replies may go. Cached for a few minutes; an operator's change reaches every widget
    within them."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "lang",
                str,
                description=(
                    "The visitor's languages, best first, comma-separated (the widget's data-lang, then "
                    "the browser's): the first one shipped is chosen, else CHATBOT_LANGUAGE."
                ),
            )
        ],
        responses={200: WidgetConfigSerializer},
    )
    def get(self, request):
        language = languages.language_for(languages.listed(request.query_params.get("lang", "")))
        config = {
            "success": True,
            "link_hosts": sorted(link_hosts()),
            "handoff": settings.CHATBOT_HANDOFF_ENABLED,
            "language": language,
            "direction": "rtl" if languages.is_right_to_left(language) else "ltr",
            "catalog": languages.browser_catalog(language),
        }
        response = Response(config)
        response["Cache-Control"] = "public, max-age=300"
        return response


def bad_request(request, exception=None):
    """handler400, for what Django refuses before any view (a Host not in ALLOWED_HOSTS,
    a request it cannot decode): JSON under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("bad_request", "The request could not be understood."), status=400)
    return defaults.bad_request(request, exception)


def healthz(request):
    """200 when the database answers, 503 when it does not (for load balancers)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        logger.exception("Health check: the database did not answer")
        return JsonResponse(error_body("database_unavailable", "The database did not answer."), status=503)
    return JsonResponse({"success": True, "status": "ok"})
