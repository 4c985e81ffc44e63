"""Failures of the storage every part shares, named once so each layer can catch them."""

from __future__ import annotations


class StoreUnavailable(RuntimeError):
    """A store (SQLite file or Redis) cannot be reached or read; the message says why and what
    to do, and never contains a password."""


class StoreNotReady(RuntimeError):
    """The store database cannot be opened, has no schema yet or no products; the message says
    what to run, and never contains a password."""
