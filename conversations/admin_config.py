"""Django's admin app, serving the project's own site (``conversations.admin_site``).

Its own module: INSTALLED_APPS imports it before any model is loaded."""

from django.contrib.admin.apps import AdminConfig


class ChatbotAdminConfig(AdminConfig):
    default_site = "conversations.admin_site.ChatbotAdminSite"
