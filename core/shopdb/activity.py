"""The activity record in the store database: counters per day, added to in batches and read
as the dashboard's figures. A page reads at most a few hundred rows, however many turns there
were; adding is an upsert per (day, metric, key) of a batch, not a row per turn."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from core.activity.record import TurnActivity
from core.shopdb.database import ShopDatabase
from core.shopdb.tables import activity_counts

TOTALS = ("conversations", "turns", "escalations")
BREAKDOWNS = ("intent", "sentiment", "decision", "platform", "feedback")
ESCALATE = "escalate"  # the decision that opens a ticket


def tally(records: Sequence[TurnActivity]) -> Counter[tuple[str, str, str]]:
    """(day, metric, key) -> how much a batch of records adds."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for record in records:
        day = record.day
        counts[day, "turns", ""] += 1
        counts[day, "conversations", ""] += int(record.first_today)
        counts[day, "escalations", ""] += int(record.decision == ESCALATE)
        counts[day, "intent", record.intent[:32]] += 1
        counts[day, "sentiment", record.sentiment[:32]] += 1
        counts[day, "decision", record.decision[:32]] += 1
        counts[day, "platform", record.platform[:32]] += 1
        for position in range(1, record.shown + 1):
            counts[day, "shown", str(position)] += 1
        if record.pressed:
            counts[day, "pressed", str(record.pressed)] += 1
        if record.feedback:
            counts[day, "feedback", record.feedback[:32]] += 1
    return counts


class SqlActivity:
    def __init__(self, database: ShopDatabase) -> None:
        self._database = database

    def write(self, records: Sequence[TurnActivity]) -> None:
        rows = [
            {"day": day, "metric": metric, "key": key, "value": value}
            for (day, metric, key), value in sorted(tally(records).items())
            if value
        ]
        if not rows:
            return
        dialect = postgresql if self._database.dialect == "postgresql" else sqlite
        statement = dialect.insert(activity_counts)
        statement = statement.on_conflict_do_update(
            index_elements=["day", "metric", "key"],
            set_={"value": activity_counts.c.value + statement.excluded.value},
        )
        with self._database.engine.begin() as connection:
            connection.execute(statement, rows)

    def daily(self, since_day: str) -> list[tuple[str, int, int, int]]:
        """(day, conversations, turns, escalations) per day from `since_day`, oldest first."""
        query = (
            select(activity_counts.c.day, activity_counts.c.metric, activity_counts.c.value)
            .where(activity_counts.c.day >= since_day, activity_counts.c.metric.in_(TOTALS))
        )
        found: dict[str, dict[str, int]] = {}
        with self._database.reads.connect() as connection:
            for day, metric, value in connection.execute(query):
                found.setdefault(day, {})[metric] = int(value)
        return [
            (day, *(found[day].get(metric, 0) for metric in TOTALS))  # type: ignore[misc]
            for day in sorted(found)
        ]

    def by(self, metric: str, since_day: str) -> list[tuple[str, int]]:
        """Turns per value of a breakdown (intent, sentiment, ...), most first."""
        total = func.sum(activity_counts.c.value)
        query = (
            select(activity_counts.c.key, total)
            .where(activity_counts.c.day >= since_day, activity_counts.c.metric == metric)
            .group_by(activity_counts.c.key)
            .order_by(total.desc(), activity_counts.c.key)
        )
        with self._database.reads.connect() as connection:
            return [(str(key), int(n)) for key, n in connection.execute(query)]

    def click_through(self, since_day: str, positions: int = 3) -> list[tuple[int, int, int]]:
        """(position, times shown, buttons pressed) for positions 1..`positions`."""
        shown = dict(self.by("shown", since_day))
        pressed = dict(self.by("pressed", since_day))
        return [
            (p, shown.get(str(p), 0), pressed.get(str(p), 0)) for p in range(1, positions + 1)
        ]
