"""The store database on SQLite and on PostgreSQL, through the same suite: import, upsert, bad
rows, a failing import rolled back, order lookup, and a change seen live by another process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from core.infra.errors import StoreNotReady
from core.infra.settings import Settings
from core.shopdb.database import ShopDatabase
from core.shopdb.importer import ImportFailed, import_store
from core.shopdb.services import StoreFeedbackLog, open_shop
from tests.conftest import demo_store_files
from tests.processes import clean_env

DEMO = Settings().demo_dir


def write_lines(path: Path, records: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records),
                    encoding="utf-8")
    return path


def imported_demo(database: ShopDatabase) -> None:
    report = import_store(database, demo_store_files(DEMO))
    assert report.bad == []


def test_the_demo_store_imports_and_orders_are_found(database: ShopDatabase) -> None:
    imported_demo(database)
    counts = database.counts()
    assert counts["products"] == 322 and counts["customers"] == 220
    assert counts["orders"] == 2085 and counts["articles"] == 32
    order = database.order("#10043")
    assert order is not None and order.customer_id == "C0036" and order.status == "delivered"
    assert order.placed_at.tzinfo is not None
    mine = database.orders_of("C0036")
    assert len(mine) == 14 and all(o.customer_id == "C0036" for o in mine)
    assert [o.placed_at for o in mine] == sorted((o.placed_at for o in mine), reverse=True)
    assert database.order("99999") is None
    shop = open_shop(database)
    jacket = shop.catalog.get("P0001")
    assert jacket is not None and jacket.title == "Alpenglow Echo Rain Jacket"
    answer = shop.knowledge.answer("how much does express shipping cost?")
    assert answer is not None and answer.article.topic == "shipping"


def test_an_import_upserts_the_columns_it_gives_and_keeps_unknown_ones(
    database: ShopDatabase, tmp_path: Path
) -> None:
    imported_demo(database)
    before = database.version("catalog")
    catalog = write_lines(tmp_path / "catalog.jsonl", [
        {"id": "P0001", "title": "Alpenglow Echo Rain Jacket", "price": 59.5, "stock": 3},
        {"id": "sku-α-7", "title": "Plain Tote", "price": 12, "fabric": "canvas"},
    ])
    report = import_store(database, {"catalog": catalog})
    assert report.imported == {"catalog": 2} and report.bad == []
    assert database.counts()["products"] == 323
    products = {p.id: p for p in database.products()}
    jacket = products["P0001"]
    assert jacket.price == 59.5 and jacket.stock == 3
    # Columns the file does not give keep what the store had.
    assert (jacket.brand, jacket.category, jacket.rating) == ("Alpenglow", "outerwear", 4.5)
    tote = products["sku-α-7"]
    assert tote.price == 12 and tote.rating is None and tote.model_extra == {"fabric": "canvas"}
    assert database.version("catalog") > before  # every process re-reads its catalog


def test_csv_files_import_with_lists_and_nested_json(
    database: ShopDatabase, tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("id,title,price,colors,category\n"
                       "A-1,Linen Shirt,45,white|navy,shirts\n"
                       "A-2,Wool Scarf,30,,accessories\n", encoding="utf-8")
    customers = tmp_path / "customers.csv"
    customers.write_text("id,name,email,city,joined\n"
                         "cust-9,Ada L,ada@example.com,Leeds,2024-02-01\n", encoding="utf-8")
    orders = tmp_path / "orders.csv"
    items = json.dumps([{"item_id": "A-1", "title": "Linen Shirt", "quantity": 2,
                         "unit_price": 45}]).replace('"', '""')
    orders.write_text(
        "id,customer_id,items,total,status,placed_at,estimated_delivery,carrier,"
        "shipping_address_city,shipping_method\n"
        f'SO-1,cust-9,"{items}",90,processing,2025-03-01T10:00:00Z,2025-03-06,UPS,Leeds,'
        "standard\n", encoding="utf-8")
    report = import_store(database, {"catalog": catalog, "customers": customers,
                                     "orders": orders})
    assert report.bad == [] and report.imported == {"catalog": 2, "customers": 1, "orders": 1}
    shirt = {p.id: p for p in database.products()}["A-1"]
    assert shirt.colors == ("white", "navy") and shirt.category == "shirts"
    order = database.order("so-1")  # typed in lower case, found as the shop wrote it
    assert order is not None and order.items[0].quantity == 2 and order.total == 90


def test_bad_rows_are_reported_and_good_rows_imported(
    database: ShopDatabase, tmp_path: Path
) -> None:
    imported_demo(database)
    catalog = write_lines(tmp_path / "catalog.jsonl", [
        {"id": "N1", "title": "Good One", "price": 10},
        "{not json",
        {"id": "N2", "title": "No Price"},
        {"id": "N1", "title": "Again", "price": 11},
        {"id": "N3", "title": "Free", "price": 0},
    ])
    order = json.loads((DEMO / "orders.jsonl").read_text().splitlines()[0])
    orders = write_lines(tmp_path / "orders.jsonl", [
        order | {"id": "X1", "customer_id": "nobody"},
        order | {"id": "X2", "items": [order["items"][0] | {"item_id": "ghost"}]},
        order | {"id": "X3"},
    ])
    report = import_store(database, {"catalog": catalog, "orders": orders})
    reasons = [str(bad) for bad in report.bad]
    assert reasons[0] == (
        f"{catalog}:2: invalid JSON: key must be a string at line 1 column 2"
    )
    assert reasons[1].startswith(f"{catalog}:3: invalid Product: price: Field required")
    assert reasons[2] == f"{catalog}:4: repeats catalog N1 of an earlier line"
    assert reasons[3].startswith(f"{catalog}:5: invalid Product: price:")
    assert reasons[4] == f"{orders}:1: unknown customer nobody"
    assert reasons[5] == f"{orders}:2: unknown product ghost"
    assert report.imported == {"catalog": 1, "orders": 1}
    assert database.order("X3") is not None and database.order("X1") is None
    assert {p.id for p in database.products()} >= {"N1"}


def test_a_failing_import_leaves_the_database_as_it_was(
    database: ShopDatabase, tmp_path: Path
) -> None:
    imported_demo(database)
    before = database.counts()
    catalog = write_lines(tmp_path / "catalog.jsonl", [
        {"id": "P0001", "title": "Renamed", "price": 1.5},
        {"id": "NEW", "title": "New", "price": 2},
    ])
    broken = tmp_path / "orders.jsonl"  # good lines, then bytes that are not UTF-8
    broken.write_bytes((DEMO / "orders.jsonl").read_bytes()[:3000].rsplit(b"\n", 1)[0]
                       + b"\n\xff\xfe\n")
    with pytest.raises(ImportFailed, match="cannot read the file, nothing was imported"):
        import_store(database, {"catalog": catalog, "orders": broken})
    assert database.counts() == before
    assert {p.id: p for p in database.products()}["P0001"].title != "Renamed"
    with pytest.raises(ImportFailed, match="file not found"):
        import_store(database, {"catalog": tmp_path / "missing.jsonl"})


def test_a_store_without_schema_or_products_says_what_to_run(store_url: str) -> None:
    database = ShopDatabase(store_url)
    with pytest.raises(StoreNotReady, match=r"no schema yet.*concierge store import"):
        open_shop(database)
    database.migrate()
    assert database.migrate() == "0004"  # a second run changes nothing
    with pytest.raises(StoreNotReady, match=r"no products.*store import --demo"):
        open_shop(database)
    database.close()


WATCHER = """
import sys, time
from core.shopdb.database import ShopDatabase
from core.shopdb.services import StoreFeedbackLog, open_shop
shop = open_shop(ShopDatabase(sys.argv[1]), check_s=0.2)
def seen():
    product, order = shop.catalog.get("P0001"), shop.orders.get("10043")
    new = shop.catalog.get("NEW-1")
    return f"{product.price} {product.stock} {order.status} {new is not None}"
