from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from conversations import errors, views
from widget.headers import page_headers


class ApiDocsView(SpectacularSwaggerSplitView):
    """Swagger UI with no inline script or style, under the pages' Content-Security-Policy."""

    template_name = "conversations/api_docs.html"


router = SimpleRouter(trailing_slash=True)
router.register("sessions", views.SessionViewSet, basename="session")

urlpatterns = [
    path("session/create", views.SessionCreateView.as_view(), name="guide-session-create"),
    path("session/<str:session_id>/messages", views.SessionMessagesView.as_view(), name="guide-session-messages"),
    path(
        "session/<str:session_id>/messages/<int:message_id>/feedback",
        views.MessageFeedbackView.as_view(),
        name="message-feedback",
    ),
    path("session/<str:session_id>/handoff", views.SessionHandoffView.as_view(), name="session-handoff"),
    path("session/<str:session_id>/rotate", views.SessionRotateView.as_view(), name="session-rotate"),
    path("session/<str:session_id>/events", views.SessionEventsView.as_view(), name="session-events"),
    path("chat", views.ChatView.as_view(), name="chat"),
    path("widget/config", views.WidgetConfigView.as_view(), name="widget-config"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", page_headers()(ApiDocsView.as_view(url_name="schema")), name="docs"),
    *router.urls,
    re_path(r"^sessions?/", errors.session_not_found),
    # Unknown API paths answer JSON, even in development mode.
    re_path(r"^", errors.not_found),
]
