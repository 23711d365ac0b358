from django.contrib import admin
from django.urls import include, path

from conversations.views import healthz

handler400 = "conversations.views.bad_request"
handler404 = "conversations.errors.not_found"
handler500 = "conversations.errors.server_error"

urlpatterns = [
    path("api/kb/", include("knowledge.urls")),
    path("api/", include("conversations.urls")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("", include("widget.urls")),
]