print("ready", seen(), flush=True)
deadline = time.monotonic() + 30
while time.monotonic() < deadline and not seen().endswith("True"):  # the last change made
    time.sleep(0.05)
print("changed", seen(), flush=True)
"""


def test_a_change_in_the_database_is_seen_by_another_process(
    database: ShopDatabase, tmp_path: Path
) -> None:
    imported_demo(database)
    watcher = subprocess.Popen(
        [sys.executable, "-c", WATCHER, database.url.render_as_string(hide_password=False)],
        cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert watcher.stdout is not None
    ready = watcher.stdout.readline().split()
    assert ready[:1] == ["ready"], watcher.stderr.read() if watcher.stderr else ""
    assert ready[3:] == ["delivered", "False"]
    # The shop changes a price, a stock level and an order status with plain SQL, and adds a
    # product by an import: no restart, no reload asked for.
    started = time.monotonic()
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE products SET price = 12.34, stock = 0 "
                                "WHERE id = 'P0001'"))
        connection.execute(text("UPDATE orders SET status = 'returned' WHERE id = '10043'"))
    new = write_lines(tmp_path / "new.jsonl", [{"id": "NEW-1", "title": "New", "price": 5}])
    import_store(database, {"catalog": new})
    out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err
    assert out.split() == ["changed", "12.34", "0", "returned", "True"]
    assert time.monotonic() - started < 10  # within seconds


def test_button_feedback_is_kept_for_training_and_dislikes_are_not_learned(
    database: ShopDatabase,
) -> None:
    imported_demo(database)
    log = StoreFeedbackLog(database)
    log.record("guest-7", "P0001", "more_like_this", 1_764_000_000.0)
    log.record("guest-7", "P0002", "not_for_me", 1_764_000_001.0)
    log.record("guest-7", "P0001", "more_like_this", 1_764_000_000.0)  # a redelivery: once
    assert database.counts()["interactions"] == 2
    learned = [(item, when.timestamp()) for who, item, when in database.purchase_events()
               if who == "guest-7"]
    assert learned == [("P0001", 1_764_000_000.0)]
