"""Fingerprints of what a model was built from, so `concierge train` can tell a current model
from one to rebuild: a model records the fingerprint when it is trained, and is current while
the fingerprint of the same inputs (code, data files) comes out the same."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path


def file_digest(paths: Iterable[Path]) -> str:
    """A short hash of the files' contents, in the order given."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
