"""The `concierge` command as a user meets it: the command list, `--version`, and `--help` of
every command (help text for every option, defaults shown)."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bots import cli

REPO = Path(__file__).resolve().parents[2]


def test_version_names_the_installed_distribution(capsys: pytest.CaptureFixture[str]) -> None:
    for flag in ("--version", "-V"):
        assert cli.main([flag]) == 0
        assert capsys.readouterr().out == f"concierge {importlib.metadata.version('concierge')}\n"


def test_version_without_an_installed_package_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(cli, "version", not_installed)
    assert cli.main(["--version"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "version unknown" in captured.err and "pip install -e ." in captured.err


def test_version_from_a_fresh_process() -> None:
    done = subprocess.run([sys.executable, "-m", "bots.cli", "-V"], capture_output=True,
                          text=True, cwd=REPO, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("concierge ") and "Traceback" not in done.stderr


def test_command_list_and_groups(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 0
    listing = capsys.readouterr().out
    for words in cli.COMMANDS:
        assert f"  {' '.join(words)} " in listing
    assert "--version" in listing
    assert cli.main(["eval", "--help"]) == 0
    group = capsys.readouterr().out
    assert "eval nlu" in group and "eval recommender" in group and "bench" not in group
    assert cli.main(["bench"]) == 2
    assert "bench recommender" in capsys.readouterr().err
    assert cli.main(["no-such-command"]) == 2
    assert "unknown command" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "needs"),
    [
        (["-m", "bots.cli", "telegram", "--help"], "CONCIERGE_TELEGRAM_TOKEN"),
        (["-m", "bots.telegram", "--help"], "CONCIERGE_TELEGRAM_WEBHOOK_URL"),
        (["-m", "bots.cli", "slack", "--help"], "CONCIERGE_SLACK_SIGNING_SECRET"),
        (["-m", "bots.slack", "--help"], "CONCIERGE_SLACK_APP_TOKEN"),
    ],
)
def test_bot_help_describes_its_settings_and_starts_nothing(
    argv: list[str], needs: str, tmp_path: Path
) -> None:
    """Without a token the bot would exit 2 after reading its settings; with --help it only
    prints what it reads, and exits 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCIERGE_")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: concierge ") and needs in done.stdout
    assert "(default: 127.0.0.1)" in done.stdout  # the listener address, for either mode
    assert done.stderr == ""


@pytest.mark.parametrize("command", ["telegram", "slack"])
def test_bot_rejects_unknown_arguments(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([command, "--no-such-option"])
    assert exited.value.code == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err
