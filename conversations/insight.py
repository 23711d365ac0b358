"""The figures of the admin's insight page, for a range of days in the site's time zone.

Every figure is an aggregate query over an index, never a read of the messages' JSON:
what it counts was copied into plain columns when the turn was stored
(``Message.answer_status`` and ``latency_ms``, the ``Citation`` and ``ContentGap``
tables) and the day's
tokens come from ``DailyUsage``. A turn is a message that ends one: the bot's answer,
or the visitor's message a person answers (``with_staff``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db.models import Aggregate, Count, FloatField, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from conversations.models import AnswerStatus, Citation, ContentGap, DailyUsage, Feedback, Message, Rating, Session

DEFAULT_DAYS = 30
TOP_CONTENT_GAPS = 20
TOP_CITED_PAGES = 20
MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class DateRange:
    """From ``start`` to ``end``, both days included, in the site's time zone."""

    start: date
    end: date

    @classmethod
    def last_days(cls, days: int = DEFAULT_DAYS) -> DateRange:
        today = timezone.localdate()
        return cls(start=today - timedelta(days=days - 1), end=today)

    @property
    def since(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.start, time.min))

    @property
    def until(self) -> datetime:
        """The first moment after the range: midnight after ``end``."""
        return timezone.make_aware(datetime.combine(self.end + timedelta(days=1), time.min))

    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]


@dataclass(frozen=True)
class DayActivity:
    day: date
    conversations: int
    turns: int


@dataclass(frozen=True)
class DayTokens:
    day: date
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class UnansweredQuestion:
    question: str  # the spelling visitors used most
    count: int


@dataclass(frozen=True)
class CitedPageCount:
    title: str
    url: str | None
    count: int


@dataclass(frozen=True)
class Insight:
    period: DateRange
    activity: list[DayActivity]
    answered: int
    no_answer: int
    helpful: int
    not_helpful: int
    median_latency_ms: float | None
    tokens: list[DayTokens]
    content_gaps: list[UnansweredQuestion]
    cited_pages: list[CitedPageCount]
    currency: str
    priced: bool

    @property
    def conversations(self) -> int:
        return sum(day.conversations for day in self.activity)

    @property
    def turns(self) -> int:
        return sum(day.turns for day in self.activity)

    @property
    def answers(self) -> int:
        return self.answered + self.no_answer

    @property
    def no_answer_share(self) -> float | None:
        """Of the bot's answers, the share that found nothing on the site's pages."""
        return self.no_answer / self.answers if self.answers else None

    @property
    def rated(self) -> int:
        return self.helpful + self.not_helpful

    @property
    def helpful_share(self) -> float | None:
        return self.helpful / self.rated if self.rated else None

    @property
    def prompt_tokens(self) -> int:
        return sum(day.prompt_tokens for day in self.tokens)

    @property
    def completion_tokens(self) -> int:
        return sum(day.completion_tokens for day in self.tokens)

    @property
    def cost(self) -> Decimal:
        return sum((day.cost for day in self.tokens), Decimal(0))


def insight_for(period: DateRange) -> Insight:
    """Every figure of the insight page for ``period``: a handful of aggregate queries."""
    turns_per_day, outcomes = turn_outcomes(period)
    started = conversations_per_day(period)
    helpful, not_helpful = feedback_counts(period)
    return Insight(
        period=period,
        activity=[
            DayActivity(day=day, conversations=started.get(day, 0), turns=turns_per_day.get(day, 0))
            for day in period.days()
        ],
        answered=outcomes[AnswerStatus.ANSWERED],
        no_answer=outcomes[AnswerStatus.NO_ANSWER],
        helpful=helpful,
        not_helpful=not_helpful,
        median_latency_ms=median_latency_ms(period),
        tokens=tokens_per_day(period),
        content_gaps=content_gaps(period),
        cited_pages=cited_pages(period),
        currency=settings.CHATBOT_PRICE_CURRENCY,
        priced=priced(),
    )


def priced() -> bool:
    return bool(settings.CHATBOT_PRICE_PER_MILLION_INPUT_TOKENS or settings.CHATBOT_PRICE_PER_MILLION_OUTPUT_TOKENS)


def turns_in(period: DateRange):
    """The messages that end a turn, in ``period``: a range of ``message_turn_outcome_idx``."""
    return Message.objects.filter(
        answer_status__isnull=False, created_at__gte=period.since, created_at__lt=period.until
    ).order_by()


