"""Deliveries as rows of a table in the SQLite state file, polled by the receiving process."""

from __future__ import annotations

import time
from pathlib import Path

from core.handover.deliveries.store import DEDUP_TTL_S, Delivery, Taken
from core.infra.sqlite_file import SqliteFile

PURGE_EVERY = 500  # acknowledgements between clean-ups of long-delivered rows

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, topic TEXT NOT NULL,
    body TEXT NOT NULL, lease_until REAL NOT NULL DEFAULT 0, done_at REAL);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (topic, done_at, seq);
"""


class SqliteDeliveryQueue:
    """A table in the state file, polled by the receiving process."""

    def __init__(
        self, path: Path, lease_s: float = 30.0, poll_s: float = 0.05, busy_timeout_s: float = 5.0
    ) -> None:
        self.path = path
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.file = SqliteFile(path, SCHEMA, "delivery queue", busy_timeout_s)
        self._acks = 0

    def put(self, delivery: Delivery) -> bool:
        with self.file.transaction() as db:
            cursor = db.execute(
                "INSERT INTO deliveries (id, topic, body) VALUES (?, ?, ?) "
                "ON CONFLICT(id) DO NOTHING",
                (delivery.id, delivery.topic, delivery.model_dump_json()),
            )
            return cursor.rowcount == 1

    def take(self, topic: str, limit: int = 10, wait_s: float = 1.0) -> list[Taken]:
        deadline = time.monotonic() + wait_s
        while True:
            taken = self._take_now(topic, limit)
            if taken or time.monotonic() >= deadline:
                return taken
            time.sleep(self.poll_s)

    def ack(self, topic: str, taken: Taken) -> None:
        with self.file.transaction() as db:
            db.execute(
                "UPDATE deliveries SET done_at = ? WHERE id = ?", (time.time(), taken.receipt)
            )
        self._acks += 1
        if self._acks % PURGE_EVERY == 0:
            with self.file.transaction() as db:
                db.execute(
                    "DELETE FROM deliveries WHERE done_at IS NOT NULL AND done_at < ?",
                    (time.time() - DEDUP_TTL_S,),
                )

    def _take_now(self, topic: str, limit: int) -> list[Taken]:
        now = time.time()
        with self.file.transaction() as db:
            rows = db.execute(
                "SELECT id, body FROM deliveries WHERE topic = ? AND done_at IS NULL "
                "AND lease_until < ? ORDER BY seq LIMIT ?",
                (topic, now, limit),
            ).fetchall()
            db.executemany(
                "UPDATE deliveries SET lease_until = ? WHERE id = ?",
                [(now + self.lease_s, row[0]) for row in rows],
            )
        return [Taken(row[0], Delivery.model_validate_json(row[1])) for row in rows]
