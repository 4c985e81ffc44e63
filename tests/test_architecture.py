"""The layout's rules, read from the source: which package may import which, no cycles, one name
for one thing, every customer-facing sentence in `core/turn/replies.py`, every package installed.

Each test names what broke and where, so a newcomer who breaks a rule learns the rule.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("bots", "core", "workers")
# In bots/, only the composition root chooses implementations from workers/; the doctor asks the
# workers which model they serve. Everything else in bots/ reaches workers through them.
BOTS_THAT_MAY_IMPORT_WORKERS = {"bots.wiring", "bots.doctor"}
# Modules that keep data somewhere: core/turn and core/shop must stay free of them.
STORAGE_MODULE = re.compile(
    r"^(sqlite3|redis|sqlalchemy|psycopg)(\.|$)"
    r"|^core\.(state|handover\.\w+)\.(sqlite|redis|factory)$"
    r"|^core\.infra\.(sqlite_file|redis_client)$"
)


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # what it imports (a module, or a module.name)
    line: int
    top_level: bool  # at import time (not inside a function), so it counts for cycles


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((REPO / package).rglob("*.py"))


def imports(path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(), str(path))
    name = module_name(path)
    is_package = path.name == "__init__.py"

    def visit(node: ast.AST, top: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            inner = top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                inner = False  # annotations only: not imported at run time
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(name, alias.name, child.lineno, top)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = name.split(".")[: len(name.split(".")) - child.level + is_package]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in child.names:
                    yield Import(name, f"{base}.{alias.name}", child.lineno, top)
            yield from visit(child, inner)

    yield from visit(tree, True)


def all_imports() -> list[Import]:
    return [found for path in source_files() for found in imports(path)]


def known_modules() -> set[str]:
    return {module_name(path) for path in source_files()}


def resolve(target: str, modules: set[str]) -> str | None:
    """The project module an import names (`core.turn.replies.HELP` -> `core.turn.replies`)."""
    while target:
        if target in modules:
            return target
        target = target.rpartition(".")[0]
    return None


def prefixes(target: str) -> Iterator[str]:
    """`a.b.c` -> `a.b.c`, `a.b`, `a`."""
    while target:
        yield target
        target = target.rpartition(".")[0]


def dependency_violations(found: list[Import]) -> list[str]:
    """bots -> core <- workers: core imports neither; workers never import bots; in bots only
    the composition root (and the doctor) import workers; nothing outside bots imports bots."""
    broken = []
    for item in found:
        source, target = item.module.split(".")[0], item.target.split(".")[0]
        wrong = (
            (source == "core" and target in ("bots", "workers"))
            or (source == "workers" and target == "bots")
            or (
                source == "bots"
                and target == "workers"
                and item.module not in BOTS_THAT_MAY_IMPORT_WORKERS
            )
        )
        if wrong:
            broken.append(f"{item.module}:{item.line} imports {item.target}")
    return broken


def storage_violations(found: list[Import], package: str) -> list[str]:
    return [
        f"{item.module}:{item.line} imports {item.target}"
        for item in found
        if (item.module == package or item.module.startswith(package + "."))
        and any(STORAGE_MODULE.search(prefix) for prefix in prefixes(item.target))
    ]


def test_dependencies_point_one_way() -> None:
    assert dependency_violations(all_imports()) == []


@pytest.mark.parametrize("package", ["core.turn", "core.shop"])
def test_turn_and_shop_know_no_storage_backend(package: str) -> None:
    assert storage_violations(all_imports(), package) == []


def test_the_rules_would_catch_a_violation() -> None:
    """Guards against a check that cannot fail."""
    sneaky = [
        Import("core.turn.policy", "workers.app.build_app", 3, True),
        Import("workers.tasks", "bots.wiring.build_conversation", 4, False),
        Import("bots.telegram", "workers.recommender.service.ScoringService", 5, False),
        Import("core.shop.catalog", "sqlite3", 6, True),
        Import("core.turn.conversation", "core.state.redis.RedisStateStore", 7, True),
    ]
    assert len(dependency_violations(sneaky)) == 3
    assert len(storage_violations(sneaky, "core.shop")) == 1
    assert len(storage_violations(sneaky, "core.turn")) == 1
    allowed = [Import("bots.wiring", "workers.client.CeleryRecommender", 1, False)]
    assert dependency_violations(allowed) == []


def test_no_import_cycles() -> None:
    modules = known_modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for found in all_imports():
        target = resolve(found.target, modules)
        if found.top_level and target and target != found.module:
            graph[found.module].add(target)
    cycles = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            # A package's __init__ importing its own submodule is not a cycle of meaning.
            if state.get(nxt) == 1 and not nxt.startswith(node + "."):
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                walk(nxt)
        path.pop()
        state[node] = 2

    for module in sorted(modules):
        if module not in state:
            walk(module)
    assert cycles == []


def entry_points() -> set[str]:
    """Functions the `concierge` command runs: named after their command, one per module."""
    from bots.cli import COMMANDS

    # Alembic calls every migration's `upgrade` and `downgrade` by name.
    return {"main", "upgrade", "downgrade"} | {
        target.partition(":")[2] for target, _ in COMMANDS.values()
    }


def test_public_names_are_unique() -> None:
    """One name, one thing: no two public classes or functions share a name across modules."""
    places: dict[str, list[str]] = defaultdict(list)
    for path in source_files():
        for node in ast.parse(path.read_text()).body:
            is_def = isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            if is_def and not node.name.startswith("_"):
                places[node.name].append(module_name(path))
    allowed = entry_points()
    shared = {
        name: where for name, where in places.items() if len(where) > 1 and name not in allowed
    }
    assert shared == {}


def _literal_text(node: ast.AST) -> bool:
    """Whether `node` is written-out text: a string, or an f-string with words of its own."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and re.search(r"[A-Za-z]{2}", node.value) is not None
    if isinstance(node, ast.JoinedStr):
        return any(_literal_text(part) for part in node.values if isinstance(part, ast.Constant))
    return False


def test_customer_facing_sentences_live_in_replies() -> None:
    """A reply built from a written-out sentence anywhere but core/turn/replies.py is wording
    that a translator or a reviewer would never find."""
    wording = REPO / "core" / "turn" / "replies.py"
    found = []
    for path in source_files():
        if path == wording:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            called = ast.unparse(node.func)
            if called.split(".")[-1] in ("Reply", "_say") and _literal_text(node.args[0]):
                found.append(f"{module_name(path)}:{node.lineno}: {ast.unparse(node)[:80]}")
    assert found == []


def test_wording_check_sees_literals() -> None:
    assert _literal_text(ast.parse('Reply("Hello there")').body[0].value.args[0])  # type: ignore[attr-defined]
    assert _literal_text(ast.parse('Reply(f"Sorry {name}")').body[0].value.args[0])  # type: ignore[attr-defined]
    assert not _literal_text(ast.parse("Reply(replies.HELP)").body[0].value.args[0])  # type: ignore[attr-defined]
    assert not _literal_text(ast.parse('Reply(f"{a}\\n{b}")').body[0].value.args[0])  # type: ignore[attr-defined]


def test_every_package_is_installed() -> None:
    """pyproject.toml lists packages one by one: a new folder must be added there."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {module_name(init.parent / "__init__.py") for p in PACKAGES
             for init in (REPO / p).rglob("__init__.py")}
    assert found - listed == set(), "add these to [tool.setuptools] packages"
    mapped = config["package-dir"]
    assert mapped == {"core.prompts": "prompts", "core.data": "data"}
    assert {"core.prompts", "core.data", "core.data.demo", "core.data.nlu"} <= listed
