"""Shared by worker tests: the default understanding model, and a tiny store (catalog,
interactions) with a recommender trained on it."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.infra.settings import Settings
from core.shopdb.database import ShopDatabase
from core.shopdb.importer import import_store
from core.turn.taxonomy import DEFAULT_PATH
from workers.encoder import configure_torch
from workers.nlu.cli import train_nlu_main
from workers.nlu.training import is_current
from workers.recommender.data import load_demo
from workers.recommender.model import RecommenderConfig
from workers.recommender.train import TrainConfig, train


@pytest.fixture(scope="session")
def nlu_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default understanding model: models/nlu when it was built by this code from this
    taxonomy, otherwise trained now into a temporary directory (about a minute on one thread).
    Read it, never write to it: it may be the project's own models/nlu."""
    configure_torch(1)
    built = Settings().nlu_path
    if is_current(built, DEFAULT_PATH):
        return built
    directory = tmp_path_factory.mktemp("nlu")
    assert train_nlu_main(["--out", str(directory)]) == 0
    return directory


KINDS = [
    # (category, subcategory, noun, attributes, colors, price range)
    (
        "outerwear",
        "rain-jackets",
        "Rain Jacket",
        ("waterproof", "packable"),
        ("navy", "red"),
        (40, 140),
    ),
    ("outerwear", "fleece", "Fleece Pullover", ("warm",), ("grey", "olive"), (25, 80)),
    ("footwear", "hiking-boots", "Hiking Boot", ("waterproof",), ("brown", "black"), (60, 200)),
    ("footwear", "sneakers", "Running Sneaker", ("breathable",), ("white", "black"), (40, 150)),
    ("beauty", "lipstick", "Matte Lipstick", ("vegan", "cruelty-free"), ("red", "nude"), (8, 30)),
    ("beauty", "moisturizer", "Daily Moisturizer", ("vegan",), (), (10, 45)),
    ("kitchen", "cookware", "Cast Iron Skillet", ("dishwasher-safe",), ("black",), (20, 90)),
    ("kitchen", "knives", "Chef Knife", (), ("silver",), (15, 120)),
]
BRANDS = ["Alpenglow", "Stormline", "Northfield", "Lumen", "Harbor"]


@dataclass(frozen=True)
class TinyStore:
    folder: Path  # holds catalog.jsonl and interactions.csv
    model_dir: Path
    products: list[dict[str, object]]
    store_url: str  # the same catalog and interactions in a store database


def import_tiny_store(folder: Path) -> str:
    """The catalog and interactions `write_store` wrote, imported into a store database in the
    same folder; its URL."""
    url = f"sqlite:///{folder / 'store.sqlite3'}"
    database = ShopDatabase(url)
    report = import_store(database, {"catalog": folder / "catalog.jsonl",
                                     "interactions": folder / "interactions.csv"})
    database.close()
    assert report.bad == [], report.bad[:3]
    return url


def write_store(folder: Path, seed: int = 5) -> list[dict[str, object]]:
    rng = random.Random(seed)
    products: list[dict[str, object]] = []
    for number in range(1, 81):
        category, sub, noun, attributes, colors, (low, high) = KINDS[(number - 1) % len(KINDS)]
        brand = BRANDS[number % len(BRANDS)]
        tags = tuple(a for a in attributes if rng.random() < 0.8)
        products.append(
            {
                "id": f"P{number:04d}",
                "title": f"{brand} {noun} {number}",
                "brand": brand,
                "category": category,
                "subcategory": sub,
                "price": round(rng.uniform(low, high), 2),
                "currency": "USD",
                "colors": list(colors),
                "sizes": [],
                "description": f"A {noun.lower()} from {brand}.",
                "attributes": list(tags),
                "rating": round(rng.uniform(3.5, 5.0), 1),
                "review_count": rng.randrange(0, 900),
                "stock": 0 if number % 13 == 0 else rng.randrange(1, 50),
                "materials": "",
                "warranty_months": 12,
            }
        )
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "catalog.jsonl").open("w", encoding="utf-8") as handle:
        for product in products:
            handle.write(json.dumps(product) + "\n")
    # Customers stay within one subcategory: a signal the model can learn.
    lines = ["user_id,item_id,timestamp,rating"]
    by_kind: dict[int, list[str]] = {}
    for index, product in enumerate(products):
        by_kind.setdefault(index % len(KINDS), []).append(str(product["id"]))
    for user in range(1, 121):
        kind = user % len(KINDS)
        for step, item in enumerate(rng.sample(by_kind[kind], 5)):
            lines.append(f"C{user:04d},{item},{1_700_000_000 + user * 1000 + step},5")
    (folder / "interactions.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return products


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> TinyStore:
    folder = tmp_path_factory.mktemp("store")
    products = write_store(folder)
    data = load_demo(folder)
    model_dir = folder / "model"
    train(
        data,
        RecommenderConfig(n_items=data.n_items, dim=32, layers=1, heads=2, max_len=10),
        TrainConfig(
            max_epochs=6, batch_size=32, lr=3e-3, patience=6, val_cases=200, progress=False
        ),
        out=model_dir,
        cache_dir=folder / "cache",
    )
    return TinyStore(folder, model_dir, products, import_tiny_store(folder))
