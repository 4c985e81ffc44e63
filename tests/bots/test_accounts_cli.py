"""`concierge link ...` and `concierge privacy ...` as the shop runs them: a link token on the
command line and over the authenticated HTTP endpoint, export, delete and purge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from bots.accounts import (
    bench_identity_main,
    link_app,
    link_issue_main,
    privacy_delete_main,
    privacy_export_main,
    privacy_purge_main,
)
from bots.store import import_main
from bots.wiring import build_accounts, build_conversation
from core.infra.settings import Settings
from core.turn.messages import CollectingOutbox, Incoming
from tests.bots.peers import LoopThread, free_port, post_json, serve_on

API_KEY = "shop-backend-key-0123456789"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    configured = Settings(
        store_url=SecretStr(f"sqlite:///{tmp_path / 'store.sqlite3'}"),
        sqlite_path=tmp_path / "state.sqlite3",
        telegram_bot_username="ConciergeTestBot",
        link_api_key=SecretStr(API_KEY),
        log_level="WARNING",
    )
    assert import_main(["--demo"], configured) == 0
    return configured


def test_link_issue_prints_the_deep_link_and_the_token_last(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert link_issue_main(["C0009"], settings) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    token = lines[-1]
    assert f"https://t.me/ConciergeTestBot?start={token}" in lines[1]
    accounts = build_accounts(settings)
    assert accounts.redeem("telegram:1001", token, datetime.now(UTC)).status == "linked"
    assert link_issue_main(["C9999"], settings) == 2
    assert "no customer 'C9999'" in capsys.readouterr().err


@pytest.fixture
def endpoint(settings: Settings) -> Iterator[str]:
    loop, port = LoopThread(), free_port()
    runner = loop.run(serve_on(link_app(settings, build_accounts(settings)), port))
    yield f"http://127.0.0.1:{port}/links"
    loop.run(runner.cleanup())
    loop.close()


def test_the_http_endpoint_issues_tokens_only_with_the_api_key(
    endpoint: str, settings: Settings
) -> None:
    body = {"customer_id": "C0009"}
    assert post_json(endpoint, body)[0] == 401
    assert post_json(endpoint, body, {"Authorization": "Bearer wrong"})[0] == 401
    auth = {"Authorization": f"Bearer {API_KEY}"}
    assert post_json(endpoint, {"customer": "C0009"}, auth)[0] == 400
    assert post_json(endpoint, {"customer_id": "C9999"}, auth)[0] == 404
    status, issued = post_json(endpoint, body, auth)
    assert status == 201 and issued["customer_id"] == "C0009"
    assert issued["telegram_url"].endswith(f"?start={issued['token']}")
    accounts = build_accounts(settings)
    assert accounts.redeem("slack:T1:U1", issued["token"], datetime.now(UTC)).status == "linked"


def test_export_then_delete_then_purge(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conversation = build_conversation(settings)
    accounts = conversation.services.accounts
    assert accounts is not None
    user = "telegram:1001"
    token = accounts.issue("C0009", datetime.now(UTC)).token
    for text in (f"link {token}", "hello there"):
        conversation.handle(Incoming(f"telegram:{1001}", user, text=text), CollectingOutbox())
    out = tmp_path / "held.json"
    assert privacy_export_main(["--user", user, "--out", str(out)], settings) == 0
    held = json.loads(out.read_text())
    assert held["links"][0]["customer_id"] == "C0009"
    assert [turn["text"] for turn in held["conversations"][0]["transcript"]][2] == "hello there"
    assert token not in out.read_text()
    capsys.readouterr()
    assert privacy_delete_main(["--user", "C0009"], settings) == 0
    deleted = json.loads(capsys.readouterr().out)["deleted"]
    assert deleted["people"] == 1 and deleted["conversations"] == 1 and deleted["links"] == 1
    assert privacy_export_main(["--user", user], settings) == 0
    after = json.loads(capsys.readouterr().out)
    assert after["links"] == [] and after["conversations"] == [] and after["tickets"] == []
    assert privacy_purge_main([], settings) == 0
    assert set(json.loads(capsys.readouterr().out)["purged"]) == {
        "conversations", "tickets", "proofs"}


def test_bench_identity_reports_the_lookup_and_the_guesses_checked(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert bench_identity_main(["--turns", "3", "--guesses", "60"], settings) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["guesses_sent_per_hour"] == 60
    assert result["guesses_checked_per_hour"] == settings.verify_attempts_per_hour
    assert 0 < result["lookup_p50_ms"] <= result["lookup_p99_ms"]
