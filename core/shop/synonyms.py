"""A shop's own words for its categories and attributes: "rain jacket" -> outerwear, waterproof."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from core.shop.jsonl import read_jsonl


class Synonym(BaseModel):
    """When a customer writes `phrase`, they mean `category` and/or want `attributes`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    phrase: str = Field(min_length=1)
    category: str | None = None
    attributes: tuple[str, ...] = ()


def read_synonyms(path: Path) -> list[Synonym]:
    return read_jsonl(path, Synonym)
