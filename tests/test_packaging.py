"""A non-editable install works: the wheel carries the prompts, the taxonomy, the demo store and
the demo assortment, and a chat turn runs from it without the checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.processes import clean_env

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from a copy of the tracked files and unpacked (what
    `pip install .` puts in site-packages)."""
    source = tmp_path_factory.mktemp("source")
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True,
                             text=True, check=True).stdout.split()
    for name in tracked:
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(dist), str(source)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    [wheel] = dist.glob("concierge-*.whl")
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def run_installed(
    site: Path, cwd: Path, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """Python without site hooks (so the editable install's finder is not there) on the
    unpacked wheel, with the dependencies of this environment behind it."""
    dependencies = sysconfig.get_paths()["purelib"]
    env = clean_env() | {"PYTHONPATH": f"{site}:{dependencies}"}
    return subprocess.run([sys.executable, "-S", *args], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=300)


def test_the_wheel_carries_runtime_files(installed: Path) -> None:
    for name in ("core/prompts/understand_v1.md", "core/data/nlu/intents.yaml",
                 "core/data/demo/catalog.jsonl", "core/data/demo/faq.jsonl",
                 "core/data/demo/synonyms.jsonl",
                 "core/shop/demo/assortment.yaml", "bots/web/templates/base.html",
                 "bots/web/static/desk.js", "bots/web/static/desk.css"):
        assert (installed / name).is_file(), name


def test_runtime_files_are_found_in_the_installed_package(
    installed: Path, tmp_path: Path
) -> None:
    script = (
        "import core\n"
        "from core.infra.settings import Settings\n"
        "from core.llm.templates import template\n"
        "from core.turn.taxonomy import load_taxonomy\n"
        "from core.shop.files import load_shop\n"
        "from core.shop.demo.assortment import DEPARTMENTS\n"
        "settings = Settings()\n"
        "print(core.__file__)\n"
        "print(len(template('understand_v1')) > 100, len(load_taxonomy().intents) > 5)\n"
        "print(len(load_shop(settings.demo_dir).catalog.all()), len(DEPARTMENTS))\n"
        "print(settings.demo_dir)\n"
    )
    done = run_installed(installed, tmp_path, "-c", script)
    assert done.returncode == 0, done.stderr[-2000:]
    where, found, counts, demo = done.stdout.splitlines()
    assert where.startswith(str(installed)), where  # not the checkout
    assert found == "True True"
    assert counts == "322 16"
    assert demo.startswith(str(installed))


def test_a_chat_turn_runs_from_the_installed_package(installed: Path, tmp_path: Path) -> None:
    done = run_installed(installed, tmp_path, "-m", "bots.cli", "chat", "--user", "C0001",
                         stdin="what is your return policy?\n")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "concierge> " in done.stdout and "return" in done.stdout.lower()
    assert "(From our help article" in done.stdout
