"""Splitting long replies at natural boundaries."""

from __future__ import annotations

from bots.layout import rows, split_text, utf16_units


def test_short_text_is_one_piece():
    assert split_text("hello", 10) == ["hello"]
    assert split_text("   ", 10) == []


def test_prefers_paragraphs_then_lines_then_words():
    text = "aaaa bbbb\n\ncccc dddd"
    assert split_text(text, 12) == ["aaaa bbbb", "cccc dddd"]
    assert split_text("aa bb cccc\ndddd", 12) == ["aa bb cccc", "dddd"]
    assert split_text("aaaa bbbb cccc", 10) == ["aaaa bbbb", "cccc"]


def test_keeps_pieces_reasonably_full():
    # A line break early in the piece loses to a word break in its second half.
    assert split_text("aa\nbbbb cccc dd", 12) == ["aa\nbbbb cccc", "dd"]


def test_hard_cut_only_inside_an_overlong_word():
    assert split_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_measures_utf16_units():
    text = "😀" * 3000  # 6000 UTF-16 units
    pieces = split_text(text, 4096, utf16_units)
    assert all(utf16_units(p) <= 4096 for p in pieces)
    assert "".join(pieces) == text


def test_rows():
    assert rows([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
