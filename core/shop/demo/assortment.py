"""What the demo store sells, read from `assortment.yaml` beside this file: per-category brands
and the kinds of product the simulator draws from. `core.shop.demo.generator` turns them into
products.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from importlib.resources import files
from typing import Any

import yaml


@dataclass(frozen=True)
class Kind:
    """A family of similar products within a category."""

    subcategory: str
    nouns: tuple[str, ...]
    price: tuple[float, float]
    count: int
    lead: str  # first sentence; may use {noun} and {material}
    # Specific sentences; may use {n}, drawn from `spec`. A leading "[tag] " limits a sentence
    # to products that carry that tag.
    features: tuple[str, ...]
    attributes: tuple[str, ...] = ()  # tags every product of the kind has
    optional: tuple[str, ...] = ()  # tags some products have
    materials: tuple[str, ...] = ("",)
    sizes: tuple[str, ...] = ()
    colors: tuple[str, ...] = ()
    warranty_months: int = 0
    spec: tuple[int, int, int] = (1, 1, 1)  # (low, high, step) for {n}
    titles: tuple[str, ...] = ()  # fixed titles (books) instead of brand + model + noun


@dataclass(frozen=True)
class Department:
    """One category of the store: its slug, its brands and its kinds of product."""

    slug: str
    brands: tuple[str, ...]
    kinds: tuple[Kind, ...]


def _kind(raw: dict[str, Any]) -> Kind:
    known = {field.name for field in fields(Kind)}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"assortment.yaml: unknown kind fields {sorted(unknown)}")
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    return Kind(**values)


def _load() -> dict[str, Any]:
    return dict(yaml.safe_load((files(__package__) / "assortment.yaml").read_text("utf-8")))


_RAW = _load()
MODEL_NAMES: tuple[str, ...] = tuple(_RAW["model_names"])
ATTRIBUTE_NOTES: dict[str, str] = dict(_RAW["attribute_notes"])
# Categories bought together with (or after) a category: a jacket buyer looks at boots next.
COMPLEMENTS: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in _RAW["complements"].items()}
DEPARTMENTS: tuple[Department, ...] = tuple(
    Department(d["slug"], tuple(d["brands"]), tuple(_kind(k) for k in d["kinds"]))
    for d in _RAW["departments"]
)
