"""System checks for the widget's settings."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def check_allowed_origins(app_configs, **kwargs):
    """In production the allowlist must name the sites the widget is embedded on:
    without it no other site may call the API, frame /chat or talk to it."""
    if settings.CHATBOT_ALLOWED_ORIGINS:
        return []
    return [
        Warning(
            "CHATBOT_ALLOWED_ORIGINS is not set: the widget will only work on this server's own pages.",
            hint=(
                "Set CHATBOT_ALLOWED_ORIGINS to the comma-separated origins of the sites that embed the widget "
                "or frame /chat, e.g. CHATBOT_ALLOWED_ORIGINS=https://www.example.com,https://example.com"
            ),
            id="widget.W001",
        )
    ]
