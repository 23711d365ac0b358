"""Spend limits: daily budgets of model tokens per client address, per session and for
the whole site, and the tokens spent recorded per session and day.

Before a turn asks the model, ``ensure_within_budgets`` refuses it (``OverBudget``, a
429 with Retry-After) when a budget it draws on is already used up. After the model has
answered, ``record_spend`` adds the turn's tokens to the three counters in one Redis
transaction and to the session's ``DailyUsage`` row. A budget is checked, not reserved:
a turn that starts within it is answered whole, so a budget is overshot by at most the
turns being answered when it runs out. Turns that do not ask a paid model (a session
staff have taken over, strict mode's no-answer, the offline responder) spend nothing.

Days are UTC days: every budget starts afresh at 00:00 UTC, Retry-After counts the
seconds until then, and ``DailyUsage.day`` is the same day. The session's budget is
keyed by its primary key, not its public id, so giving a conversation a new id does not
give it a new budget; the address is ``ratelimits.client_ip``'s, the rate limits' key.

The counters live in Redis (``REDIS_URL``), shared by every process and host; a day's
keys expire an hour after the day ends. Without ``REDIS_URL`` each process counts alone
in Django's cache, which is fine for a single development server. If Redis is
unreachable the budgets fail open, like the rate limits: the turn is answered without
the check, a warning is logged, and the tokens it spends are missing from the counters
(not from ``DailyUsage``). A chat that answers unchecked for the minutes of an outage
beats a site whose chat is down because its counters are.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F

from conversations.exceptions import OverBudget
from conversations.llm import Reply
from conversations.models import DailyUsage, Session
from conversations.tokens import estimate_tokens

logger = logging.getLogger(__name__)

# How long a day's counters outlive the day: past any clock skew between instances.
COUNTER_GRACE_SECONDS = 3600


class Budget(StrEnum):
    SESSION = "session"
    ADDRESS = "address"
    GLOBAL = "global"


def daily_limit(budget: Budget) -> int:
    """Tokens a day; 0 means no limit."""
    return {
        Budget.SESSION: settings.CHATBOT_DAILY_TOKENS_PER_SESSION,
        Budget.ADDRESS: settings.CHATBOT_DAILY_TOKENS_PER_ADDRESS,
        Budget.GLOBAL: settings.CHATBOT_DAILY_TOKENS_GLOBAL,
    }[budget]


@dataclass(frozen=True)
class TokenUsage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def reply_usage(*, prompt: list[dict], reply: Reply) -> TokenUsage:
    """What a reply cost: the provider's own count (metadata ``usage``) when it reports
    one, else an estimate from what the model was sent and what it wrote."""
    reported = reply.metadata.get("usage") or {}
    prompt_tokens, completion_tokens = reported.get("prompt_tokens"), reported.get("completion_tokens")
    if isinstance(prompt_tokens, int) and isinstance(completion_tokens, int):
        return TokenUsage(max(prompt_tokens, 0), max(completion_tokens, 0))
    return TokenUsage(sum(estimate_tokens(m["content"]) for m in prompt), estimate_tokens(reply.text))


def now() -> datetime:
    return datetime.now(UTC)


def seconds_until_tomorrow(moment: datetime) -> int:
    """Whole seconds from ``moment`` until the next 00:00 UTC, at least 1."""
    tomorrow = datetime.combine(moment.date() + timedelta(days=1), time(), tzinfo=UTC)
    return max(1, math.ceil((tomorrow - moment).total_seconds()))


def counter_keys(*, day: date, address: str, session_pk: int | None) -> dict[Budget, str]:
    """The day's counter of each budget that applies and is on (a session not yet made
    has spent nothing, so it has none)."""
    keys = {
        Budget.SESSION: f"spend:{day.isoformat()}:session:{session_pk}" if session_pk is not None else None,
        Budget.ADDRESS: f"spend:{day.isoformat()}:address:{address}",
        Budget.GLOBAL: f"spend:{day.isoformat()}:global",
    }
    return {budget: key for budget, key in keys.items() if key is not None and daily_limit(budget)}


def ensure_within_budgets(*, address: str, session_pk: int | None) -> None:
    """Raise ``OverBudget`` if a budget this turn draws on is used up today. Reads Redis
    only (one round trip); fails open when it cannot (see the module docstring)."""
    moment = now()
    keys = counter_keys(day=moment.date(), address=address, session_pk=session_pk)
    if not keys:
        return
    try:
        spent = counters().used(list(keys.values()))
    except Exception as error:  # the counters are unreachable: serve rather than refuse
        logger.warning("Spend limits not checked, the counters are unavailable: %s", error)
        return
    for budget, used in zip(keys, spent, strict=True):
        if used >= daily_limit(budget):
            raise OverBudget(budget=budget.value, retry_after=seconds_until_tomorrow(moment))


def record_spend(*, address: str, session: Session, usage: TokenUsage) -> None:
    """Count a turn the model answered: in the session's ``DailyUsage`` row (the
    database), then in every budget's counter at once (Redis)."""
    moment = now()
    record_daily_usage(session=session, day=moment.date(), usage=usage)
    keys = counter_keys(day=moment.date(), address=address, session_pk=session.pk)
    if not keys or not usage.total:
        return
    try:
        counters().add(list(keys.values()), usage.total, ttl=seconds_until_tomorrow(moment) + COUNTER_GRACE_SECONDS)
    except Exception as error:
        logger.warning("Spend of %d tokens not counted, the counters are unavailable: %s", usage.total, error)


