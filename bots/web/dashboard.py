"""The shop's dashboard: what the assistant did, read at a glance, every figure also as CSV.

Figures come from the activity record (`core.activity`: turns, suggestions shown, buttons
pressed), the tickets (escalations, reasons, ratings) and the serving model's card. Each is a
`Figure`: a title, a table of numbers, and how to draw it; the page draws it as inline SVG
(no script, no external chart library) with the same table beside it for screen readers.
"""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Literal

from core.activity.record import day_of
from core.handover.tickets.store import TicketFacts, TicketStore
from core.infra.health import model_card, model_version
from core.shopdb.activity import SqlActivity

Cell = str | int | float
Chart = Literal["lines", "bars", "table"]


@dataclass(frozen=True)
class Figure:
    name: str  # the CSV's file name and the figure's anchor
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    chart: Chart
    note: str = ""  # one line under the title: what the numbers mean
    percent: bool = False  # the plotted values are fractions shown as percentages

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        return out.getvalue()

    def svg(self) -> str:
        if not self.rows or self.chart == "table":
            return ""
        if self.chart == "lines":
            return line_chart(self)
        return bar_chart(self)


@dataclass
class Dashboard:
    activity: SqlActivity
    tickets: TicketStore
    model_dir: Path
    days: int = 30
    clock: Callable[[], float] = time.time

    def figures(self) -> list[Figure]:
        window = DashboardWindow.of(self)
        return [build(self, window) for build in FIGURES.values()]

    def figure(self, name: str) -> Figure | None:
        build = FIGURES.get(name)
        return build(self, DashboardWindow.of(self)) if build is not None else None

    def _conversations(self, window: DashboardWindow) -> Figure:
        daily = window.daily()
        return Figure(
            "conversations",
            "Conversations and turns per day",
            ("day", "conversations", "turns"),
            tuple((day, *daily.get(day, (0, 0, 0))[:2]) for day in window.days),
            "lines",
            "a conversation counts once on each day it has a turn",
        )

    def _intents(self, window: DashboardWindow) -> Figure:
        return Figure(
            "intents",
            "What customers asked for",
            ("intent", "turns"),
            tuple(self.activity.by("intent", window.first_day)),
            "bars",
            "turns by the intent understood (buttons count as other)",
        )

    def _escalation_rate(self, window: DashboardWindow) -> Figure:
        daily = window.daily()
        opened = Counter(day_of(fact.created_at) for fact in window.tickets())
        rows = []
        for day in window.days:
            conversations = daily.get(day, (0, 0, 0))[0]
            rate = round(opened[day] / conversations, 4) if conversations else 0.0
            rows.append((day, conversations, opened[day], rate))
        return Figure(
            "escalation-rate",
            "Escalation rate per day",
            ("day", "conversations", "tickets opened", "rate"),
            tuple(rows),
            "lines",
            "tickets opened over conversations, per day",
            percent=True,
        )

    def _escalation_reasons(self, window: DashboardWindow) -> Figure:
        reasons = Counter(fact.reason or "unknown" for fact in window.tickets())
        return Figure(
            "escalation-reasons",
            "Why conversations were escalated",
            ("reason", "tickets"),
            tuple(reasons.most_common()),
            "bars",
        )

    def _csat(self, window: DashboardWindow) -> Figure:
        rated = [fact.rating for fact in window.tickets() if fact.rating]
        ratings = Counter(rated)
        average = f"average {sum(rated) / len(rated):.2f} of {len(rated)} ratings" if rated else ""
        return Figure(
            "csat",
            "Customer ratings after a person helped (CSAT)",
            ("rating", "tickets"),
            tuple((score, ratings[score]) for score in range(1, 6)),
            "bars",
            average or "no ratings yet",
        )

    def _click_through(self, window: DashboardWindow) -> Figure:
        clicks = self.activity.click_through(window.first_day)
        return Figure(
            "click-through",
            "Suggestion click-through by position",
            ("position", "shown", "pressed", "click-through"),
            tuple((p, s, n, round(n / s, 4) if s else 0.0) for p, s, n in clicks),
            "bars",
            "buttons pressed on a suggestion over the times that position was shown",
            percent=True,
        )

    def _model(self, window: DashboardWindow) -> Figure:
        version = model_version(self.model_dir)
        card = model_card(self.model_dir) or {}
        rows: list[tuple[Cell, ...]] = [("version", version or "no model trained")]
        rows += [(key, _cell(value)) for key, value in card.items()]
        return Figure(
            "model",
            "Serving recommender and its latest offline evaluation",
            ("field", "value"),
            tuple(rows),
            "table",
            f"from {self.model_dir}; val_* are held-out figures measured when it was trained",
        )



