"""The `concierge` command as a user meets it: the command list, `--version`, and `--help` of
every command (help text for every option, defaults shown)."""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from bots import cli
from tests.processes import clean_env

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


def test_version_from_a_fresh_process(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bots.cli", "-V"], capture_output=True,
                          text=True, cwd=tmp_path, env=clean_env(), timeout=60, check=False)
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
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True,
                          env=clean_env(), cwd=tmp_path, timeout=60, check=False)
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


# Their parsers belong to the benchmarks' owner; the figures they publish are read from them.
BENCHMARKS = {("bench", "chat"), ("bench", "handover"), ("bench", "nlu"), ("bench", "recommender")}
OPTION_LINE = re.compile(r"^  (-\S.*?)(?:\s{2,}(.*))?$")


def option_help(text: str) -> dict[str, str]:
    """Each option string of a --help text -> the help printed beside and under it."""
    found: dict[str, str] = {}
    current: list[str] = []
    for line in text.splitlines():
        match = OPTION_LINE.match(line)
        if match:
            current = re.findall(r"(?:^|, )(--?[\w-]+)", match.group(1))
            found |= {name: match.group(2) or "" for name in current}
        elif current and line.startswith("    "):
            for name in current:
                found[name] += " " + line.strip()
        else:
            current = []
    return found


def test_option_help_reads_argparse_output() -> None:
    text = ("options:\n  -h, --help  show this\n  --port N    where (default: 1)\n"
            "  --a-very-long-option-name VALUE\n                        said below\n"
            "  --bare\n\nsettings:\n  X  y\n")
    assert option_help(text) == {"-h": "show this", "--help": "show this",
                                 "--port": "where (default: 1)",
                                 "--a-very-long-option-name": " said below", "--bare": ""}


@pytest.mark.parametrize("words", sorted(set(cli.COMMANDS) - BENCHMARKS), ids=" ".join)
def test_every_option_has_help_and_shows_its_default(
    words: tuple[str, ...], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`concierge WORDS --help` prints help and exits 0 without doing anything else; every
    option has help text, and an option with a default (other than None, or a flag's off)
    says what it is."""
    parsers: list[argparse.ArgumentParser] = []
    parse = argparse.ArgumentParser.parse_known_args

    def recording(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> object:
        parsers.append(self)
        return parse(self, *args, **kwargs)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", recording)
    with pytest.raises(SystemExit) as exited:
        cli.main([*words, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: concierge {' '.join(words)} "), text[:200]
    assert parsers, "the command reads its arguments without argparse"
    printed = option_help(text)
    for action in parsers[0]._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        name = action.option_strings[-1]
        assert printed.get(name, "").strip(), f"{name} has no help text"
        if action.default not in (None, argparse.SUPPRESS) and action.nargs != 0:
            assert "default" in printed[name], f"{name} does not show its default"


class Parsed(Exception):
    """Raised instead of running the command once its arguments parsed."""


def readme_commands() -> list[str]:
    """Every `concierge ...` command README.md shows: in inline code, and on the lines of code
    blocks that start with it (diagrams and printed output aside). Optional parts written
    `[--flag]` count as given; `# comments` are dropped."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.findall(r"`(concierge [^`]+)`", text)
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.removeprefix("$ ").strip()
            if line.startswith("concierge ") and not line.split()[1].endswith(":"):
                found.append(line)
    commands = {re.sub(r"[\[\]]", "", line.split("#")[0]).strip() for line in found}
    return sorted(c for c in commands if not c.split()[1].isupper())  # not `concierge COMMAND`


def test_readme_shows_the_commands_it_should() -> None:
    commands = readme_commands()
    for expected in ("concierge bench recommender", "concierge eval nlu", "concierge train",
                     "concierge chat --user C0009", "concierge doctor --for telegram"):
        assert expected in commands


@pytest.mark.parametrize("command", readme_commands())
def test_every_readme_command_parses_as_written(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command exists and accepts its arguments; nothing runs (no chat, no training)."""
    words = shlex.split(command)[1:]
    if words[0].startswith("-"):  # concierge --help, --version
        assert cli.main(words) == 0
        return
    found = cli.resolve(words)
    assert found is not None, f"{command}: no such command"
    function, rest = found
    parse_known = argparse.ArgumentParser.parse_known_args

    def known(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> object:
        raise Parsed(parse_known(self, *args, **kwargs))

    def full(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> object:
        _, extra = parse_known(self, *args, **kwargs)
        if extra:
            self.error(f"unrecognized arguments: {' '.join(extra)}")
        raise Parsed()

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", known)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", full)
    try:
        function(rest)
    except SystemExit as exited:
        if exited.code == 0 and "--help" in rest:
            return
        pytest.fail(f"{command}: exit {exited.code}: {capsys.readouterr().err.strip()}")
    except Parsed:
        return
    pytest.fail(f"{command}: ran without parsing its arguments")
