"""Staff read transcripts here, live, and may take a conversation over from the bot.
Messages are records of what was said: the admin shows them and never edits them."""

from __future__ import annotations

import re

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import BooleanField, Exists, F, OuterRef, Subquery
from django.db.models.expressions import RawSQL
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from conversations import export, search, staffing
from conversations.display import link_host, link_hosts, visible
from conversations.errors import api_error_for
from conversations.exceptions import ConversationError
from conversations.models import AnswerStatus, Feedback, Message, Rating, Role, Session, display_name
from widget.headers import content_security_policy

# A session can hold thousands of messages; the page shows the latest this many.
TRANSCRIPT_MESSAGES = 500
CONTENT_GAPS_PER_PAGE = 100
# A session id, or the start of one as log lines shorten it ("Qm9Xc2…").
SESSION_ID_START = re.compile(r"([A-Za-z0-9_-]{6,64})…?")


def no_answer_replies():
    return Message.objects.filter(role=Role.ASSISTANT, metadata__answer_status=AnswerStatus.NO_ANSWER)


def content_gaps():
    """The visitor questions the knowledge base had no answer to, newest first: each
    no-answer reply with the user message before it in its session."""
    question = Message.objects.filter(session=OuterRef("session"), role=Role.USER, seq__lt=OuterRef("seq"))
    return (
        no_answer_replies()
        .annotate(question=Subquery(question.order_by("-seq").values("content")[:1]))
        .select_related("session")
        .order_by("-created_at", "-pk")
    )


def shown_sources(message: Message, hosts: frozenset[str]) -> list[dict]:
    """An answer's citations as the transcript lists them. Titles link only to the hosts
    replies may link to, as in the widget: a URL stored in metadata is not trusted more."""
    citations = message.metadata.get("citations") if message.role == Role.ASSISTANT else None
    if not isinstance(citations, list):
        return []
    return [
        {
            "id": citation.get("id"),
            "title": visible(str(citation.get("title") or "")),
            "url": url if isinstance(url := citation.get("url"), str) and link_host(url) in hosts else None,
            "heading": visible(str(citation.get("heading") or "")),
            "snippet": visible(str(citation.get("snippet") or "")),
        }
        for citation in citations
        if isinstance(citation, dict)
    ]


class NoAnswerFilter(admin.SimpleListFilter):
    title = "no-answer questions"
    parameter_name = "no_answer"

    def lookups(self, request, model_admin):
        return [("yes", "Has no-answer questions"), ("no", "Has none")]

    def queryset(self, request, queryset):
        unanswered = Exists(no_answer_replies().filter(session=OuterRef("pk")))
        if self.value() == "yes":
            return queryset.filter(unanswered)
        if self.value() == "no":
            return queryset.exclude(unanswered)
        return queryset


