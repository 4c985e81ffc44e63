"""Store databases for the tests: a SQLite file in the test's folder, or a PostgreSQL database
of the test's own on the machine's server (127.0.0.1:5432), dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from core.shopdb.database import ShopDatabase

POSTGRES = "postgresql://postgres@127.0.0.1:5432"


def postgres_database() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database; dropped when the generator closes."""
    name = f"concierge_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(f"{POSTGRES}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 does not answer ({error}): .ci/run starts it")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{POSTGRES}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite3'}"
    else:
        yield from postgres_database()


@pytest.fixture
def database(store_url: str) -> Iterator[ShopDatabase]:
    opened = ShopDatabase(store_url)
    yield opened
    opened.close()