def conversations_per_day(period: DateRange) -> dict[date, int]:
    """Sessions started each day."""
    started = Session.objects.filter(created_at__gte=period.since, created_at__lt=period.until).order_by()
    rows = started.annotate(day=TruncDate("created_at")).values("day").annotate(count=Count("*"))
    return {row["day"]: row["count"] for row in rows}


def turn_outcomes(period: DateRange) -> tuple[dict[date, int], Counter]:
    """Turns per day, and how many of the period's turns ended each way; one scan."""
    rows = (
        turns_in(period).annotate(day=TruncDate("created_at")).values("day", "answer_status").annotate(count=Count("*"))
    )
    per_day: Counter = Counter()
    outcomes: Counter = Counter()
    for row in rows:
        per_day[row["day"]] += row["count"]
        outcomes[row["answer_status"]] += row["count"]
    return dict(per_day), outcomes


class Median(Aggregate):
    """PostgreSQL's exact median: the mean of the two middle values of an even count."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def median_latency_ms(period: DateRange) -> float | None:
    """The median of the model's latency over the period's answers that asked it."""
    timed = turns_in(period).filter(latency_ms__isnull=False)
    if connection.vendor == "postgresql":
        return timed.aggregate(median=Median("latency_ms"))["median"]
    # Elsewhere: the middle one or two values, in order (the same definition).
    count = timed.count()
    if not count:
        return None
    middle = list(timed.order_by("latency_ms").values_list("latency_ms", flat=True)[(count - 1) // 2 : count // 2 + 1])
    return sum(middle) / len(middle)


def feedback_counts(period: DateRange) -> tuple[int, int]:
    """Helpful and not helpful verdicts given (or last changed) in the period."""
    given = Feedback.objects.filter(updated_at__gte=period.since, updated_at__lt=period.until)
    counts = given.aggregate(
        helpful=Count("pk", filter=Q(rating=Rating.HELPFUL)),
        not_helpful=Count("pk", filter=Q(rating=Rating.NOT_HELPFUL)),
    )
    return counts["helpful"], counts["not_helpful"]


def tokens_per_day(period: DateRange) -> list[DayTokens]:
    """Tokens each day of the period (from ``DailyUsage``) and what they cost at the
    configured prices; days without usage count zero."""
    rows = (
        DailyUsage.objects.filter(day__gte=period.start, day__lte=period.end)
        .order_by()
        .values("day")
        .annotate(prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"))
    )
    used = {row["day"]: (row["prompt"], row["completion"]) for row in rows}
    input_price = Decimal(str(settings.CHATBOT_PRICE_PER_MILLION_INPUT_TOKENS))
    output_price = Decimal(str(settings.CHATBOT_PRICE_PER_MILLION_OUTPUT_TOKENS))
    days = []
    for day in period.days():
        prompt, completion = used.get(day, (0, 0))
        cost = (prompt * input_price + completion * output_price) / MILLION
        days.append(DayTokens(day=day, prompt_tokens=prompt, completion_tokens=completion, cost=cost))
    return days


def content_gaps(period: DateRange, limit: int = TOP_CONTENT_GAPS) -> list[UnansweredQuestion]:
    """The questions asked most often in the period that the site's pages did not answer.

    Wordings that differ only in case, spacing or end punctuation are one question
    (``ContentGap.normalized``); each is shown in the wording asked most.
    """
    rows = (
        ContentGap.objects.filter(asked_at__gte=period.since, asked_at__lt=period.until)
        .order_by()
        .values_list("normalized", "question")
        .annotate(count=Count("*"))
    )
    counts: Counter = Counter()
    spellings: dict[str, Counter] = {}
    for key, question, count in rows:
        counts[key] += count
        spellings.setdefault(key, Counter())[question] += count
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [UnansweredQuestion(question=most_used(spellings[key]), count=count) for key, count in ranked]


def most_used(spellings: Counter) -> str:
    return min(spellings.items(), key=lambda item: (-item[1], item[0]))[0]


def cited_pages(period: DateRange, limit: int = TOP_CITED_PAGES) -> list[CitedPageCount]:
    """The pages the period's answers cited most, with how many answers cited each."""
    rows = (
        Citation.objects.filter(cited_at__gte=period.since, cited_at__lt=period.until)
        .order_by()
        .values("url", "title")
        .annotate(count=Count("*"))
        .order_by("-count", "title", "url")[:limit]
    )
    return [CitedPageCount(title=row["title"], url=row["url"], count=row["count"]) for row in rows]
