""".env.example lists every setting with a comment, and is what the settings say today."""

from __future__ import annotations

import re
from pathlib import Path

from bots import envfile
from core.infra.settings import Settings


def test_env_example_lists_every_setting() -> None:
    text = envfile.ENV_EXAMPLE.read_text()
    listed = set(re.findall(r"^# CONCIERGE_([A-Z0-9_]+)=", text, re.MULTILINE))
    assert listed == {name.upper() for name in Settings.model_fields}


def test_env_example_is_up_to_date() -> None:
    # Fails when a setting is added, renamed or re-described without regenerating the file:
    # run `concierge env-example --write`.
    assert envfile.ENV_EXAMPLE.read_text() == envfile.env_example_text()
    assert envfile.main(["--check"]) == 0


def test_every_setting_has_a_comment_or_a_section() -> None:
    undocumented = [e.name for e in envfile.entries() if not (e.comment or e.section)]
    assert undocumented == [], "add a comment or Field(description=...) in core/infra/settings.py"


def test_no_secret_or_machine_path_leaks_into_the_example() -> None:
    text = envfile.ENV_EXAMPLE.read_text()
    assert str(Path.cwd()) not in text
    assert "site-packages" not in text
    assert "**********" not in text
