"""The learning record in the store database: the bandit's logged slates and its posterior.

A slate is written when it is shown and closed once, by the customer's next turn, with what was
pressed. The posterior is JSON in one row per policy, changed only by `update_bandit`, a
read-modify-write under the row's lock (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite's
writer lock does the same), so updates from many workers add up and none is lost.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update

from core.shopdb.database import ShopDatabase
from core.shopdb.tables import bandit_state, slates


@dataclass(frozen=True)
class SlateRecord:
    id: str
    shown_at: float  # unix seconds
    policy: str
    candidates: list[list[float]]  # (C, d) feature rows
    shown: list[int]  # candidate indices in display order
    propensities: list[float]  # of each shown candidate at its position
    position: int | None = None  # pressed, 1-based; None: nothing pressed, or still open
    kind: str | None = None
    closed: bool = False

    @classmethod
    def new(cls, candidates: list[list[float]], shown: list[int], propensities: list[float],
            policy: str, at: float | None = None) -> SlateRecord:
        stamp = datetime.now(UTC).timestamp() if at is None else at
        return cls(uuid.uuid4().hex, stamp, policy, candidates, shown, propensities)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "shown_at": self.shown_at, "policy": self.policy,
                "candidates": self.candidates, "shown": self.shown,
                "propensities": self.propensities, "position": self.position,
                "kind": self.kind, "closed": self.closed}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SlateRecord:
        return cls(str(raw["id"]), float(raw["shown_at"]), str(raw["policy"]),
                   [[float(v) for v in row] for row in raw["candidates"]],
                   [int(i) for i in raw["shown"]], [float(p) for p in raw["propensities"]],
                   raw.get("position"), raw.get("kind"), bool(raw.get("closed", True)))


def read_slates(path: Path) -> list[SlateRecord]:
    """Slates exported as JSON lines (`concierge simulate --slates-out`), closed ones only.
    ValueError names the first line that is not a slate."""
    found = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = SlateRecord.from_json(json.loads(line))
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}:{number} is not a logged slate ({error})") from error
        if record.closed:
            found.append(record)
    return found


class LearningStore:
    def __init__(self, database: ShopDatabase) -> None:
        self._database = database

    def add_slate(self, record: SlateRecord) -> None:
        with self._database.engine.begin() as connection:
            connection.execute(insert(slates).values(
                id=record.id, shown_at=datetime.fromtimestamp(record.shown_at, UTC),
                policy=record.policy[:64], candidates=record.candidates, shown=record.shown,
                propensities=record.propensities,
            ))

    def close_slate(self, slate_id: str, position: int | None, kind: str | None,
                    at: float) -> SlateRecord | None:
        """Record what was pressed; the closed slate, or None when it is unknown or was closed
        already (so each slate is learnt from once, however often it is closed)."""
        with self._database.engine.begin() as connection:
            closed = connection.execute(
                update(slates)
                .where(slates.c.id == slate_id, slates.c.closed_at.is_(None))
                .values(closed_at=datetime.fromtimestamp(at, UTC), position=position,
                        kind=kind[:16] if kind else None)
            ).rowcount
            if not closed:
                return None
            row = connection.execute(select(slates).where(slates.c.id == slate_id)).one()
        return _record(row)

    def slates(self, closed_only: bool = True, since: float | None = None,
               until: float | None = None) -> Iterator[SlateRecord]:
        """Slates shown from `since` to before `until` (unix seconds), oldest first."""
        query = select(slates).order_by(slates.c.shown_at, slates.c.id)
        if since is not None:
            query = query.where(slates.c.shown_at >= datetime.fromtimestamp(since, UTC))
        if until is not None:
            query = query.where(slates.c.shown_at < datetime.fromtimestamp(until, UTC))
        if closed_only:
            query = query.where(slates.c.closed_at.is_not(None))
        with self._database.reads.connect() as connection:
            for row in connection.execute(query):
                yield _record(row)

    def bandit_state(self, name: str) -> dict[str, Any] | None:
        with self._database.reads.connect() as connection:
            value = connection.scalar(select(bandit_state.c.state)
                                      .where(bandit_state.c.name == name))
        return dict(value) if value else None

    def update_bandit(self, name: str,
                      change: Callable[[dict[str, Any] | None], dict[str, Any]]) -> None:
        """Replace the state by `change(current)` under the row's lock."""
        now = datetime.now(UTC)
        with self._database.engine.begin() as connection:
            if self._database.dialect == "sqlite":  # take the writer's lock before reading
                connection.execute(update(bandit_state).where(bandit_state.c.name == name)
                                   .values(updated_at=now))
            query = select(bandit_state.c.state).where(bandit_state.c.name == name)
            if self._database.dialect == "postgresql":
                query = query.with_for_update()
            current = connection.scalar(query)
            state = change(dict(current) if current else None)
            if current is None:
                connection.execute(insert(bandit_state).values(name=name, state=state,
                                                               updated_at=now))
            else:
                connection.execute(update(bandit_state).where(bandit_state.c.name == name)
                                   .values(state=state, updated_at=now))

    def reset_bandit(self, name: str) -> None:
        with self._database.engine.begin() as connection:
            connection.execute(bandit_state.delete().where(bandit_state.c.name == name))


def _record(row: Any) -> SlateRecord:
    return SlateRecord(
        row.id, _unix(row.shown_at), row.policy, row.candidates, row.shown, row.propensities,
        row.position, row.kind, row.closed_at is not None,
    )


def _unix(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
