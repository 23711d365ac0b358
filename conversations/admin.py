"""Staff read transcripts here. Messages are records of what was said: the admin shows
them and never edits them."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Exists, OuterRef

from conversations.display import visible
from conversations.models import Message, Session

# A session can hold thousands of messages; the page shows the latest this many.
TRANSCRIPT_MESSAGES = 500


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
    list_filter = ["source", "created_at", "last_activity_at", ("owner", admin.RelatedOnlyFieldListFilter)]
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
        context = {"transcript": transcript, "transcript_has_earlier": earlier, "transcript_limit": TRANSCRIPT_MESSAGES}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **context})