@dataclass
class DashboardWindow:
    """The dashboard's days, and what several figures read from them, read once."""

    dashboard: Dashboard
    first_day: str
    days: list[str]
    since: float
    _daily: dict[str, tuple[int, int, int]] | None = None
    _tickets: list[TicketFacts] | None = None

    @classmethod
    def of(cls, dashboard: Dashboard) -> DashboardWindow:
        now = dashboard.clock()
        first_day = day_of(now - (dashboard.days - 1) * 86400)
        since = datetime.strptime(first_day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
        return cls(dashboard, first_day, _days(first_day, day_of(now)), since)

    def daily(self) -> dict[str, tuple[int, int, int]]:
        if self._daily is None:
            rows = self.dashboard.activity.daily(self.first_day)
            self._daily = {day: (c, t, e) for day, c, t, e in rows}
        return self._daily

    def tickets(self) -> list[TicketFacts]:
        if self._tickets is None:
            self._tickets = self.dashboard.tickets.facts(self.since)
        return self._tickets


# The figures in the order the page shows them, by name (the CSV's file name).
FIGURES: dict[str, Callable[[Dashboard, DashboardWindow], Figure]] = {
    "conversations": Dashboard._conversations,
    "intents": Dashboard._intents,
    "escalation-rate": Dashboard._escalation_rate,
    "escalation-reasons": Dashboard._escalation_reasons,
    "csat": Dashboard._csat,
    "click-through": Dashboard._click_through,
    "model": Dashboard._model,
}


def _cell(value: object) -> Cell:
    return value if isinstance(value, str | int | float) else str(value)


def _days(first: str, last: str) -> list[str]:
    start = datetime.strptime(first, "%Y-%m-%d")
    count = (datetime.strptime(last, "%Y-%m-%d") - start).days + 1
    return [(start + timedelta(days=n)).strftime("%Y-%m-%d") for n in range(count)]


# -- drawing -----------------------------------------------------------------------------------

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 36
COLOURS = ("#1f5fa8", "#c2571a", "#2e7d32")


def _scale(values: Sequence[float]) -> float:
    top = max(values, default=0.0)
    return top if top > 0 else 1.0


def _label(value: float, percent: bool) -> str:
    if percent:
        return f"{value * 100:.1f}%"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _frame(figure: Figure, body: list[str], top: float) -> str:
    plot_h = HEIGHT - TOP - BOTTOM
    axis = [
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" '
        'stroke="#555"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end" font-size="11">'
        f"{escape(_label(top, figure.percent))}</text>",
        f'<text x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end" font-size="11">0</text>',
    ]
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(figure.title)}" xmlns="http://www.w3.org/2000/svg">'
        + "".join(axis + body)
        + "</svg>"
    )


def bar_chart(figure: Figure) -> str:
    """One bar per row: the row's first cell labels it, its last numeric cell is its height."""
    labels = [str(row[0]) for row in figure.rows]
    values = [float(row[-1]) for row in figure.rows]
    top = _scale(values)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(values)
    body = []
    for n, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * value / top
        x = LEFT + n * slot + slot * 0.15
        body.append(
            f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{h:.1f}" fill="{COLOURS[0]}"><title>{escape(label)}: '
            f"{escape(_label(value, figure.percent))}</title></rect>"
        )
        body.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{TOP + plot_h - h - 3:.1f}" '
            f'text-anchor="middle" font-size="11">{escape(_label(value, figure.percent))}</text>'
        )
        short = label if len(label) <= 14 else label[:13] + "…"
        body.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle" '
            f'font-size="11">{escape(short)}</text>'
        )
    return _frame(figure, body, top)


def line_chart(figure: Figure) -> str:
    """One line per numeric column after the first (the day); for a rate, only the last."""
    days = [str(row[0]) for row in figure.rows]
    columns = [len(figure.columns) - 1] if figure.percent else range(1, len(figure.columns))
    series = [(figure.columns[c], [float(row[c]) for row in figure.rows]) for c in columns]
    top = _scale([v for _, values in series for v in values])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(days) - 1)
    body = []
    for n, (name, values) in enumerate(series):
        points = " ".join(
            f"{LEFT + i * step:.1f},{TOP + plot_h - plot_h * v / top:.1f}"
            for i, v in enumerate(values)
        )
        colour = COLOURS[n % len(COLOURS)]
        body.append(f'<polyline points="{points}" fill="none" stroke="{colour}" '
                    'stroke-width="2"/>')
        body.append(f'<text x="{LEFT + 8 + n * 130}" y="{TOP + 12}" font-size="12" '
                    f'fill="{colour}">{escape(name)}</text>')
    for i in (0, len(days) - 1):
        anchor = "start" if i == 0 else "end"
        body.append(f'<text x="{LEFT + i * step:.1f}" y="{HEIGHT - BOTTOM + 14}" '
                    f'text-anchor="{anchor}" font-size="11">{escape(days[i])}</text>')
    return _frame(figure, body, top)
