"""Staff read transcripts here. Messages are records of what was said: the admin shows
them and never edits them."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Subquery
from django.template.response import TemplateResponse
from django.urls import path

from conversations.display import link_host, link_hosts, visible
from conversations.grounding import AnswerStatus
from conversations.models import Message, Role, Session

# A session can hold thousands of messages; the page shows the latest this many.
TRANSCRIPT_MESSAGES = 500
CONTENT_GAPS_PER_PAGE = 100


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


class SessionMessagesSearch(admin.ModelAdmin):
    """Search by session id, title, or the text of any message in the session."""

    search_fields = ["public_id", "title"]
    search_help_text = "Session id, title, or words from any message."

    def get_search_results(self, request, queryset, search_term):
        # ``queryset`` arrives already narrowed by the list filters: the message match is
        # taken from it too, so a search never brings back what a filter left out.
        by_fields, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if search_term:
            matching = Message.objects.filter(session=OuterRef("pk"), content__icontains=search_term)
            by_fields |= queryset.filter(Exists(matching))
        return by_fields, may_have_duplicates


@admin.register(Session)
class SessionAdmin(SessionMessagesSearch):
    list_display = ["public_id", "shown_title", "source", "message_count", "last_activity_at", "owner"]
    list_filter = [
        "source",
        NoAnswerFilter,
        "created_at",
        "last_activity_at",
        ("owner", admin.RelatedOnlyFieldListFilter),
    ]
    list_select_related = ["owner"]
    date_hierarchy = "last_activity_at"
    readonly_fields = [
        "public_id",
        "owner",
        "source",
        "created_at",
        "last_activity_at",
        "expires_at",
        "message_count",
    ]
    fields = [*readonly_fields, "title", "metadata"]
    change_form_template = "admin/conversations/session/change_form.html"

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
        context = {"transcript": transcript, "transcript_has_earlier": earlier, "transcript_limit": TRANSCRIPT_MESSAGES}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **context})

    def get_urls(self):
        view = self.admin_site.admin_view(self.content_gaps_view)
        return [path("content-gaps/", view, name="conversations_content_gaps"), *super().get_urls()]

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
