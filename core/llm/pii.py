"""Masking of personal data before text leaves the process (emails, phones, cards, addresses).

Order numbers (5 digits), prices and sizes pass through untouched: the LLM needs them and they
identify no person.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
# 13 to 19 digits, optionally grouped by spaces or dashes: a payment card candidate.
CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
# A phone: optional +country, 7 to 15 digits with common separators.
PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d\s().-]{5,18}\d(?![\w])")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
STREET_SUFFIX = (
    r"street|st|road|rd|avenue|ave|lane|ln|drive|dr|boulevard|blvd|way|court|ct|place|pl|"
    r"terrace|close|crescent|square|sq|parkway|pkwy|highway|hwy|row|mews|gardens|grove|hill"
)
# Words that make "5 miles down the road" a distance, not a street name.
NOT_STREET_WORDS = (
    r"the|a|an|of|to|in|on|at|up|down|along|across|miles?|km|kilometers?|metres?|meters?|"
    r"minutes?|mins?|hours?|blocks?|steps?|times?|days?|items?|more|other|my|your|this|that"
)
# "221B Baker Street", "12 north main st", "Flat 3, 7 Elm Road"
STREET_EN = re.compile(
    rf"\b(?:(?:apt|flat|unit|suite)\.?\s*\w{{1,5}},?\s+)?\d{{1,5}}[a-z]?,?\s+"
    rf"(?:(?!(?:{NOT_STREET_WORDS})\b)[a-z][\w'.-]*\s+){{1,4}}(?:{STREET_SUFFIX})\b\.?",
    re.IGNORECASE,
)
# "Hauptstraße 12", "Rue de Rivoli 5", "Calle Mayor 3": name first, number after.
STREET_EU = re.compile(
    r"\b(?:(?:rue|calle|via|avenida|rua)\s+(?:[\w'-]+\s+){1,3}\d{1,5}[a-z]?"
    r"|[\w-]*(?:straße|strasse|str\.|weg|gasse|allee|platz|laan|gracht|straat)\s+\d{1,5}[a-z]?)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Masked:
    text: str
    kinds: tuple[str, ...]  # what was masked, one entry per replacement ("email", "card", ...)


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def mask_pii(text: str) -> Masked:
    """The text with personal data replaced by [email], [card], [phone], [address]."""
    kinds: list[str] = []

    def replace(kind: str, placeholder: str) -> Callable[[re.Match[str]], str]:
        def substitute(match: re.Match[str]) -> str:
            kinds.append(kind)
            return placeholder

        return substitute

    def card(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            kinds.append("card")
            return "[card]"
        return match.group(0)

    def phone(match: re.Match[str]) -> str:
        raw = match.group(0)
        digits = re.sub(r"\D", "", raw)
        if not 7 <= len(digits) <= 15 or ISO_DATE.match(raw.strip()):
            return raw
        # "1,299.99" style prices and plain decimals are not phones.
        if re.fullmatch(r"\d{1,3}(?:,\d{3})*(?:\.\d+)?", raw.strip()):
            return raw
        kinds.append("phone")
        return "[phone]"

    masked = EMAIL.sub(replace("email", "[email]"), text)
    masked = CARD.sub(card, masked)
    masked = PHONE.sub(phone, masked)
    masked = STREET_EN.sub(replace("address", "[address]"), masked)
    masked = STREET_EU.sub(replace("address", "[address]"), masked)
    return Masked(masked, tuple(kinds))
