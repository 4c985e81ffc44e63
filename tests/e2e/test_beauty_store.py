"""The terminal chat against a second, real store: the Amazon Beauty catalog and customers,
converted by `core.shop.beauty` and imported like any shop's files. Suggestions keep to the
budget and the category asked for, and an order's status is read as the database has it now."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from core.infra.settings import Settings
from core.shop.beauty import convert_beauty
from core.shop.catalog import Product
from core.shopdb.database import ShopDatabase
from core.shopdb.importer import import_store
from core.shopdb.tables import orders
from tests.processes import clean_env

BEAUTY = Settings().data_dir / "amazon_beauty"
pytestmark = pytest.mark.skipif(not BEAUTY.exists(), reason=f"no Amazon Beauty data at {BEAUTY}")
SUGGESTION = re.compile(r"^\d\. (.+) — \$([\d,]+\.\d\d)$", re.MULTILINE)


@dataclass(frozen=True)
class BeautyStore:
    url: str
    by_title: dict[str, Product]
    customer: str  # bought a conditioner
    order_id: str  # their newest order


@pytest.fixture(scope="module")
def beauty_store(tmp_path_factory: pytest.TempPathFactory) -> BeautyStore:
    folder = tmp_path_factory.mktemp("beauty")
    files = convert_beauty(BEAUTY, folder)
    url = f"sqlite:///{folder / 'store.sqlite3'}"
    database = ShopDatabase(url)
    report = import_store(database, {
        "catalog": files.catalog, "customers": files.customers, "orders": files.orders,
        "articles": Settings().demo_dir / "faq.jsonl",
    })
    assert report.bad == []
    products = database.products()
    conditioners = {p.id for p in products if p.subcategory == "Conditioners"}
    with files.orders.open(encoding="utf-8") as handle:
        buyer = next(
            order["customer_id"] for order in map(json.loads, handle)
            if any(item["item_id"] in conditioners for item in order["items"])
        )
    newest = database.orders_of(buyer)[0]
    database.close()
    return BeautyStore(url, {p.title: p for p in products}, buyer, newest.id)


class Chat:
    """`concierge chat` in its own process, spoken to line by line through a pipe."""

    def __init__(self, tmp_path: Path, store_url: str, user: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bots.terminal", "--user", user],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=tmp_path, env=clean_env(sqlite_path=tmp_path / "state.sqlite3",
                                        store_url=store_url),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.output = ""

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def say(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def wait_for(self, pattern: str, timeout: float = 300) -> str:
        """The output up to the first line matching `pattern` (the first turn loads models
        and encodes the catalog's text once)."""
        while not re.search(pattern, self.output):
            try:
                self.output += self.lines.get(timeout=timeout)
            except queue.Empty:
                self.process.kill()
                raise AssertionError(f"no {pattern!r} in {self.output!r}") from None
        return self.output

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        assert self.process.wait(timeout=60) == 0


def suggestions(reply: str, store: BeautyStore) -> list[Product]:
    found = [store.by_title[title] for title, _ in SUGGESTION.findall(reply)]
    assert found, reply
    return found


def test_the_chat_serves_the_beauty_store(beauty_store: BeautyStore, tmp_path: Path) -> None:
    chat = Chat(tmp_path, beauty_store.url, beauty_store.customer)
    chat.say("a fragrance for women under $40")
    fragrances = chat.wait_for(r"\[9\] Details 3")
    for product in suggestions(fragrances, beauty_store):
        assert product.price <= 40 and product.category == "Fragrance", product
    chat.say("now a conditioner like the one I bought, any price")
    conditioners = chat.wait_for(r"(?s)Details 3.*Details 3")[len(fragrances):]
    for product in suggestions(conditioners, beauty_store):
        assert product.category == "Hair Care", product
    chat.say(f"where is my order {beauty_store.order_id}?")
    before = chat.wait_for(rf"Order #{beauty_store.order_id} ")[len(fragrances + conditioners):]
    assert "was returned to us" not in before
    # The shop records a return in its database while the chat runs.
    database = ShopDatabase(beauty_store.url)
    order = database.order(beauty_store.order_id)
    assert order is not None and order.shipped_at is not None
    with database.engine.begin() as connection:
        connection.execute(update(orders).where(orders.c.id == order.id).values(
            status="returned", delivered_at=order.shipped_at + timedelta(days=3)))
    database.close()
    chat.say(f"and what about order {beauty_store.order_id} now?")
    after = chat.wait_for(rf"(?s)Order #{beauty_store.order_id} .*Order #{beauty_store.order_id} ")
    assert "was returned to us" in after[len(fragrances + conditioners + before):]
    chat.close()
