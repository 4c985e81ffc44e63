"""`concierge store ...` and `concierge bench store` as a shop owner runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bots.store import beauty_main, bench_main, import_main, schema_main, stats_main
from core.infra.settings import Settings
from tests.core.shop.test_beauty import ITEMS, write_source


def settings_for(tmp_path: Path) -> Settings:
    return Settings(store_url=SecretStr(f"sqlite:///{tmp_path / 'store.sqlite3'}"),
                    log_level="WARNING")


def last_json(out: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return parsed


def test_import_reports_bad_rows_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(tmp_path)
    assert import_main(["--demo"], settings) == 0
    assert last_json(capsys.readouterr().out)["imported"] == {
        "catalog": 322, "customers": 220, "orders": 2085, "articles": 32, "synonyms": 80}
    catalog = tmp_path / "more.csv"
    catalog.write_text("id,title,price\nX-1,Good,5\nX-2,Free,0\n", encoding="utf-8")
    assert import_main(["--catalog", str(catalog)], settings) == 1
    out, err = capsys.readouterr()
    assert f"bad row: {catalog}:3: invalid Product: price: Input should be greater than 0" in err
    assert last_json(out)["imported"] == {"catalog": 1} and last_json(out)["bad_rows"] == 1
    assert import_main(["--orders", str(tmp_path / "none.jsonl")], settings) == 2
    assert "none.jsonl: file not found" in capsys.readouterr().err
    assert stats_main([], settings) == 0
    assert last_json(capsys.readouterr().out)["counts"]["products"] == 323


def test_schema_names_every_file_and_its_required_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert schema_main([]) == 0
    schemas = json.loads(capsys.readouterr().out)
    assert set(schemas) == {"catalog", "customers", "orders", "articles", "interactions",
                            "synonyms"}
    assert schemas["catalog"]["required"] == ["id", "title", "price"]
    assert schemas["catalog"]["additionalProperties"] is True  # unknown columns are kept


def test_beauty_files_and_the_store_bench_on_a_small_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_source(tmp_path / "source")
    settings = settings_for(tmp_path)
    assert beauty_main(["--out", str(tmp_path / "files"), "--source", str(source)],
                       settings) == 0
    assert last_json(capsys.readouterr().out)["products"] == len(ITEMS)
    assert bench_main(["--source", str(source), "--orders", "500", "--requests", "4",
                       "--postgres", "none"], settings) == 0
    figures = last_json(capsys.readouterr().out)
    sqlite = figures["sqlite"]
    assert sqlite["import_rows_per_s"] > 0
    assert sqlite["at_total_orders"]["orders"] == 500
    assert sqlite["at_total_orders"]["order_lookup_p50_ms"] > 0
    assert figures["suggestion"]["requests"] == 4
