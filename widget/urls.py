from django.urls import path
from django.views.generic import RedirectView

from widget import views

urlpatterns = [
    path("chat", views.chat_page, name="chat-page"),
    path("widget/demo/", views.demo, name="widget-demo"),
    path("widget/demo/chatbot/", views.demo_full_page, name="widget-demo-full-page"),
    path("widget/demo/sitemap.xml", views.demo_sitemap, name="widget-demo-sitemap"),
    path("widget/demo/<slug:page>/", views.demo, name="widget-demo-page"),
    # A new user's first request: show them the widget working.
    path("", RedirectView.as_view(pattern_name="widget-demo"), name="home"),
]