class WaitingFilter(admin.SimpleListFilter):
    title = "waiting for a person"
    parameter_name = "waiting"

    def lookups(self, request, model_admin):
        return [("yes", "Waiting for a person")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(waiting_since__isnull=False)
        return queryset


class FeedbackFilter(admin.SimpleListFilter):
    """Sessions whose visitor rated an answer down (what to read first) or up."""

    title = "feedback"
    parameter_name = "feedback"
    RATINGS = {"negative": Rating.NOT_HELPFUL, "positive": Rating.HELPFUL}

    def lookups(self, request, model_admin):
        return [("negative", "Has negative feedback"), ("positive", "Has positive feedback")]

    def queryset(self, request, queryset):
        if self.value() not in self.RATINGS:
            return queryset
        rated = Feedback.objects.filter(message__session=OuterRef("pk"), rating=self.RATINGS[self.value()])
        return queryset.filter(Exists(rated))


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    """Visitors' verdicts on the bot's answers, newest first, each linked to its place in
    the transcript. A record of what visitors said: read here, never edited."""

    list_display = ["updated_at", "shown_rating", "shown_comment", "answer"]
    list_display_links = None
    list_filter = ["rating", "updated_at"]
    list_select_related = ["message__session"]
    search_fields = ["comment"]
    ordering = ["-updated_at", "-pk"]

    @admin.display(description="rating", ordering="rating")
    def shown_rating(self, feedback: Feedback) -> str:
        return f"{'👍' if feedback.rating == Rating.HELPFUL else '👎'} {feedback.get_rating_display()}"

    @admin.display(description="comment")
    def shown_comment(self, feedback: Feedback) -> str:
        return visible(feedback.comment)

    @admin.display(description="answer")
    def answer(self, feedback: Feedback) -> str:
        message = feedback.message
        transcript = reverse("admin:conversations_session_change", args=[message.session_id])
        excerpt = Truncator(" ".join(visible(message.content).split())).chars(80)
        return format_html('<a href="{}#msg-{}">{}</a>', transcript, message.seq, excerpt)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class KnownCountPaginator(Paginator):
    """A paginator told how many rows there are, so it runs no ``COUNT``."""

    def __init__(self, object_list, per_page, *, count: int, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.__dict__["count"] = count  # ``count`` is a cached_property


class SessionMessagesSearch(admin.ModelAdmin):
    """Search by session id (whole, or its start as logs show it), title, or the words of
    any message in the session, each through an index (conversations/search.py; the
    title's trigram index on PostgreSQL)."""

    search_fields = ["title"]
    search_help_text = "Session id, title, or words from any message."

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        # Each way of matching is a subquery of its own that its index answers; one
        # UNION of session keys then narrows ``queryset``, which arrives already narrowed
        # by the list filters, so a search never brings back what a filter left out.
        # (Joined by OR instead, PostgreSQL would test every session's title in turn.)
        sessions = self.model._default_manager.order_by()
        by_title, _ = super().get_search_results(request, sessions, search_term)
        matching = by_title.values("pk").union(search.messages_matching(term).order_by().values("session_id"))
        if id_start := SESSION_ID_START.fullmatch(term):
            matching = matching.union(sessions.filter(public_id__startswith=id_start[1]).values("pk"))
        if connection.vendor != "postgresql":
            return queryset.filter(pk__in=matching), False
        # The list runs its queryset twice (the page's count, then the page), and
        # PostgreSQL would run the UNION in both: for a word in most sessions that is two
        # reads of every matching message. Its keys are read once instead, and the list
        # narrowed to them as one array parameter.
        keys = [row["pk"] for row in matching]
        if not queryset.query.where:
            # No filter narrowed the list: the keys (distinct, a UNION's) are the result,
            # so their number is its count, and the page need not count them again.
            request.matching_sessions = len(keys)
        table = connection.ops.quote_name(self.model._meta.db_table)
        narrowed = RawSQL(f"{table}.id = ANY(%s)", [keys], output_field=BooleanField())  # noqa: S611 - keys are a parameter
        return queryset.filter(narrowed), False

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        count = getattr(request, "matching_sessions", None)
        if count is None:
            return super().get_paginator(request, queryset, per_page, orphans, allow_empty_first_page)
        return KnownCountPaginator(queryset, per_page, orphans=orphans, count=count)


def transcripts_download(request, sessions, file_format: str) -> StreamingHttpResponse:
    """The transcripts of ``sessions`` as a file, streamed (conversations/export.py)."""
    chunks = export.encoded(export.session_rows(sessions), file_format)
    body = export.on_database_thread(chunks) if isinstance(request, ASGIRequest) else chunks
    response = StreamingHttpResponse(body, content_type=export.CONTENT_TYPES[file_format])
    name = f"transcripts-{timezone.now():%Y%m%d-%H%M%S}.{file_format}"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@admin.action(description="Export transcripts as JSON Lines", permissions=["view"])
def export_jsonl(modeladmin, request, queryset):
    return transcripts_download(request, queryset, "jsonl")


@admin.action(description="Export transcripts as CSV", permissions=["view"])
def export_csv(modeladmin, request, queryset):
    return transcripts_download(request, queryset, "csv")


@admin.register(Session)
class SessionAdmin(SessionMessagesSearch):
    actions = [export_jsonl, export_csv]
    list_display = ["public_id", "shown_title", "source", "message_count", "last_activity_at", "waiting_since", "owner"]
    list_filter = [
        WaitingFilter,
        "source",
        NoAnswerFilter,
        FeedbackFilter,
        "created_at",
        "last_activity_at",
        ("owner", admin.RelatedOnlyFieldListFilter),
    ]
    list_select_related = ["owner", "handled_by"]
    # Visitors waiting for a person come first, the longest waiting at the top; a page
    # is read off ``session_admin_list_idx``, which is in this order.
    ordering = [F("waiting_since").asc(nulls_last=True), "-last_activity_at"]
    # A filtered or searched list says how many it found, not also how many sessions
    # there are in all: that second count is one more query on every such page. No
    # date bar either: its months are a scan of every session's last activity on each
    # page (a third of the list's time at 50,000 sessions), and the "last activity" and
    # "created" filters beside the list narrow by date already.
    show_full_result_count = False
    readonly_fields = [
        "public_id",
        "owner",
        "source",
        "created_at",
        "last_activity_at",
        "expires_at",
        "message_count",
        "handled_by",
        "waiting_since",
    ]
    fields = [*readonly_fields, "title", "metadata"]
    change_form_template = "admin/conversations/session/change_form.html"

    def action_checkbox(self, obj):
        """Django's checkbox at the start of each row, written directly: as a form
        widget it goes through the template engine once a row, near a third of the
        list's own time at 100 rows a page. The same markup (tests/test_admin.py)."""
        label = format_html(gettext("Select this object for an action - {}"), str(obj))
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            str(obj.pk),
            label,
        )

    @admin.display(description="title", ordering="title")
    def shown_title(self, session: Session) -> str:
        return visible(session.title)

    @admin.display(description="messages", ordering="last_seq")
    def message_count(self, session: Session) -> int:
        return session.last_seq

    def has_add_permission(self, request) -> bool:
        return False  # sessions begin with a visitor, not in the admin

    def change_view(self, request, object_id, form_url="", extra_context=None):
        session = self.get_object(request, object_id)
        transcript, earlier = session.messages.page_before(None, TRANSCRIPT_MESSAGES) if session else ([], False)
        hosts = link_hosts()
        for message in transcript:
            message.sources = shown_sources(message, hosts)
        context = {
            "transcript": transcript,
            "transcript_has_earlier": earlier,
            "transcript_limit": TRANSCRIPT_MESSAGES,
            "last_seq": transcript[-1].seq if transcript else 0,
            "me": display_name(request.user),
            "handler": session.live_status()["handled_by"] if session else None,
        }
        return with_policy(super().change_view(request, object_id, form_url, {**(extra_context or {}), **context}))

    def changelist_view(self, request, extra_context=None):
        waiting = self.get_queryset(request).filter(waiting_since__isnull=False).count()
        return with_policy(super().changelist_view(request, {**(extra_context or {}), "waiting_count": waiting}))

    def get_urls(self):
        def staff_view(name, act):
            view = self.admin_site.admin_view(require_POST(self.staff_action))
            return path(f"<path:object_id>/{name}/", view, {"act": act}, name=f"conversations_session_{name}")

        gaps = self.admin_site.admin_view(self.content_gaps_view)
        return [
            path("content-gaps/", gaps, name="conversations_content_gaps"),
            staff_view("takeover", lambda request, session: staffing.take_over(session=session, staff=request.user)),
            staff_view("handback", lambda request, session: staffing.hand_back(session=session, staff=request.user)),
            staff_view(
                "reply",
                lambda request, session: staffing.reply_as_staff(
                    session=session, staff=request.user, text=request.POST.get("text", "")
                ),
            ),
            *super().get_urls(),
        ]

    def staff_action(self, request, object_id, act):
        """Take over, hand back or reply (conversations.staffing), for staff who may change
        the session. A fetch from the transcript page gets JSON; a plain form post goes
        back to the transcript with a message."""
        session = self.get_object(request, unquote(object_id))
        if session is None:
            raise Http404
        if not self.has_change_permission(request, session):
            raise PermissionDenied
        wants_json = "application/json" in request.headers.get("Accept", "")
        try:
            act(request, session)
        except ConversationError as problem:
            if wants_json:
                error = api_error_for(problem)
                return JsonResponse(error.body(), status=error.status_code)
            self.message_user(request, problem.message, messages.ERROR)
        else:
            if wants_json:
                return JsonResponse({"success": True, "session_id": session.public_id, "status": session.live_status()})
        return redirect(reverse("admin:conversations_session_change", args=[session.pk]))

    def content_gaps_view(self, request):
        """The questions visitors asked that the site's pages did not answer: what to write next."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        page = Paginator(content_gaps(), CONTENT_GAPS_PER_PAGE).get_page(request.GET.get("p"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Content gaps",
            "opts": self.model._meta,
            "page": page,
        }
        return TemplateResponse(request, "admin/conversations/session/content_gaps.html", context)


def with_policy(response):
    """The pages with live transcripts and takeover controls load scripts from our files only."""
    response["Content-Security-Policy"] = content_security_policy(frame_ancestors=[])
    return response
