"""Fitting replies into platform limits: long text split at natural boundaries, buttons in rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def utf16_units(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int, measure: Callable[[str], int] = len) -> list[str]:
    """Pieces of at most `limit` (by `measure`), cut at a paragraph, else a line, else a word.

    A hard cut happens only inside a single word longer than the limit. Nothing is lost except
    the whitespace at the cut.
    """
    pieces: list[str] = []
    rest = text.strip()
    while measure(rest) > limit:
        fit = _longest_prefix(rest, limit, measure)
        cut = 0
        for separator in ("\n\n", "\n", " "):
            # Prefer a separator in the second half, so pieces stay reasonably full.
            at = rest.rfind(separator, fit // 2, fit + 1)
            if at > 0:
                cut = at
                break
        if cut == 0:
            cut = max((rest.rfind(s, 0, fit + 1) for s in ("\n\n", "\n", " ")), default=-1)
        if cut <= 0:
            cut = fit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].strip()
    if rest:
        pieces.append(rest)
    return pieces


def _longest_prefix(text: str, limit: int, measure: Callable[[str], int]) -> int:
    """Largest n with measure(text[:n]) <= limit (measure grows with n)."""
    low, high = 0, min(len(text), limit)
    while low < high:
        middle = (low + high + 1) // 2
        if measure(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return max(low, 1)


def rows(items: Sequence[T], width: int) -> list[list[T]]:
    """Items in rows of `width`, in order."""
    return [list(items[i : i + width]) for i in range(0, len(items), width)]
