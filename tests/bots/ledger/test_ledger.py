"""The adapters' ledger on both backends: real Redis (DB 12) and a SQLite file."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bots.ledger.payloads import SHORT_PREFIX, full_payload, short_payload
from bots.ledger.redis import RedisLedger
from bots.ledger.sqlite import SqliteLedger
from bots.ledger.store import Ledger
from tests.conftest import redis_namespace

REDIS_URL = "redis://127.0.0.1:6379/12"


@pytest.fixture(params=["redis", "sqlite"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    if request.param == "sqlite":
        yield SqliteLedger(tmp_path / "ledger.sqlite3", ttl_s=3600)
        return
    with redis_namespace("test-ledger", REDIS_URL) as prefix:
        yield RedisLedger(REDIS_URL, prefix, ttl_s=3600)


def test_claim_is_true_once(ledger: Ledger):
    assert ledger.claim("telegram:message:1:1") is True
    assert ledger.claim("telegram:message:1:1") is False
    assert ledger.claim("telegram:message:1:2") is True


def test_claim_expires(ledger: Ledger):
    assert ledger.claim("slack:message:x", ttl_s=1) is True
    time.sleep(1.2)
    assert ledger.claim("slack:message:x", ttl_s=1) is True


def test_long_payloads_get_short_ids_that_resolve(ledger: Ledger):
    long = "details:" + "P0123," * 20
    data = short_payload(ledger, long, 64)
    assert data.startswith(SHORT_PREFIX) and len(data.encode()) <= 64
    assert short_payload(ledger, long, 64) == data  # same payload, same id
    assert full_payload(ledger, data) == long
    assert short_payload(ledger, "more:P0123:2", 64) == "more:P0123:2"
    assert full_payload(ledger, "more:P0123:2") == "more:P0123:2"
    assert full_payload(ledger, "~unknown") == "~unknown"  # the core answers unknown buttons


def test_sqlite_ledger_survives_a_restart(tmp_path: Path):
    path = tmp_path / "ledger.sqlite3"
    data = short_payload(SqliteLedger(path, 3600), "x" * 100, 64)
    SqliteLedger(path, 3600).claim("seen")
    reopened = SqliteLedger(path, 3600)
    assert full_payload(reopened, data) == "x" * 100
    assert reopened.claim("seen") is False


def test_redis_ledger_fails_open_when_redis_is_away():
    # Nothing listens on port 1: every call fails fast; the customer is still answered.
    away = RedisLedger("redis://127.0.0.1:1/0", "concierge-test", 60, timeout_s=0.2)
    assert away.claim("telegram:message:9:9") is True
    away.put("payload:abc", "more:P0123:2")
    assert away.get("payload:abc") is None
    assert full_payload(away, "~abc") == "~abc"
