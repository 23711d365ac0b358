"""The project's admin site: Django's, plus pages of its own that are not a model's, the
insight page (``/admin/conversations/insight/``) listed among the chat app's models."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse

from conversations import insight
from conversations.charts import Series, daily_bars

INSIGHT_PERMISSION = "conversations.view_session"
# The longest range one request may ask for: the page's cost grows with it.
MAX_RANGE_DAYS = 366


class ChatbotAdminSite(admin.AdminSite):
    def get_urls(self):
        return [
            path("conversations/insight/", self.admin_view(insight_view), name="conversations_insight"),
            *super().get_urls(),
        ]

    def get_app_list(self, request, app_label=None):
        """The chat app lists its insight page among its models, for staff who may read sessions."""
        app_list = super().get_app_list(request, app_label)
        if request.user.has_perm(INSIGHT_PERMISSION):
            for app in app_list:
                if app["app_label"] == "conversations":
                    app["models"].append(
                        {
                            "model": None,
                            "name": "Insight",
                            "object_name": "Insight",
                            "perms": {"view": True},
                            "admin_url": reverse("admin:conversations_insight", current_app=self.name),
                            "add_url": None,
                            "view_only": True,
                        }
                    )
                    app["models"].sort(key=lambda entry: entry["name"])
        return app_list


class InsightRangeForm(forms.Form):
    start = forms.DateField(input_formats=["%Y-%m-%d"], widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(input_formats=["%Y-%m-%d"], widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end:
            if start > end:
                raise forms.ValidationError("The start date must not be after the end date.")
            if end - start >= timedelta(days=MAX_RANGE_DAYS):
                raise forms.ValidationError(f"Choose at most {MAX_RANGE_DAYS} days.")
        return cleaned


def insight_view(request):
    """The insight page; ``?start=YYYY-MM-DD&end=YYYY-MM-DD`` (both included), by default
    the last 30 days. A range that does not parse is a 400 with the form's errors."""
    if not request.user.has_perm(INSIGHT_PERMISSION):
        raise PermissionDenied
    default = insight.DateRange.last_days()
    if "start" in request.GET or "end" in request.GET:
        form = InsightRangeForm(request.GET)
    else:
        form = InsightRangeForm(initial={"start": default.start, "end": default.end})
    figures = chart = None
    if not form.is_bound:
        period = default
    elif form.is_valid():
        period = insight.DateRange(start=form.cleaned_data["start"], end=form.cleaned_data["end"])
    else:
        period = None
    if period is not None:
        figures = insight.insight_for(period)
        chart = activity_chart(figures)
    context = {
        **admin.site.each_context(request),
        "title": "Insight",
        "form": form,
        "insight": figures,
        "headlines": headlines(figures) if figures else [],
        "chart": chart,
    }
    return TemplateResponse(request, "admin/conversations/insight.html", context, status=200 if period else 400)


def headlines(figures: insight.Insight) -> list[tuple[str, str, str]]:
    """The period's totals as the summary table shows them: label, figure, what it counts."""
    cost = f"{figures.cost:.4f} {figures.currency}" if figures.priced else "–"
    return [
        ("Conversations", str(figures.conversations), "sessions started"),
        ("Turns", str(figures.turns), "questions answered by the bot or handed to a person"),
        (
            "No answer",
            percent(figures.no_answer_share),
            f"{figures.no_answer} of {figures.answers} answers found nothing on the site's pages",
        ),
        (
            "Helpful",
            percent(figures.helpful_share),
            f"{figures.helpful} helpful, {figures.not_helpful} not helpful",
        ),
        (
            "Median latency",
            "–" if figures.median_latency_ms is None else f"{figures.median_latency_ms:g} ms",
            "the model's time to a whole answer",
        ),
        (
            "Tokens",
            str(figures.prompt_tokens + figures.completion_tokens),
            f"{figures.prompt_tokens} prompt, {figures.completion_tokens} completion",
        ),
        (
            "Estimated cost",
            cost,
            "at the configured prices per million tokens" if figures.priced else "no prices configured",
        ),
    ]


def percent(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.1f}%"


def activity_chart(figures: insight.Insight):
    days = [day.day for day in figures.activity]
    return daily_bars(
        chart_id="insight-activity",
        title="Conversations and turns per day",
        description=(
            f"From {figures.period.start} to {figures.period.end}: {figures.conversations} conversations "
            f"and {figures.turns} turns. The table below gives the figures for each day."
        ),
        days=days,
        series=[
            Series("Conversations", [day.conversations for day in figures.activity], "#417690"),
            Series("Turns", [day.turns for day in figures.activity], "#79aec8"),
        ],
    )
