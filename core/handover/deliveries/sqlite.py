"""Deliveries as rows of a table in the SQLite state file, polled by the receiving process.

Each change is one statement or one immediate transaction, so there is no half-done state: a
put inserts the row (its id is the deduplication key) or nothing. A row remembers who holds its
lease (`holder`) and how often it was handed out (`attempts`), so a renewal never takes back a
row another consumer reclaimed, and a restart does not reset the count. A dead letter is a row
marked done with `dead_at` and its `reason`, kept as long as delivered rows are.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from core.handover.deliveries.store import DEDUP_TTL_S, DeadLetter, Delivery, Taken
from core.infra.sqlite_file import AddedColumn, SqliteFile

PURGE_EVERY = 500  # acknowledgements between clean-ups of long-delivered rows

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, topic TEXT NOT NULL,
    body TEXT NOT NULL, lease_until REAL NOT NULL DEFAULT 0, done_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0, holder TEXT NOT NULL DEFAULT '', dead_at REAL,
    reason TEXT);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (topic, done_at, seq);
"""
ADDED = (
    AddedColumn("deliveries", "attempts", "INTEGER NOT NULL DEFAULT 0"),
    AddedColumn("deliveries", "holder", "TEXT NOT NULL DEFAULT ''"),
    AddedColumn("deliveries", "dead_at", "REAL"),
    AddedColumn("deliveries", "reason", "TEXT"),
)


class SqliteDeliveryQueue:
    """A table in the state file, polled by the receiving process."""

    def __init__(
        self,
        path: Path,
        lease_s: float = 30.0,
        poll_s: float = 0.05,
        busy_timeout_s: float = 5.0,
        consumer: str | None = None,
    ) -> None:
        self.path = path
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.consumer = consumer or f"c-{threading.get_native_id()}-{uuid.uuid4().hex[:8]}"
        self.file = SqliteFile(path, SCHEMA, "delivery queue", busy_timeout_s, ADDED)
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

    def renew(self, topic: str, taken: Sequence[Taken]) -> list[Taken]:
        held = []
        with self.file.transaction() as db:
            until = time.time() + self.lease_s
            for item in taken:
                cursor = db.execute(
                    "UPDATE deliveries SET lease_until = ? "
                    "WHERE id = ? AND holder = ? AND done_at IS NULL",
                    (until, item.receipt, self.consumer),
                )
                if cursor.rowcount == 1:
                    held.append(item)
        return held

    def bury(self, topic: str, taken: Taken, reason: str) -> DeadLetter:
        letter = DeadLetter(taken.delivery, reason, taken.attempts, time.time())
        with self.file.transaction() as db:
            db.execute(
                "UPDATE deliveries SET done_at = ?, dead_at = ?, reason = ? WHERE id = ?",
                (letter.at, letter.at, reason, taken.receipt),
            )
        return letter

    def dead_letters(self, topic: str, limit: int = 100) -> list[DeadLetter]:
        with self.file.guard():
            rows = self.file.connection().execute(
                "SELECT body, reason, attempts, dead_at FROM deliveries "
                "WHERE topic = ? AND dead_at IS NOT NULL ORDER BY dead_at, seq LIMIT ?",
                (topic, limit),
            ).fetchall()
        return [
            DeadLetter(Delivery.model_validate_json(body), reason or "", attempts, dead_at)
            for body, reason, attempts, dead_at in rows
        ]

    def _take_now(self, topic: str, limit: int) -> list[Taken]:
        now = time.time()
        with self.file.transaction() as db:
            rows = db.execute(
                "SELECT id, body, attempts FROM deliveries WHERE topic = ? AND done_at IS NULL "
                "AND lease_until < ? ORDER BY seq LIMIT ?",
                (topic, now, limit),
            ).fetchall()
            db.executemany(
                "UPDATE deliveries SET lease_until = ?, holder = ?, attempts = attempts + 1 "
                "WHERE id = ?",
                [(now + self.lease_s, self.consumer, row[0]) for row in rows],
            )
        return [
            Taken(row[0], Delivery.model_validate_json(row[1]), row[2] + 1) for row in rows
        ]
