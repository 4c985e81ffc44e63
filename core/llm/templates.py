"""Prompt templates: files in `prompts/`, named by purpose and version, rendered by one function.

The folder is installed as the package `core.prompts`, so the templates are found the same way
in a source checkout and in an installed wheel. Templates use `str.format` fields (`{name}`;
literal braces doubled). Rendering fails loudly when a field is missing, so a template and its
caller cannot drift apart silently.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

TEMPLATES = "core.prompts"


class PromptError(KeyError):
    """A template is missing or a field it needs was not given."""


@cache
def template(name: str) -> str:
    """The text of `prompts/<name>.md`."""
    resource = files(TEMPLATES) / f"{name}.md"
    try:
        return resource.read_text(encoding="utf-8")
    except OSError as exc:
        raise PromptError(f"no prompt template {name}.md in {TEMPLATES}") from exc


def render_prompt(name: str, **values: object) -> str:
    """The template `prompts/<name>.md` with its fields filled: `render_prompt("understand_v1",
    ...)`."""
    try:
        return template(name).format(**values)
    except KeyError as exc:
        raise PromptError(f"prompt {name!r} needs field {exc.args[0]!r}") from exc
