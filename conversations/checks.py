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
            "REDIS_URL is not set: each server process counts rate limits on its own.",
            hint="Set REDIS_URL (e.g. redis://redis.internal:6379/0) so that every instance shares one count.",
            id="conversations.W001",
        )
    ]
