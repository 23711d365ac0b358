from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from conversations import errors, views

router = SimpleRouter(trailing_slash=True)
router.register("sessions", views.SessionViewSet, basename="session")

urlpatterns = [
    path("session/create", views.SessionCreateView.as_view(), name="guide-session-create"),
    path("session/<str:session_id>/messages", views.SessionMessagesView.as_view(), name="guide-session-messages"),
    path("chat", views.ChatView.as_view(), name="chat"),
    path("widget/config", views.WidgetConfigView.as_view(), name="widget-config"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    *router.urls,
    re_path(r"^sessions?/", errors.session_not_found),
    # Unknown API paths answer JSON, even in development mode.
    re_path(r"^", errors.not_found),
]
