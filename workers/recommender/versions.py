"""Versions of the served recommender: kept side by side, one served, switched atomically.

The serving folder (`CONCIERGE_RECOMMENDER_DIR`, e.g. `models/recommender-demo`) becomes a
symbolic link into `<serving>.versions/<version>/`. Promoting or rolling back points the link
elsewhere with one atomic rename, so a process that reads the folder sees the old model or the
new one, never half of each; workers notice the link moved (`ServedModel.changed`) and load the
new model between two jobs, without a restart. `history.json` there lists what was served,
newest last. A folder that is not a link yet (a model trained before versions existed) is
moved in as the first version on the first promotion.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.infra.health import model_version


@dataclass(frozen=True)
class Registry:
    serving: Path

    @property
    def folder(self) -> Path:
        return self.serving.with_name(f"{self.serving.name}.versions")

    @property
    def history_file(self) -> Path:
        return self.folder / "history.json"

    def history(self) -> list[dict[str, Any]]:
        if not self.history_file.exists():
            return []
        return list(json.loads(self.history_file.read_text()))

    def served(self) -> str | None:
        """The version served now: its folder name, or None when no version was promoted."""
        if self.serving.is_symlink():
            return Path(os.readlink(self.serving)).name
        return None

    def versions(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.is_dir())

    def new_folder(self, label: str = "") -> Path:
        """An empty folder for a candidate, named by time (and `label`)."""
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        name = f"{stamp}-{label}" if label else stamp
        path = self.folder / name
        suffix = 1
        while path.exists():
            suffix += 1
            path = self.folder / f"{name}-{suffix}"
        path.mkdir(parents=True)
        return path

    def promote(self, version: str, why: dict[str, Any] | None = None) -> None:
        """Serve `version` (a folder in the registry) from now on."""
        target = self.folder / version
        if not (target / "config.json").exists() and not any(target.glob("*.pt")):
            raise ValueError(f"{target} holds no trained model")
        self._adopt_unversioned()
        self._point_to(version)
        self.record({"action": "promote", "version": version, **(why or {})})

    def rollback(self) -> str:
        """Serve the version promoted before the current one; its name. ValueError when
        there is none. Rolling back twice goes back two promotions."""
        stack = self.stack()
        if len(stack) < 2:
            raise ValueError("no earlier version to roll back to")
        previous = stack[-2]
        if not (self.folder / previous).is_dir():
            raise ValueError(f"the earlier version {previous} is no longer kept")
        self._point_to(previous)
        self.record({"action": "rollback", "version": previous, "from": stack[-1]})
        return previous

    def stack(self) -> list[str]:
        """The promotions still in force, oldest first: the last one is served."""
        stack: list[str] = []
        for entry in self.history():
            if entry["action"] in ("promote", "adopt"):
                stack.append(entry["version"])
            elif entry["action"] == "rollback" and stack:
                stack.pop()
        return stack

    def _adopt_unversioned(self) -> None:
        if self.serving.is_symlink() or not self.serving.is_dir():
            return
        name = f"{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-initial"
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.move(str(self.serving), str(self.folder / name))
        self._point_to(name)
        self.record({"action": "adopt", "version": name})

    def _point_to(self, version: str) -> None:
        link = self.serving.with_name(f".{self.serving.name}.{os.getpid()}.link")
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(Path(self.folder.name) / version)  # relative: the tree can move
        os.replace(link, self.serving)

    def record(self, entry: dict[str, Any]) -> None:
        history = [*self.history(), {"at": round(time.time(), 3), **entry}]
        temporary = self.history_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(history, indent=1))
        os.replace(temporary, self.history_file)


@dataclass
class ServedModel:
    """Which model folder a process loaded, to notice a promotion or a rollback: the link's
    target, looked at no more than every `check_s` seconds."""

    folder: Path
    check_s: float = 5.0
    _target: str = ""
    _checked: float = 0.0

    def __post_init__(self) -> None:
        self._target = self._resolve()
        self._checked = time.monotonic()

    def _resolve(self) -> str:
        return os.path.realpath(self.folder)

    def changed(self) -> bool:
        now = time.monotonic()
        if now - self._checked < self.check_s:
            return False
        self._checked = now
        target = self._resolve()
        if target == self._target:
            return False
        self._target = target
        return True

    @property
    def version(self) -> str | None:
        """The promoted version's name, or the content hash of a folder never promoted."""
        if self.folder.is_symlink():
            return Path(self._target).name
        return model_version(Path(self._target))
