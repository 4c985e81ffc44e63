"""Prompt templates: files in `prompts/`, named by purpose and version, rendered by one function.

Templates use `str.format` fields (`{name}`; literal braces doubled). Rendering fails loudly when
a field is missing, so a template and its caller cannot drift apart silently.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"


class PromptError(KeyError):
    """A template is missing or a field it needs was not given."""


@cache
def template(name: str, directory: Path = PROMPTS_DIR) -> str:
    path = directory / f"{name}.md"
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PromptError(f"no prompt template {path}") from exc


def render(name: str, directory: Path = PROMPTS_DIR, **values: object) -> str:
    """The template `prompts/<name>.md` with its fields filled: `render("understand_v1", ...)`."""
    try:
        return template(name, directory).format(**values)
    except KeyError as exc:
        raise PromptError(f"prompt {name!r} needs field {exc.args[0]!r}") from exc
