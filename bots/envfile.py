"""`.env.example`, generated from `core/infra/settings.py` so it lists every setting and never goes
stale: `concierge env-example --write` rewrites it, `--check` fails when it differs.

A field's comment is its `Field(description=...)`, else the comment on its line, else the
comment lines right above it; a comment block after a blank line heads a section.
"""

from __future__ import annotations

import argparse
import ast
import io
import sys
import textwrap
import tokenize
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from core.infra import settings as settings_module
from core.infra.commands import CommandHelp
from core.infra.settings import Settings, packaged_data

ENV_EXAMPLE = Path(".env.example")  # in the project folder the command runs in
PACKAGED = packaged_data()
HEADER = """\
# Concierge settings. Copy this file to .env and uncomment what you change; a commented line
# keeps its default. Every variable can also be set in the environment.
# Generated from core/infra/settings.py by `concierge env-example --write`: edit that, not this.
"""


def _comments(source: str) -> dict[int, str]:
    found: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            found[token.start[0]] = token.string.lstrip("#").strip()
    return found


def _field_lines(source: str) -> dict[str, tuple[int, int]]:
    """Field name -> (first line, last line) of its definition in the Settings class."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == Settings.__name__:
            return {
                item.target.id: (item.lineno, item.end_lineno or item.lineno)
                for item in node.body
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
            }
    raise ValueError(f"no Settings class in {settings_module.__file__}")


def _display(value: Any) -> str:
    if value is None or value is PydanticUndefined or isinstance(value, SecretStr):
        return ""
    if isinstance(value, Path):
        # Files shipped with Concierge have no path worth writing down: empty means "the copy
        # that came with it", the same wherever it is installed.
        return "" if value.is_relative_to(PACKAGED) else str(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _kind(info: FieldInfo) -> str:
    annotation = info.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Literal:
        return "one of: " + ", ".join(str(a) for a in typing.get_args(annotation))
    if SecretStr in args or annotation is SecretStr:
        return "secret"
    for arg in (annotation, *args):
        if typing.get_origin(arg) is typing.Literal:
            return "one of: " + ", ".join(str(a) for a in typing.get_args(arg))
    return ""


@dataclass(frozen=True)
class Entry:
    name: str
    section: tuple[str, ...]  # comment lines heading a new section before this field
    comment: str | None  # the field's own description
    kind: str
    default: str


def entries() -> list[Entry]:
    """Every Settings field with what the source says about it, in declaration order."""
    source = Path(settings_module.__file__).read_text()
    comments = _comments(source)
    lines_of = _field_lines(source)
    source_lines = source.splitlines()
    found = []
    previous_end = 0
    defaults: dict[str, Any] = {}  # earlier defaults, for factories that derive from them
    for name, info in Settings.model_fields.items():
        first, last = lines_of.get(name, (0, 0))
        above: list[str] = []
        line = first - 1
        while line > previous_end and line in comments:
            above.insert(0, comments[line])
            line -= 1
        starts_section = bool(above) and line > 0 and not source_lines[line - 1].strip()
        own = info.description or next(
            (comments[n] for n in range(first, last + 1) if n in comments), None)
        if above and not starts_section and own is None:
            own = " ".join(above)
        default = info.get_default(call_default_factory=True, validated_data=defaults)
        defaults[name] = default
        found.append(Entry(name, tuple(above) if starts_section else (), own, _kind(info),
                           _display(default)))
        previous_end = max(previous_end, last)
    return found


def settings_help(*prefixes: str) -> str:
    """The settings whose names start with one of `prefixes`, each with what it is and its
    default: the epilog of a bot command's `--help`."""
    chosen = [entry for entry in entries() if entry.name.startswith(prefixes)]
    names = {entry.name: f"CONCIERGE_{entry.name.upper()}" for entry in chosen}
    width = max(len(name) for name in names.values())
    lines = ["settings (environment or .env; `concierge env-example` lists every one):"]
    for entry in chosen:
        about = "; ".join(part for part in (entry.kind, entry.comment) if part)
        if entry.default:
            about += f" (default:\0{entry.default})"  # \0: a space the lines never break at
        wrapped = textwrap.wrap(about or "-", width=79,
                                initial_indent=f"  {names[entry.name]:<{width}}  ",
                                subsequent_indent=" " * (width + 4))
        lines += [line.replace("\0", " ") for line in wrapped]
    return "\n".join(lines)


def env_example_text() -> str:
    out = [HEADER]
    for entry in entries():
        if entry.section:
            out.append("\n# " + "\n# ".join(entry.section))
        about = f"{entry.name}: {entry.comment}" if entry.comment else entry.name
        out.append(f"# {about}" + (f" ({entry.kind})" if entry.kind else ""))
        out.append(f"# CONCIERGE_{entry.name.upper()}={entry.default}")
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="concierge env-example", description=__doc__,
                                     formatter_class=CommandHelp)
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help=f"rewrite {ENV_EXAMPLE.name}")
    action.add_argument("--check", action="store_true",
                        help=f"exit 1 when {ENV_EXAMPLE.name} is not what the settings say")
    args = parser.parse_args(argv)
    text = env_example_text()
    if args.write:
        ENV_EXAMPLE.write_text(text)
        print(f"wrote {ENV_EXAMPLE}")
    elif args.check:
        current = ENV_EXAMPLE.read_text() if ENV_EXAMPLE.exists() else ""
        if current != text:
            print(f"{ENV_EXAMPLE.name} is out of date: run `concierge env-example --write`",
                  file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
