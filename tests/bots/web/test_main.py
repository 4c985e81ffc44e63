"""`concierge web add-agent`: a password is asked for, checked and only its hash kept."""

from __future__ import annotations

import io
import uuid

import pytest

from bots.web.auth import SignIn
from bots.web.main import add_agent_main
from bots.wiring import open_store
from core.infra.settings import Settings
from core.shopdb.agents import SqlAgents


def add(monkeypatch: pytest.MonkeyPatch, *args: str, password: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    return add_agent_main([*args, "--password-stdin"])


def test_add_agent_then_reset_and_refusals(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    login = f"ann-{uuid.uuid4().hex[:8]}"
    assert add(monkeypatch, login, password="short") == 2
    assert "at least 10 characters" in capsys.readouterr().err
    assert add(monkeypatch, "two words", password="long enough password") == 2
    assert add(monkeypatch, login, "--name", "Ann", password="first password") == 0
    assert add(monkeypatch, login, password="another password") == 1
    assert "is taken" in capsys.readouterr().err
    agents = SqlAgents(open_store(Settings()))
    agent = agents.get(login)
    assert agent is not None and agent.name == "Ann"
    assert "first password" not in agent.password_hash and agent.password_hash.startswith(
        "$argon2")
    sign_in = SignIn(agents)
    assert sign_in.check(login, "first password") is not None
    assert add(monkeypatch, login, "--reset", password="second password") == 0
    assert sign_in.check(login, "first password") is None
    assert sign_in.check(login, "second password") is not None
    assert add(monkeypatch, f"nobody-{login}", "--reset", password="second password") == 1
