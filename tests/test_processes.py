"""What a developer set (a `.env` in the checkout, `CONCIERGE_*` in the shell) changes nothing
that is tested: neither Settings() in pytest's process nor the processes tests start."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.infra.settings import Settings
from tests.processes import REPO, clean_env

HOSTILE = (
    "CONCIERGE_STATE_BACKEND=redis\n"
    "CONCIERGE_LOG_LEVEL=ERROR\n"
    "CONCIERGE_UNDERSTANDER=llm\n"
    "CONCIERGE_MODELS_DIR=/nowhere\n"
)
SHOW = (
    "from core.infra.settings import Settings\n"
    "s = Settings()\n"
    "print(s.state_backend, s.log_level, s.understander, s.models_dir)\n"
)


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pytest running from a checkout that holds a hostile `.env`, in a hostile shell."""
    folder = tmp_path / "checkout"
    folder.mkdir()
    (folder / ".env").write_text(HOSTILE)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("CONCIERGE_SLACK_MODE", "socket")
    return folder


def test_settings_in_the_test_process_ignore_the_env_file(checkout: Path) -> None:
    settings = Settings()
    assert (settings.state_backend, settings.log_level, settings.understander) == (
        "sqlite", "INFO", "local"
    )
    assert settings.models_dir == Path("models")


def test_started_processes_read_neither_the_env_file_nor_the_shell(
    checkout: Path, tmp_path: Path, demo_store: str
) -> None:
    # A process started naively, in the checkout with this shell, is taken in by both.
    naive = subprocess.run([sys.executable, "-c", SHOW + "print(Settings().slack_mode)"],
                           cwd=checkout, env={**os.environ, "PYTHONPATH": str(REPO)},
                           capture_output=True, text=True, check=True)
    assert naive.stdout.split() == ["redis", "ERROR", "llm", "/nowhere", "socket"]
    # Started the tests' way: clean_env() and a working directory of the test's own.
    own = tmp_path / "run"
    own.mkdir()
    done = subprocess.run([sys.executable, "-c", SHOW + "print(Settings().slack_mode)"],
                          cwd=own, env=clean_env(), capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["sqlite", "INFO", "local", str(REPO / "models"), "http"]
    assert not [name for name in clean_env() if name.startswith("CONCIERGE_")
                and name not in {"CONCIERGE_MODELS_DIR", "CONCIERGE_DATA_DIR",
                                 "CONCIERGE_STORE_URL"}]
    assert clean_env()["CONCIERGE_STORE_URL"] == demo_store  # the session's, not the shell's


def test_no_test_starts_a_process_in_the_checkout() -> None:
    """Settings read `.env` from the working directory: a test's process runs in its own."""
    # docker-compose is no Concierge process: it reads docker/.env, and the test names its
    # env file (.env.example) explicitly.
    exempt = {"test_deployment.py"}
    offenders = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"cwd=(REPO|REPO_ROOT)\b", text):
            if path.name not in exempt:
                line = text[: match.start()].count("\n") + 1
                offenders.append(f"{path.relative_to(REPO)}:{line}")
    assert offenders == []
