"""Interaction data for the recommender: generic files, Amazon Beauty and the demo store.

Every loader returns an `InteractionData`: items in a fixed order (item index i + 1 is
`items[i]`; index 0 is padding) and, per user, the chronological list of item indices.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from core.infra.logs import event
from core.shop.beauty import ROOT_CATEGORY, read_beauty

if TYPE_CHECKING:
    from core.shopdb.database import ShopDatabase

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ItemRecord:
    """What the recommender knows about one item: its id and the text it is encoded from."""

    item_id: str
    title: str
    brand: str = ""
    category: str = ""  # the category path, most general first: "Makeup > Face > Concealers"
    description: str = ""
    attributes: tuple[str, ...] = ()
    price: float | None = None

    def text(self) -> str:
        """The text the MiniLM encoder reads for this item."""
        parts = [self.title]
        if self.brand:
            parts.append(f"by {self.brand}")
        if self.category:
            parts.append(f"in {self.category}")
        if self.attributes:
            parts.append(", ".join(self.attributes))
        if self.description:
            parts.append(self.description[:300])
        return ". ".join(part for part in parts if part)

    def request_text(self) -> str:
        """A short text a customer looking for this item might write: its most specific
        category (or its title when it has none). Used to teach the request-context path."""
        if self.category:
            return self.category.split(" > ")[-1]
        return " ".join(self.title.split()[:4])


@dataclass(frozen=True)
class InteractionData:
    name: str
    items: tuple[ItemRecord, ...]
    sequences: dict[str, list[int]] = field(repr=False)  # user -> item indices, oldest first

    @property
    def n_items(self) -> int:
        return len(self.items)

    def index_of(self) -> dict[str, int]:
        return {item.item_id: number for number, item in enumerate(self.items, start=1)}

    def fingerprint(self) -> str:
        """A short hash of everything a model learns from: the items (id and text, in order)
        and every customer's sequence. Equal fingerprints mean the same training data,
        whatever files or format it was read from."""
        digest = hashlib.sha1()
        for item in self.items:
            digest.update(f"{item.item_id}\0{item.text()}\0".encode())
        for user in sorted(self.sequences):
            digest.update(f"{user}\0{' '.join(map(str, self.sequences[user]))}\0".encode())
        return digest.hexdigest()[:16]


def load_beauty(folder: Path) -> InteractionData:
    """Amazon Beauty 5-core as used by S3-Rec/ICLRec: integer-id sequences, ASIN metadata,
    parsed by `core.shop.beauty.read_beauty` (the files as written; users by S3-Rec number)."""
    source = read_beauty(folder)
    items = tuple(
        ItemRecord(
            item_id=item.asin,
            title=item.title,
            brand=item.brand,
            category=" > ".join(c for c in item.categories if c != ROOT_CATEGORY),
            price=item.price,
        )
        for item in source.items
    )
    sequences = {user: list(sequence) for user, sequence in source.sequences.items()}
    return InteractionData("amazon-beauty", items, sequences)


def load_files(interactions: Path, items: Path, name: str = "") -> InteractionData:
    """Generic input: interactions CSV/TSV `user_id,item_id,timestamp[,rating]` and items
    CSV/JSONL `item_id,title[,description,category,brand,price,...]` (`id` works for item_id)."""
    records = list(_read_items(items))
    index = {record.item_id: number for number, record in enumerate(records, start=1)}
    events: dict[str, list[tuple[float, int]]] = {}
    skipped = 0
    for row in _read_table(interactions):
        item = index.get(row["item_id"].strip())
        if item is None:
            skipped += 1
            continue
        events.setdefault(row["user_id"].strip(), []).append((float(row["timestamp"]), item))
    if skipped:
        event(log, "recommender.data.unknown_items", rows=skipped, file=str(interactions))
    # sorted() is stable, so events with equal timestamps keep the file's order.
    sequences = {
        user: [item for _, item in sorted(rows, key=lambda pair: pair[0])]
        for user, rows in events.items()
    }
    return InteractionData(name or interactions.stem, tuple(records), sequences)


def load_demo(demo_dir: Path) -> InteractionData:
    """The demo store: data/demo/catalog.jsonl and data/demo/interactions.csv."""
    return load_files(demo_dir / "interactions.csv", demo_dir / "catalog.jsonl", name="demo")


def load_store(database: ShopDatabase) -> InteractionData:
    """The store database: its catalog as items (in id order, text from each product's fields)
    and, per customer, the products of their orders (cancelled ones excluded) and recorded
    interactions, oldest first."""
    records = [item_record(product.model_dump()) for product in database.products()]
    index = {record.item_id: number for number, record in enumerate(records, start=1)}
    events: dict[str, list[tuple[datetime, int]]] = {}
    skipped = 0
    for customer, item_id, when in database.purchase_events():
        item = index.get(item_id)
        if item is None:  # a product since removed from the catalog
            skipped += 1
            continue
        events.setdefault(customer, []).append((when, item))
    if skipped:
        event(log, "recommender.data.unknown_items", rows=skipped, file=database.shown)
    sequences = {
        user: [item for _, item in sorted(rows, key=lambda pair: pair[0])]
        for user, rows in events.items()
    }
    return InteractionData("store", tuple(records), sequences)


DATASETS = ("amazon-beauty", "demo")  # the names `--dataset` uses


def load_dataset(name: str, demo_dir: Path, data_dir: Path) -> InteractionData:
    """A dataset by name: the demo store's files in `demo_dir`, or Amazon Beauty under
    `data_dir`."""
    if name == "amazon-beauty":
        return load_beauty(data_dir / "amazon_beauty")
    if name == "demo":
        return load_demo(demo_dir)
    raise ValueError(f"unknown dataset {name!r}: one of {', '.join(DATASETS)}")


def item_record(raw: dict[str, object]) -> ItemRecord:
    """An item from one row of an items file or a catalog product's fields."""
    item_id = str(raw.get("item_id") or raw.get("id") or "").strip()
    if not item_id:
        raise ValueError(f"item without an id: {raw!r:.80}")
    path = [str(raw[key]) for key in ("category", "subcategory") if raw.get(key)]
    attributes = raw.get("attributes") or ()
    if isinstance(attributes, str):
        attributes = [part.strip() for part in attributes.split("|") if part.strip()]
    elif isinstance(attributes, dict):
        attributes = [f"{key} {value}" for key, value in attributes.items()]
    colors = raw.get("colors") or ()
    if isinstance(colors, str):
        colors = [part.strip() for part in colors.split("|") if part.strip()]
    price = raw.get("price")
    return ItemRecord(
        item_id=item_id,
        title=str(raw.get("title") or item_id).strip(),
        brand=str(raw.get("brand") or "").strip(),
        category=" > ".join(path),
        description=str(raw.get("description") or "").strip(),
        attributes=tuple(str(a) for a in (*attributes, *colors)),  # type: ignore[misc]
        price=float(price) if price not in (None, "") else None,  # type: ignore[arg-type]
    )


def _read_items(path: Path) -> Iterator[ItemRecord]:
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield item_record(json.loads(line))
        return
    for row in _read_table(path):
        yield item_record(dict(row))


def _read_table(path: Path) -> Iterator[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        delimiter = "\t" if path.suffix in (".tsv", ".tab") else ","
        yield from csv.DictReader(handle, delimiter=delimiter)


def text_embeddings(texts: Sequence[str], cache_dir: Path | None) -> torch.Tensor:
    """MiniLM embeddings of `texts` (N, 384), L2-normalised, cached on disk by content hash."""
    digest = hashlib.sha1("\0".join(texts).encode()).hexdigest()[:16]
    path = cache_dir / f"text-{digest}.pt" if cache_dir is not None else None
    if path is not None and path.exists():
        return torch.load(path)
    from workers.encoder import encode_by_length

    event(log, "recommender.encode.start", texts=len(texts))
    embeddings = encode_by_length(texts)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside, then renamed: another process (a training rank on another machine
        # sharing the folder) may be reading or writing the same file.
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        torch.save(embeddings, partial)
        partial.replace(path)
    return embeddings