def record_daily_usage(*, session: Session, day: date, usage: TokenUsage) -> None:
    """Add one turn and its tokens to the (session, day) row, making it if need be.

    The increments are ``F()`` expressions, done by the database under the row's lock,
    so concurrent turns on any number of instances add up exactly. Two first turns of a
    day may both find no row: one insert wins the unique (session, day) constraint, the
    other adds to the row it made.
    """
    increments = {
        "turns": F("turns") + 1,
        "prompt_tokens": F("prompt_tokens") + usage.prompt_tokens,
        "completion_tokens": F("completion_tokens") + usage.completion_tokens,
    }
    row = DailyUsage.objects.filter(session=session, day=day)
    if row.update(**increments):
        return
    try:
        with transaction.atomic():
            DailyUsage.objects.create(
                session=session,
                day=day,
                turns=1,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
            )
    except IntegrityError:
        row.update(**increments)


class RedisCounters:
    """The counters in Redis, shared by every process and host."""

    def __init__(self, url: str):
        import redis

        timeouts = {"socket_connect_timeout": settings.REDIS_TIMEOUT, "socket_timeout": settings.REDIS_TIMEOUT}
        self._redis = redis.Redis.from_url(url, **timeouts)

    def used(self, keys: list[str]) -> list[int]:
        return [int(value or 0) for value in self._redis.mget([f"chatbot:{key}" for key in keys])]

    def add(self, keys: list[str], amount: int, *, ttl: int) -> None:
        with self._redis.pipeline(transaction=True) as pipeline:  # MULTI/EXEC: all or none
            for key in keys:
                pipeline.incrby(f"chatbot:{key}", amount)
                pipeline.expire(f"chatbot:{key}", ttl)
            pipeline.execute()


class CacheCounters:
    """The counters in Django's cache: without Redis, this process's own."""

    def used(self, keys: list[str]) -> list[int]:
        values = cache.get_many(keys)
        return [int(values.get(key, 0)) for key in keys]

    def add(self, keys: list[str], amount: int, *, ttl: int) -> None:
        for key in keys:
            cache.add(key, 0, ttl)
            cache.incr(key, amount)


_counters: dict[str, RedisCounters | CacheCounters] = {}
_counters_lock = threading.Lock()


def counters() -> RedisCounters | CacheCounters:
    """The counters for the configured ``REDIS_URL`` (the cache without one), made on
    first use."""
    url = settings.REDIS_URL
    with _counters_lock:
        if url not in _counters:
            _counters[url] = RedisCounters(url) if url else CacheCounters()
        return _counters[url]
