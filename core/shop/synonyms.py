"""A shop's own words: `Synonym` says what customers mean by a phrase the catalog never uses.

The catalog already names its categories, subcategories and attributes; a synonyms file adds
the customers' words for them ("raincoat" for outerwear that is waterproof). One JSON object a
line: `{"phrase": "raincoat", "category": "outerwear", "attributes": ["waterproof"]}`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from core.shop.jsonl import read_jsonl


class Synonym(BaseModel):
    """When a customer writes `phrase`, they mean this category and/or want these attributes.

    Names are matched as the catalog writes them, ignoring case; one the catalog does not have
    is ignored, so a file can outlive a product line."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    phrase: str = Field(min_length=1, pattern=r"\S")
    category: str | None = None
    attributes: tuple[str, ...] = ()


def read_synonyms(path: Path) -> list[Synonym]:
    """Every synonym in a JSON-lines file; StoreDataError names the file and line of a bad one."""
    return read_jsonl(path, Synonym)
