"""Personal data is masked before text leaves the process; order numbers and prices are kept."""

from __future__ import annotations

import random
from datetime import date

import pytest

from core.llm.pii import iban_valid, luhn_valid, mask_pii
from core.shop.demo.generator import _tracking_number


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
        # IBANs: compact or in groups of 4, only when the mod-97 check holds.
        ("IBAN GB82 WEST 1234 5698 7654 32 thanks", "IBAN [iban] thanks", ("iban",)),
        ("pay DE89370400440532013000 now", "pay [iban] now", ("iban",)),
        ("iban: nl91 abna 0417 1643 00", "iban: [iban]", ("iban",)),
        # Postcodes.
        ("I'm in SW1A 1AA", "I'm in [postcode]", ("postcode",)),
        ("London EC1A1BB", "London [postcode]", ("postcode",)),
        ("Ottawa ON K1A 0B1", "Ottawa ON [postcode]", ("postcode",)),
        ("1012 AB Amsterdam", "[postcode] Amsterdam", ("postcode",)),
        ("zip 94103-1234", "zip [postcode]", ("postcode",)),
        ("San Francisco CA 94103", "San Francisco CA [postcode]", ("postcode",)),
        ("Portland, Oregon 97201", "Portland, Oregon [postcode]", ("postcode",)),
        ("Portland, OR 97201", "Portland, OR [postcode]", ("postcode",)),
        ("D-10115 Berlin", "[postcode] Berlin", ("postcode",)),
        ("Hauptstraße 12, 10115 Berlin", "[address], [postcode] Berlin", ("postcode", "address")),
        ("my postcode is sw1a 1aa", "my postcode is [postcode]", ("postcode",)),
        # Tracking numbers: UPS, USPS (compact or spaced), and any long token after the word.
        ("it's 1Z999AA10123456784", "it's [tracking]", ("tracking",)),
        ("USPS 9400111899223100001234 late", "USPS [tracking] late", ("tracking",)),
        ("9400 1118 9922 3100 0012 34", "[tracking]", ("tracking",)),
        ("fedex tracking 123456789012", "fedex tracking [tracking]", ("tracking",)),
        ("FedEx: 123456789012345", "FedEx: [tracking]", ("tracking",)),
        ("DHL 1234567890 stuck", "DHL [tracking] stuck", ("tracking",)),
        ("tracking no. JJD0099999999", "tracking no. [tracking]", ("tracking",)),
        ("tracking #: 1234 5678 9012", "tracking #: [tracking]", ("tracking",)),
        # Dates of birth: any date after a birth word, any old date anywhere.
        ("born 2001-04-17", "born [date of birth]", ("dob",)),
        ("DOB: 17/04/2001", "DOB: [date of birth]", ("dob",)),
        ("d.o.b. 04-17-2001", "d.o.b. [date of birth]", ("dob",)),
        ("I was born on 17 April 2001", "I was born on [date of birth]", ("dob",)),
        ("my birthday is April 17, 2001", "my birthday is [date of birth]", ("dob",)),
        ("date of birth 3rd of May 2019", "date of birth [date of birth]", ("dob",)),
        ("17.04.1988 is my birthday", "[date of birth] is my birthday", ("dob",)),
        ("the account from 1990-02-03", "the account from [date of birth]", ("dob",)),
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
        # Order numbers, however written, and several at once.
        "where is order 48213",
        "#48213",
        "48213",
        "orders 48213 48214 48215",
        "Order 48213 Please help",
        "OK 48213 is late",
        "I live on Main Street, order 48213 Please",
        # Prices, sizes and quantities that look like a postcode or a tracking number.
        "it costs 12500 EUR",
        "the 2000 MB plan and a 1500 ML bottle",
        "size 42 EU, 10-12 UK",
        "ps5 2tb bundle",
        "the zip on my jacket is broken",
        "tracking number for order 48213",
        "DHL says it's delayed",
        # Recent dates: orders and deliveries.
        "delivered on 2025-05-27",
        "it arrived 03/14/2025 and 05-27-2025",
        "expected by March 3, 2026",
        # An IBAN whose check digits are wrong is no IBAN (and no card nor phone).
        "GB82WEST12345698765433",
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


def test_iban_mod97() -> None:
    assert iban_valid("GB82 WEST 1234 5698 7654 32")
    assert iban_valid("DE89370400440532013000")
    assert not iban_valid("GB82 WEST 1234 5698 7654 33")  # one digit off
    assert not iban_valid("GB28 WEST 1234 5698 7654 32")  # check digits swapped
    assert "[iban]" not in mask_pii("GB82 WEST 1234 5698 7654 33").text


def test_dates_of_birth_by_age() -> None:
    """A full date 13 or more years back is nobody's order: masked with no birth word."""
    old, recent = date.today().year - 13, date.today().year - 12
    assert mask_pii(f"since {old}-06-01").text == "since [date of birth]"
    assert mask_pii(f"since {recent}-06-01").text == f"since {recent}-06-01"
    assert mask_pii(f"since 1 June {old}").kinds == ("dob",)
    assert mask_pii("not a date: 2001-13-45").kinds == ()


@pytest.mark.parametrize("carrier", ["UPS", "USPS", "DHL", "FedEx"])
def test_demo_store_tracking_numbers_are_masked(carrier: str) -> None:
    """Each format the demo store writes, as the order reply shows it and as a customer types it."""
    rng = random.Random(7)
    for _ in range(20):
        number = _tracking_number(carrier, rng)
        for text in (f"Carrier: {carrier}, tracking number {number}.",
                     f"my {carrier} tracking is {number}"):
            result = mask_pii(text)
            assert number not in result.text
            assert result.kinds == ("tracking",), text
        if carrier in ("UPS", "USPS"):  # long enough to be known without the word
            assert mask_pii(number).text == "[tracking]"


def test_customer_names_are_masked_as_whole_words_in_any_case() -> None:
    text = "Hi, I'm Dana Smith; DANA here, smith-ish? Danaë Smithson, mail dana.smith@x.io"
    result = mask_pii(text, names=("Dana Smith",))
    assert result.text == (
        "Hi, I'm [name]; [name] here, [name]-ish? Danaë Smithson, mail [email]"
    )
    assert result.kinds == ("email", "name", "name", "name")


def test_name_parts_unicode_and_hyphens() -> None:
    names = ("Zoë Ó Briain-Lee",)
    result = mask_pii("zoë wrote: Briain-Lee and Lee, Ó is a letter", names)
    # The 1-letter part stays; the hyphenated part goes as one.
    assert result.text == "[name] wrote: [name] and [name], Ó is a letter"
    decomposed = "Zoe\u0308 wrote"
    assert mask_pii(decomposed, names).text == "[name] wrote"


def test_common_words_are_masked_only_as_given_name_parts() -> None:
    text = "the black boots will do, grace"
    assert mask_pii(text).text == text
    assert mask_pii(text, names=("Dana Smith",)).text == text
    assert mask_pii(text, names=("Grace Black",)).text == "the [name] boots will do, [name]"


def test_names_never_rewrite_a_placeholder() -> None:
    # A customer named like a placeholder: "[card]" stays "[card]", the name still goes.
    result = mask_pii("4111111111111111 from Card Phone", names=("Card Phone",))
    assert result.text == "[card] from [name]"
    assert result.kinds == ("card", "name")
