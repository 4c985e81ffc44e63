"""The adapters' ledger in a SQLite file of its own, next to the state file."""

from __future__ import annotations

import time
from pathlib import Path

from bots.ledger.store import DELIVERY_TTL_S, failed_open, stored_key
from core.infra.errors import StoreUnavailable
from core.infra.sqlite_file import SqliteFile

SCHEMA = """
CREATE TABLE IF NOT EXISTS adapter_ledger (
    key TEXT PRIMARY KEY, value TEXT NOT NULL, expires REAL NOT NULL);
"""


class SqliteLedger:
    def __init__(self, path: Path, ttl_s: int, busy_timeout_s: float = 5.0) -> None:
        self.path = path
        self.ttl_s = ttl_s
        self.file = SqliteFile(path, SCHEMA, "adapter ledger", busy_timeout_s)

    def claim(self, key: str, ttl_s: int = DELIVERY_TTL_S) -> bool:
        now = time.time()
        try:
            with self.file.transaction() as db:
                # New key, or an expired one taken over: one row changed. A live key: none.
                cursor = db.execute(
                    "INSERT INTO adapter_ledger VALUES (?, '1', ?) ON CONFLICT(key) DO UPDATE"
                    " SET value = '1', expires = excluded.expires WHERE adapter_ledger.expires < ?",
                    (stored_key(key), now + ttl_s, now),
                )
                return cursor.rowcount == 1
        except StoreUnavailable as error:
            return failed_open("claim", error, True)

    def put(self, key: str, value: str) -> None:
        try:
            with self.file.transaction() as db:
                db.execute(
                    "INSERT OR REPLACE INTO adapter_ledger VALUES (?, ?, ?)",
                    (stored_key(key), value, time.time() + self.ttl_s),
                )
        except StoreUnavailable as error:
            failed_open("put", error, None)

    def get(self, key: str) -> str | None:
        try:
            with self.file.guard():
                row = (
                    self.file.connection()
                    .execute(
                        "SELECT value FROM adapter_ledger WHERE key = ? AND expires >= ?",
                        (stored_key(key), time.time()),
                    )
                    .fetchone()
                )
        except StoreUnavailable as error:
            return failed_open("get", error, None)
        return None if row is None else str(row[0])
