"""Personal data is masked before text leaves the process; order numbers and prices are kept."""

from __future__ import annotations

import pytest

from core.llm.pii import luhn_valid, mask_pii


@pytest.mark.parametrize(
    ("text", "masked", "kinds"),
    [
        ("mail me at jane.doe+shop@example.co.uk", "mail me at [email]", ("email",)),
        ("card 4111 1111 1111 1111 was charged", "card [card] was charged", ("card",)),
        ("it's 5500-0000-0000-0004", "it's [card]", ("card",)),
        ("number 4012888888881881 declined", "number [card] declined", ("card",)),
        ("call me at (555) 123-4567", "call me at [phone]", ("phone",)),
        ("my mobile +44 7911 123456 thanks", "my mobile [phone] thanks", ("phone",)),
        ("ring 0049 30 1234567", "ring [phone]", ("phone",)),
        ("send it to 221B Baker Street, London", "send it to [address], London", ("address",)),
        ("I moved to 12 North Main St. yesterday", "I moved to [address] yesterday", ("address",)),
        ("Flat 3, 7 Elm Road please", "[address] please", ("address",)),
        ("deliver to Hauptstraße 12, Berlin", "deliver to [address], Berlin", ("address",)),
    ],
)
def test_personal_data_is_masked(text: str, masked: str, kinds: tuple[str, ...]) -> None:
    result = mask_pii(text)
    assert result.text == masked
    assert result.kinds == kinds


@pytest.mark.parametrize(
    "text",
    [
        "where is order 48213?",
        "any update on #51872",
        "under $1,299.99 please",
        "between 50 and 80 euros",
        "size 42, the second one",
        "I ordered on 2024-01-15",
        "4111 1111 1111 1112 is not a valid card number",  # fails the Luhn check
        "I walked 5 miles down the road",
    ],
)
def test_non_personal_details_pass_unchanged(text: str) -> None:
    assert mask_pii(text).text == text
    assert mask_pii(text).kinds == ()


def test_several_kinds_in_one_message() -> None:
    text = "I'm jo@x.io, card 4111111111111111, phone 555-123-4567, order 48213"
    result = mask_pii(text)
    assert result.text == "I'm [email], card [card], phone [phone], order 48213"
    assert sorted(result.kinds) == ["card", "email", "phone"]
    for secret in ("jo@x.io", "4111111111111111", "555-123-4567"):
        assert secret not in result.text


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
