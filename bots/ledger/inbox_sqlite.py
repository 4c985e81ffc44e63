"""The adapters' inbox in the ledger's SQLite file (one bot process per platform, or several
sharing the file on one host)."""

from __future__ import annotations

import time
from pathlib import Path

from bots.ledger.inbox import INBOX_TTL_S, Pending
from core.infra.sqlite_file import SqliteFile

SCHEMA = """
CREATE TABLE IF NOT EXISTS adapter_inbox (
    ref TEXT PRIMARY KEY, platform TEXT NOT NULL, body TEXT, lease REAL NOT NULL,
    attempts INTEGER NOT NULL, expires REAL NOT NULL);
CREATE INDEX IF NOT EXISTS adapter_inbox_due ON adapter_inbox (platform, lease);
"""


class SqliteInbox:
    """Rows: a settled message keeps its ref (the digest) and nothing else (body NULL)."""

    def __init__(self, path: Path, busy_timeout_s: float = 5.0) -> None:
        self.path = path
        self.file = SqliteFile(path, SCHEMA, "adapter inbox", busy_timeout_s)

    def accept(self, pending: Pending, lease_s: float) -> bool:
        now = time.time()
        with self.file.transaction() as db:
            # A new key, or an expired one taken over: one row changed. A live key: none.
            cursor = db.execute(
                "INSERT INTO adapter_inbox VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT(ref) DO UPDATE"
                " SET platform = excluded.platform, body = excluded.body,"
                " lease = excluded.lease, attempts = 0, expires = excluded.expires"
                " WHERE adapter_inbox.expires < ?",
                (pending.ref, pending.incoming.platform, pending.body(), now + lease_s,
                 now + INBOX_TTL_S, now),
            )
            return cursor.rowcount == 1

    def renew(self, ref: str, lease_s: float) -> None:
        self._set_lease(ref, time.time() + lease_s)

    def release(self, ref: str) -> None:
        self._set_lease(ref, 0.0)

    def _set_lease(self, ref: str, lease: float) -> None:
        with self.file.transaction() as db:
            db.execute(
                "UPDATE adapter_inbox SET lease = ? WHERE ref = ? AND body IS NOT NULL",
                (lease, ref),
            )

    def settle(self, ref: str) -> None:
        with self.file.transaction() as db:
            db.execute("UPDATE adapter_inbox SET body = NULL WHERE ref = ?", (ref,))

    def take_stale(self, platform: str, lease_s: float, limit: int = 20) -> list[Pending]:
        now = time.time()
        with self.file.transaction() as db:  # BEGIN IMMEDIATE: one taker at a time
            db.execute("DELETE FROM adapter_inbox WHERE expires < ?", (now,))
            rows = db.execute(
                "SELECT ref, body, attempts FROM adapter_inbox WHERE platform = ?"
                " AND body IS NOT NULL AND lease < ? ORDER BY lease LIMIT ?",
                (platform, now, limit),
            ).fetchall()
            db.executemany(
                "UPDATE adapter_inbox SET lease = ?, attempts = attempts + 1 WHERE ref = ?",
                [(now + lease_s, ref) for ref, _body, _attempts in rows],
            )
        return [Pending.from_body(ref, body, attempts + 1) for ref, body, attempts in rows]
