"""Failures of the storage every part shares, named once so each layer can catch them."""

from __future__ import annotations


class StoreUnavailable(RuntimeError):
    """A store (SQLite file or Redis) cannot be reached or read; the message says why and what
    to do, and never contains a password."""
