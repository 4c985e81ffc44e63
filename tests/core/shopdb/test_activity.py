"""The dashboard's figures from the activity record, on SQLite and PostgreSQL."""

from __future__ import annotations

from core.activity.record import TurnActivity
from core.shopdb.activity import SqlActivity
from core.shopdb.database import ShopDatabase

DAY = 86400.0
MONDAY = 1_764_547_200.0  # 2025-12-01 00:00 UTC


def turn(at: float, intent: str = "recommend", decision: str = "recommend", first: bool = False,
         shown: int = 0, pressed: int | None = None) -> TurnActivity:
    return TurnActivity(at=at, platform="telegram", intent=intent, sentiment="neutral",
                        decision=decision, first_today=first, shown=shown, pressed=pressed,
                        feedback="details" if pressed else None)


def test_daily_counts_intents_and_click_through(database: ShopDatabase) -> None:
    database.migrate()
    activity = SqlActivity(database)
    activity.write([
        turn(MONDAY + 10, first=True, shown=3),
        turn(MONDAY + 20, intent="other", decision="feedback", pressed=2, shown=3),
        turn(MONDAY + 30, intent="greeting", decision="greet", first=True),
        turn(MONDAY + DAY + 5, intent="complaint", decision="escalate", first=True),
        turn(MONDAY + DAY + 9, first=False, shown=2),
        turn(MONDAY - DAY, first=True),  # before the window
    ])
    assert activity.daily("2025-12-01") == [
        ("2025-12-01", 2, 3, 0),
        ("2025-12-02", 1, 2, 1),
    ]
    assert activity.by("intent", "2025-12-01") == [
        ("recommend", 2), ("complaint", 1), ("greeting", 1), ("other", 1),
    ]
    # Position 3 was shown twice (two slates of 3), positions 1 and 2 three times.
    assert activity.click_through("2025-12-01") == [(1, 3, 0), (2, 3, 1), (3, 2, 0)]
    assert activity.by("feedback", "2025-12-01") == [("details", 1)]


def test_batches_add_up(database: ShopDatabase) -> None:
    database.migrate()
    activity = SqlActivity(database)
    for _ in range(3):
        activity.write([turn(MONDAY + 10, first=True), turn(MONDAY + 20)])
    assert activity.daily("2025-12-01") == [("2025-12-01", 3, 6, 0)]


def test_an_empty_record_reads_as_zeros(database: ShopDatabase) -> None:
    database.migrate()
    activity = SqlActivity(database)
    assert activity.daily("2025-12-01") == []
    assert activity.by("intent", "2025-12-01") == []
    assert activity.click_through("2025-12-01") == [(1, 0, 0), (2, 0, 0), (3, 0, 0)]
