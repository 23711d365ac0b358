"""Charts drawn by the server as inline SVG: no script, no CDN, nothing for a
Content-Security-Policy to allow. Every piece of text goes through ``format_html``, so
whatever a label says is shown as text. A chart is an image with a title and a
description; the page puts the same figures in a table beside it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 16, 56


@dataclass(frozen=True)
class Series:
    label: str
    values: list[int]
    colour: str


def daily_bars(*, chart_id: str, title: str, description: str, days: list[date], series: list[Series]) -> SafeString:
    """Grouped bars, one group a day, one bar a series, on a shared scale from zero."""
    top = max([1, *(value for line in series for value in line.values)])
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_width / max(len(days), 1)
    bar = slot * 0.8 / max(len(series), 1)
    bars = []
    for index, day in enumerate(days):
        for number, line in enumerate(series):
            value = line.values[index]
            height = plot_height * value / top
            x = LEFT + index * slot + slot * 0.1 + number * bar
            bars.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {} {}</title></rect>',
                    f"{x:.1f}",
                    f"{TOP + plot_height - height:.1f}",
                    f"{bar:.1f}",
                    f"{height:.1f}",
                    line.colour,
                    day.isoformat(),
                    value,
                    line.label.lower(),
                )
            )
    baseline = TOP + plot_height
    labels = [(0, days[0]), *([(len(days) - 1, days[-1])] if len(days) > 1 else [])] if days else []
    legend = format_html_join(
        "",
        '<rect x="{}" y="{}" width="10" height="10" fill="{}"></rect><text x="{}" y="{}">{}</text>',
        (
            (LEFT + number * 160, HEIGHT - 18, line.colour, LEFT + number * 160 + 14, HEIGHT - 9, line.label)
            for number, line in enumerate(series)
        ),
    )
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" role="img" aria-labelledby="{}-title {}-desc" '
        'id="{}" class="insight-chart" font-size="11" fill="currentColor">'
        '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>'
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="currentColor"></line>'
        '<text x="{}" y="{}" text-anchor="end">{}</text><text x="{}" y="{}" text-anchor="end">0</text>'
        "{}{}{}</svg>",
        WIDTH,
        HEIGHT,
        chart_id,
        chart_id,
        chart_id,
        chart_id,
        title,
        chart_id,
        description,
        LEFT,
        baseline,
        WIDTH - RIGHT,
        baseline,
        LEFT - 6,
        TOP + 4,
        top,
        LEFT - 6,
        baseline,
        SafeString("".join(bars)),
        format_html_join(
            "",
            '<text x="{}" y="{}" text-anchor="{}">{}</text>',
            (
                (f"{LEFT + index * slot + slot / 2:.1f}", baseline + 16, "start" if index == 0 else "end", day)
                for index, day in labels
            ),
        ),
        legend,
    )
