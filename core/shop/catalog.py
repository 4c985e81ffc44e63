"""The product catalog: `Product`, the `Catalog` protocol and a JSON-lines implementation."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from core.shop.jsonl import read_unique

_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")


class Product(BaseModel):
    """One sellable item of the store. Only id, title and price are required; columns the
    model does not know are kept (`model_extra`) and stored with the product."""

    model_config = ConfigDict(frozen=True, extra="allow", coerce_numbers_to_str=True)

    # Only id, title and price are required: a store imported from elsewhere may know no more.
    id: str = Field(min_length=1)  # opaque: any format the store uses
    title: str = Field(min_length=1)
    brand: str = ""
    category: str = ""
    subcategory: str = ""
    price: float = Field(gt=0)
    currency: str = "USD"
    colors: tuple[str, ...] = ()
    sizes: tuple[str, ...] = ()
    description: str = ""
    attributes: tuple[str, ...] = ()
    rating: float | None = Field(default=None, ge=1, le=5)  # None: no reviews known
    review_count: int = Field(default=0, ge=0)
    stock: int = Field(default=0, ge=0)
    materials: str = ""
    warranty_months: int = Field(default=0, ge=0)

    @property
    def in_stock(self) -> bool:
        return self.stock > 0


class Catalog(Protocol):
    """Read access to the store's products."""

    def get(self, item_id: str) -> Product | None: ...

    def all(self) -> Sequence[Product]: ...

    def categories(self) -> tuple[str, ...]: ...

    def attributes(self) -> tuple[str, ...]: ...

    def colors(self) -> tuple[str, ...]: ...

    def find_by_title(self, text: str) -> Product | None: ...


def title_tokens(text: str) -> list[str]:
    """Lower-case word tokens of a title or message, possessive endings dropped."""
    return [re.sub(r"['’]s$", "", token) for token in _WORD.findall(text.lower())]


class JsonlCatalog:
    """A `Catalog` held in memory, loaded from a catalog.jsonl file."""

    # Share of a title's weight a message must mention before the title counts as named.
    MIN_TITLE_COVERAGE = 0.5

    def __init__(self, products: Sequence[Product]) -> None:
        self._products = tuple(sorted(products, key=lambda product: product.id))
        self._by_id = {product.id.upper(): product for product in self._products}
        if len(self._by_id) != len(self._products):
            raise ValueError("duplicate product ids")
        self._title_tokens = {
            product.id: frozenset(title_tokens(product.title)) for product in self._products
        }
        document_frequency: Counter[str] = Counter()
        for tokens in self._title_tokens.values():
            document_frequency.update(tokens)
        count = len(self._products)
        self._idf = {
            token: math.log(1 + count / frequency)
            for token, frequency in document_frequency.items()
        }
        # Which titles hold each token (positions in id order): a message is compared only
        # with the titles it shares a token with, so a large catalog costs little per message.
        postings: dict[str, list[int]] = {}
        for index, product in enumerate(self._products):
            for token in self._title_tokens[product.id]:
                postings.setdefault(token, []).append(index)
        self._postings = {token: tuple(found) for token, found in postings.items()}
        self._token_counts = tuple(len(self._title_tokens[p.id]) for p in self._products)
        self._weights = tuple(
            sum(self._idf[token] for token in self._title_tokens[p.id]) for p in self._products
        )

    @classmethod
    def load(cls, path: Path) -> JsonlCatalog:
        return cls(read_unique(path, Product, "product"))

    def get(self, item_id: str) -> Product | None:
        found = self._by_id.get(item_id.strip())
        return found if found is not None else self._by_id.get(item_id.strip().upper())

    def all(self) -> Sequence[Product]:
        return self._products

    def categories(self) -> tuple[str, ...]:
        return tuple(sorted({product.category for product in self._products}))

    def attributes(self) -> tuple[str, ...]:
        return tuple(sorted({tag for product in self._products for tag in product.attributes}))

    def colors(self) -> tuple[str, ...]:
        return tuple(sorted({color for product in self._products for color in product.colors}))

    def find_by_title(self, text: str) -> Product | None:
        """The product whose title the text names best, by IDF-weighted token overlap.

        A title counts as named when the matched tokens carry at least half of the title's
        weight and at least two title words appear; otherwise None.
        """
        words = set(title_tokens(text))
        if not words:
            return None
        shared: Counter[int] = Counter()
        for word in words:
            shared.update(self._postings.get(word, ()))
        best: tuple[float, float, str] | None = None
        counts = self._token_counts
        for index in sorted(i for i, n in shared.items() if n >= 2 or n >= counts[i]):
            product = self._products[index]
            matched = self._title_tokens[product.id] & words
            weight = sum(self._idf[token] for token in matched)
            coverage = weight / self._weights[index]
            if coverage < self.MIN_TITLE_COVERAGE:
                continue
            key = (coverage, weight, product.id)
            # Highest coverage wins, then most matched weight; ties go to the lower id.
            if best is None or (key[0], key[1]) > (best[0], best[1]):
                best = key
        return self._by_id[best[2].upper()] if best is not None else None
