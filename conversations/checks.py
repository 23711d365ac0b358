"""System checks for what the conversations API needs in production."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.caches, deploy=True)
def check_shared_rate_limits(app_configs, **kwargs):
    """Rate limits are counted in the cache. A per-process cache gives every process
    and every host its own count, so a limit of N lets through N times the instances."""
    backend = settings.CACHES["default"]["BACKEND"]
    if not backend.endswith(("LocMemCache", "DummyCache")):
        return []
    return [
        Warning(
            "REDIS_URL is not set: each server process counts rate limits and spend limits on its own.",
            hint="Set REDIS_URL (e.g. redis://redis.internal:6379/0) so that every instance shares one count.",
            id="conversations.W001",
        )
    ]


@register(deploy=True)
def check_handoff_webhook(app_configs, **kwargs):
    """An unsigned webhook lets anyone who learns its URL post fake handoffs to the team;
    without CHATBOT_PUBLIC_URL its transcript links are paths, not links."""
    if not settings.CHATBOT_HANDOFF_WEBHOOK_URL:
        return []
    warnings = []
    if not settings.CHATBOT_HANDOFF_WEBHOOK_SECRET:
        warnings.append(
            Warning(
                "CHATBOT_HANDOFF_WEBHOOK_URL is set without CHATBOT_HANDOFF_WEBHOOK_SECRET: the webhook is not signed.",
                hint="Set CHATBOT_HANDOFF_WEBHOOK_SECRET to a long random string shared with the receiver.",
                id="conversations.W002",
            )
        )
    if not settings.CHATBOT_PUBLIC_URL:
        warnings.append(
            Warning(
                "CHATBOT_PUBLIC_URL is not set: the handoff webhook's transcript_url is a path, not a link.",
                hint="Set CHATBOT_PUBLIC_URL to this site's address, e.g. https://chat.example.com.",
                id="conversations.W003",
            )
        )
    return warnings
