from __future__ import annotations

from pathlib import Path

import pytest

from core.shop.catalog import JsonlCatalog
from core.shop.demo.generator import DEFAULT_DEMO_DIR
from core.shop.jsonl import StoreDataError
from core.shop.synonyms import Synonym, read_synonyms


def test_reads_one_synonym_a_line(tmp_path: Path) -> None:
    path = tmp_path / "synonyms.jsonl"
    path.write_text(
        '{"phrase": "raincoat", "category": "outerwear", "attributes": ["waterproof"]}\n'
        "\n"
        '{"phrase": "unscented", "attributes": ["fragrance-free"]}\n'
    )
    assert read_synonyms(path) == [
        Synonym(phrase="raincoat", category="outerwear", attributes=("waterproof",)),
        Synonym(phrase="unscented", attributes=("fragrance-free",)),
    ]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"phrase": ""}', "phrase"),
        ('{"phrase": "   "}', "phrase"),
        ('{"category": "outerwear"}', "phrase"),
        ('{"phrase": "coat", "categories": ["outerwear"]}', "categories"),
    ],
)
def test_a_bad_line_is_named(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "synonyms.jsonl"
    path.write_text('{"phrase": "coat", "category": "outerwear"}\n' + line + "\n")
    with pytest.raises(StoreDataError, match=rf"synonyms.jsonl:2: invalid Synonym.*{problem}"):
        read_synonyms(path)


def test_the_demo_stores_synonyms_name_what_it_sells() -> None:
    catalog = JsonlCatalog.load(DEFAULT_DEMO_DIR / "catalog.jsonl")
    synonyms = read_synonyms(DEFAULT_DEMO_DIR / "synonyms.jsonl")
    assert len({synonym.phrase for synonym in synonyms}) == len(synonyms)
    for synonym in synonyms:
        assert synonym.category is None or synonym.category in catalog.categories(), synonym
        assert set(synonym.attributes) <= set(catalog.attributes()), synonym
