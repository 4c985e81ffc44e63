"""Loaders: generic interaction and item files, the Amazon Beauty set, the demo store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.infra.settings import Settings
from workers.recommender.data import load_beauty, load_demo, load_files
from workers.recommender.split import leave_one_out


def test_generic_tsv_and_jsonl_are_joined_and_ordered_by_time(tmp_path: Path) -> None:
    (tmp_path / "events.tsv").write_text(
        "user_id\titem_id\ttimestamp\trating\n"
        "u1\tB\t20\t5\nu1\tA\t10\t4\nu1\tC\t30\t3\nu2\tC\t5\t5\nu2\tZ\t6\t1\n",
        encoding="utf-8",
    )
    items = [
        {
            "id": "A",
            "title": "Alpha Boot",
            "category": "footwear",
            "subcategory": "boots",
            "attributes": ["waterproof"],
            "colors": ["black"],
            "price": 80,
        },
        {"item_id": "B", "title": "Beta Jacket", "description": "Warm.", "brand": "North"},
        {"item_id": "C", "title": "Gamma Hat"},
    ]
    (tmp_path / "items.jsonl").write_text(
        "\n".join(json.dumps(item) for item in items) + "\n", encoding="utf-8"
    )
    data = load_files(tmp_path / "events.tsv", tmp_path / "items.jsonl")
    assert [item.item_id for item in data.items] == ["A", "B", "C"]
    assert data.sequences == {"u1": [1, 2, 3], "u2": [3]}  # Z is not an item: skipped
    first = data.items[0]
    assert first.category == "footwear > boots" and first.price == 80.0
    assert "waterproof" in first.text() and "black" in first.text()
    assert first.request_text() == "boots"


def test_generic_csv_items(tmp_path: Path) -> None:
    (tmp_path / "events.csv").write_text("user_id,item_id,timestamp\nu,1,1\nu,2,2\n")
    (tmp_path / "items.csv").write_text("item_id,title,category\n1,One,x\n2,Two,y\n")
    data = load_files(tmp_path / "events.csv", tmp_path / "items.csv")
    assert data.n_items == 2 and data.sequences == {"u": [1, 2]}


def test_leave_one_out_and_cold_items(tmp_path: Path) -> None:
    from workers.recommender.data import InteractionData, ItemRecord

    items = tuple(ItemRecord(item_id=str(n), title=str(n)) for n in range(1, 21))
    data = InteractionData("t", items, {"a": [1, 2, 3, 4, 5], "b": [6, 7], "c": [8]})
    split = leave_one_out(data)
    assert split.train == {"a": [1, 2, 3], "b": [6], "c": [8]}
    assert [(c.history, c.target) for c in split.valid] == [((1, 2, 3), 4)]
    assert [(c.history, c.target) for c in split.test] == [((1, 2, 3, 4), 5), ((6,), 7)]
    cold = leave_one_out(data, cold_fraction=0.25, seed=3)
    assert len(cold.cold_items) == 5
    assert all(i not in cold.cold_items for seq in cold.train.values() for i in seq)


BEAUTY = Settings().data_dir / "amazon_beauty"


@pytest.mark.skipif(not BEAUTY.exists(), reason="public data set not on this machine")
def test_beauty_loader_joins_sequences_and_metadata() -> None:
    data = load_beauty(BEAUTY)
    assert data.n_items == 12101 and len(data.sequences) == 22363
    assert sum(len(s) for s in data.sequences.values()) == 198502
    assert data.items[0].item_id == "B004756YJA"
    assert data.items[0].title.startswith("OPI Nail Lacquer")
    assert data.items[0].category == "Makeup > Nails > Nail Polish"


def test_demo_store_loads() -> None:
    data = load_demo(Settings().demo_dir)
    assert data.n_items > 100 and len(data.sequences) > 100
    assert all(1 <= i <= data.n_items for s in data.sequences.values() for i in s)
