"""The environment of every process a test starts: what is tested, and nothing a developer set.

A developer's shell may export `CONCIERGE_*` variables and their checkout may hold a `.env`
(Settings reads `.env` from the working directory). Neither may change what a test checks, so
a test's process gets `clean_env(...)`: this environment without any `CONCIERGE_*` variable,
plus the settings the test names, and runs in a directory the test owns (its `tmp_path`),
which holds no `.env`. Paths that default to the working directory are pinned to this
checkout, so the process finds the trained models and shared data from anywhere.

In this pytest process, `tests/conftest.py` switches Settings' `.env` reading off.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def clean_env(**settings: str | Path) -> dict[str, str]:
    """This process's environment less `CONCIERGE_*`, plus `settings` (`sqlite_path=...` is
    `CONCIERGE_SQLITE_PATH`); the code under test is this checkout's."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CONCIERGE_")}
    env |= {
        "PYTHONPATH": os.pathsep.join(
            [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        "PYTHONUNBUFFERED": "1",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        # Relative defaults, read from the working directory, made absolute.
        "CONCIERGE_MODELS_DIR": str(REPO / "models"),
        "CONCIERGE_DATA_DIR": str(REPO.parent / "shared" / "data"),
    }
    # The session's demo store (tests/conftest.py imports it and names it here).
    if "CONCIERGE_STORE_URL" in os.environ:
        env["CONCIERGE_STORE_URL"] = os.environ["CONCIERGE_STORE_URL"]
    env |= {f"CONCIERGE_{name.upper()}": str(value) for name, value in settings.items()}
    return env
