"""Masking of personal data before text leaves the process for an external LLM.

Masked, each as a placeholder: emails, IBANs (only when the ISO 7064 mod-97 check holds),
parcel tracking numbers, dates of birth, payment cards (only when the Luhn check holds), phones,
postcodes, street addresses, and the names on the customer's record when the caller knows them.

Order numbers (5 digits, with or without '#'), prices, sizes and recent dates (an order's,
a delivery's) pass through untouched: the LLM needs them and they identify no person. Patterns
that could take one of them for something personal ask for context first: a 5-digit number is
a postcode only after a US state or in a European address, a 10-digit one a tracking number only
after "tracking", "DHL" or "FedEx", a recent date a date of birth only after "born", "DOB" and
the like.

The passes run in a fixed order, most specific first, so that a long number one pattern knows
(a USPS tracking number, an IBAN) is not cut into a [card] or a [phone] by a looser one; every
pass leaves the placeholders of the others alone.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import partial

EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
# 13 to 19 digits, optionally grouped by spaces or dashes: a payment card candidate.
CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
# A phone: optional +country, 7 to 15 digits with common separators.
PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d\s().-]{5,18}\d(?![\w])")
# A date written with digits only ("2024-01-15", "05-27-2025", "17.04.2001"): never a phone.
NUMERIC_DATE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
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

# ---------------------------------------------------------------------------- IBAN
# Country code, 2 check digits, then 11 to 30 letters and digits, compact or in groups of 4.
# The candidate may run on into the next words ("... 3000 AND"); `iban` trims it back.
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b", re.IGNORECASE)
IBAN_LENGTHS = range(15, 35)  # Norway's 15 characters to the 34 the standard allows

# ---------------------------------------------------------------------------- tracking
# UPS: "1Z" and 16 letters and digits, compact or spaced as printed on labels.
UPS = re.compile(r"\b1Z(?:[ ]?[A-Z0-9]){16}\b", re.IGNORECASE)
# USPS: 20 to 22 digits in a row, or spaced in groups of 4 from the usual 92-95 prefixes.
# (No order number, price or card is that long.)
USPS = re.compile(
    r"(?<![\w-])(?:\d{20,22}|9[2-5]\d{2}(?:[ ]\d{4}){4}(?:[ ]\d{1,2})?)(?![\w-])"
)
# After "tracking (number|no|#)", "DHL" or "FedEx": any token of 10+ characters with a digit
# (DHL's 10 digits, FedEx's 12 or 15, also spaced in 4s), the words before it kept.
TRACKING_AFTER_WORD = re.compile(
    r"(?P<lead>\b(?:tracking|fedex|dhl|ups|usps)\b"
    r"(?:\s*(?:tracking|number|no|nr|num|code|id|is|was)\b|\s*[#:.])*\s*)"
    r"(?P<token>\d{4}(?:[ ]\d{4}){2}(?:[ ]\d{3,4})?(?![\w-])"
    r"|(?=[A-Z-]*\d)[A-Z0-9][A-Z0-9-]{9,}\b)",
    re.IGNORECASE,
)

# ---------------------------------------------------------------------------- dates of birth
MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}
MONTH_NAME = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
# A full date: ISO (2001-04-17), day and month either way round (17/04/2001, 04-17-2001),
# or with the month's name (17 April 2001, April 17, 2001).
DATE = re.compile(
    rf"(?<![\w/.-])(?:(?P<iso_y>\d{{4}})[-/.](?P<iso_m>\d{{1,2}})[-/.](?P<iso_d>\d{{1,2}})"
    rf"|(?P<num_a>\d{{1,2}})[-/.](?P<num_b>\d{{1,2}})[-/.](?P<num_y>\d{{4}}|\d{{2}})"
    rf"|(?P<dm_d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<dm_m>{MONTH_NAME})\.?,?\s+"
    rf"(?P<dm_y>\d{{4}})"
    rf"|(?P<md_m>{MONTH_NAME})\.?\s+(?P<md_d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<md_y>\d{{4}}))"
    rf"(?![\w/-]|\.\d)",
    re.IGNORECASE,
)
BIRTH_WORD = (
    r"(?:\b(?:born|dob|date\s+of\s+birth|birth\s*date|birthday|b-?day)\b|\bd\.\s?o\.\s?b\b\.?)"
)
# The birth word, then at most three small words before the date ("born on", "DOB:",
# "my date of birth is").
BIRTH_BEFORE = re.compile(
    rf"{BIRTH_WORD}\W*(?:(?:is|was|on|in|at|the|of)\b\W*){{0,3}}$", re.IGNORECASE
)
# "17/04/2001 is my birthday", "April 17, 2001 (date of birth)"
BIRTH_AFTER = re.compile(
    r"^\W*(?:(?:is|was)\s+)?(?:(?:my|his|her|their|the)\s+)?"
    r"(?:birthday|date\s+of\s+birth|dob|birth\s*date)\b",
    re.IGNORECASE,
)
# A date this many years back is nobody's order or delivery: treated as a birth date anywhere.
BIRTH_YEARS = 13

# ---------------------------------------------------------------------------- postcodes
# "postcode: sw1a 1aa", "zip code 94103", "PLZ 10115": whatever follows the word, any case.
POSTCODE_AFTER_WORD = re.compile(
    r"(?P<lead>\b(?:post(?:al)?\s?code|zip\s?code|plz|zip(?=\s*(?:is\b|:)))\b"
    r"(?:\s+(?:is|was))?[\s:#]*)"
    r"(?P<code>\d{4} ?[A-Z]{2}\b"
    r"|(?=[A-Z]*\d)[A-Z0-9]{4,8}(?:[ -]\d[A-Z0-9]{1,3})?\b)",
    re.IGNORECASE,
)
# The UK's postcode areas: a full postcode begins with one of them ("SW1A 1AA", "EC1A1BB").
UK_AREAS = (
    "AB|AL|BA|BB|BD|BF|BH|BL|BN|BR|BS|BT|BX|CA|CB|CF|CH|CM|CO|CR|CT|CV|CW|DA|DD|DE|DG|DH|DL|DN|"
    "DT|DY|EC|EH|EN|EX|FK|FY|GL|GU|GY|HA|HD|HG|HP|HR|HS|HU|HX|IG|IM|IP|IV|JE|KA|KT|KW|KY|LA|LD|"
    "LE|LL|LN|LS|LU|ME|MK|ML|NE|NG|NN|NP|NR|NW|OL|OX|PA|PE|PH|PL|PO|PR|RG|RH|RM|SA|SE|SG|SK|SL|"
    "SM|SN|SO|SP|SR|SS|ST|SW|SY|TA|TD|TF|TN|TQ|TR|TS|TW|UB|WA|WC|WD|WF|WN|WR|WS|WV|YO|ZE|"
    "B|E|G|L|M|N|S|W"
)
UK_POSTCODE = re.compile(rf"\b(?:{UK_AREAS})\d[A-Z\d]? ?\d[ABD-HJLNP-UW-Z]{{2}}\b", re.IGNORECASE)
CA_POSTCODE = re.compile(
    r"\b[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z][ -]?\d[ABCEGHJ-NPRSTV-Z]\d\b", re.IGNORECASE
)
# Dutch: 4 digits and 2 capitals ("1012 AB"), but not letters the Dutch never use (SA, SD, SS),
# a size or a quantity ("2000 MB", "1500 ML"), nor a number before a word in capitals ("2024 IS").
NOT_NL_LETTERS = (
    "SA|SD|SS|AM|PM|AD|BC|GB|MB|KB|TB|PB|MG|ML|KG|KM|CM|MM|HZ|HD|UK|US|EU|UN|OK|NO|IN|ON|AT|TO|"
    "OF|OR|IS|IT|BE|BY|DO|GO|HE|IF|ME|MY|SO|UP|WE|AN|AS|XL|XS|ID|TV|PC"
)
NL_POSTCODE = re.compile(rf"\b[1-9]\d{{3}} ?(?!(?:{NOT_NL_LETTERS})\b)[A-Z]{{2}}\b")
US_STATES = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|"
    "NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|DC|PR"
)
# Abbreviations that are also English words: a state only after a comma ("Portland, OR 97201").
WORDLIKE_STATES = frozenset(
    {"AL", "CO", "HI", "ID", "IN", "LA", "MA", "ME", "OH", "OK", "OR", "PA"}
)
US_STATE_NAMES = (
    "Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|Georgia|"
    "Hawaii|Idaho|Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|Massachusetts|"
    "Michigan|Minnesota|Mississippi|Missouri|Montana|Nebraska|Nevada|New\\s+Hampshire|"
    "New\\s+Jersey|New\\s+Mexico|New\\s+York|North\\s+Carolina|North\\s+Dakota|Ohio|Oklahoma|"
    "Oregon|Pennsylvania|Rhode\\s+Island|South\\s+Carolina|South\\s+Dakota|Tennessee|Texas|Utah|"
    "Vermont|Virginia|Washington|West\\s+Virginia|Wisconsin|Wyoming|Puerto\\s+Rico"
)
# A 5-digit ZIP (or ZIP+4) right after a state: "CA 94103", "Oregon 97201"; the state is kept.
US_ZIP_AFTER_STATE = re.compile(
    rf"(?P<state>\b(?:(?P<abbr>{US_STATES})|(?i:{US_STATE_NAMES}))\b,?\s+)"
    r"(?P<zip>\d{5}(?:-\d{4})?)\b"
)
US_ZIP4 = re.compile(r"(?<![\w#-])\d{5}-\d{4}(?![\w-])")
# "D-10115", "CH-8001": a European code behind its country letters.
EU_PREFIXED = re.compile(
    r"\b(?:D|DE|A|AT|CH|F|FR|I|IT|NL|B|BE|L|LU|DK)-\d{4,5}\b"
)
# "Hauptstraße 12, 10115 Berlin": 5 digits and a capitalised word, in an address (see `eu_city`).
EU_CODE_CITY = re.compile(r"(?<![\w#$€£.,/-])(?P<code>\d{5})(?=,?\s+(?P<city>[^\W\d_]+))")
STREET_WORD = re.compile(
    r"(?:straße|strasse|straat|weg|gasse|allee|platz|laan|gracht|damm|ufer)\b|str\.|"
    r"\b(?:rue|calle|via|avenida|rua|piazza|plaza|street|road|avenue|lane)\b",
    re.IGNORECASE,
)
# "order 48213 Berlin", "#48213 Please": an order number stays one.
ORDER_CONTEXT = re.compile(r"(?:\border|#|\bno\.?|\bnumber|\bnr\.?)\s*$", re.IGNORECASE)

# Every placeholder; a later pass, the names' above all, never rewrites one.
PLACEHOLDER = re.compile(
    r"(\[(?:email|iban|tracking|date of birth|card|postcode|phone|address|name)\])"
)


@dataclass(frozen=True)
class Masked:
    text: str
    # What was masked, one entry per replacement: "email", "iban", "tracking", "dob", "card",
    # "postcode", "phone", "address", "name".
    kinds: tuple[str, ...]


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """ISO 7064 mod-97: country and check digits moved to the end, letters as 10-35, mod 97 == 1."""
    compact = re.sub(r"\s", "", iban).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]+", compact) or len(compact) not in IBAN_LENGTHS:
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in moved)) % 97 == 1


def mask_pii(text: str, names: Sequence[str] = ()) -> Masked:
    """The text with personal data replaced by [email], [iban], [tracking], [date of birth],
    [card], [phone], [postcode], [address]; and by [name] each of `names` (the customer's full
    names, e.g. ("Dana Smith",)) and each of their parts of 2 or more letters, as whole words,
    in any case."""
    kinds: list[str] = []

    def replace(kind: str, placeholder: str) -> Callable[[re.Match[str]], str]:
        def substitute(match: re.Match[str]) -> str:
            kinds.append(kind)
            return placeholder

        return substitute

    def iban(match: re.Match[str]) -> str:
        # The candidate may have taken words after the IBAN: drop them one group at a time.
        groups = match.group(0).split(" ")
        for end in range(len(groups), 0, -1):
            if iban_valid("".join(groups[:end])):
                kinds.append("iban")
                return " ".join(["[iban]", *groups[end:]])
        return match.group(0)

    def tracking_after_word(match: re.Match[str]) -> str:
        kinds.append("tracking")
        return f"{match.group('lead')}[tracking]"

    def birth_date(match: re.Match[str]) -> str:
        year = _full_date_year(match)
        if year is None:
            return match.group(0)
        before = match.string[max(0, match.start() - 60) : match.start()]
        after = match.string[match.end() : match.end() + 40]
        in_context = BIRTH_BEFORE.search(before) or BIRTH_AFTER.search(after)
        too_old = year >= 1000 and year <= date.today().year - BIRTH_YEARS
        if not (in_context or too_old):
            return match.group(0)
        kinds.append("dob")
        return "[date of birth]"

    def card(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            kinds.append("card")
            return "[card]"
        return match.group(0)

    def postcode_after_word(match: re.Match[str]) -> str:
        kinds.append("postcode")
        return f"{match.group('lead')}[postcode]"

    def uk_postcode(match: re.Match[str]) -> str:
        inward = match.group(0)[-3:]
        if inward.islower() and re.fullmatch(r"\d(?:st|nd|rd|th)", inward):
            return match.group(0)  # "m2 4th", "b1 2nd": an ordinal, not a postcode
        kinds.append("postcode")
        return "[postcode]"

    def us_zip(match: re.Match[str]) -> str:
        if match.group("abbr") in WORDLIKE_STATES and not re.search(
            r",\s*$", match.string[: match.start()]
        ):
            return match.group(0)
        kinds.append("postcode")
        return f"{match.group('state')}[postcode]"

    def eu_city(match: re.Match[str]) -> str:
        before = match.string[max(0, match.start() - 60) : match.start()]
        if (
            not match.group("city")[0].isupper()
            or ORDER_CONTEXT.search(before)
            or not STREET_WORD.search(before)
        ):
            return match.group(0)
        kinds.append("postcode")
        return "[postcode]"

    def phone(match: re.Match[str]) -> str:
        raw = match.group(0)
        digits = re.sub(r"\D", "", raw)
        if not 7 <= len(digits) <= 15 or NUMERIC_DATE.fullmatch(raw.strip()):
            return raw
        # "1,299.99" style prices and plain decimals are not phones.
        if re.fullmatch(r"\d{1,3}(?:,\d{3})*(?:\.\d+)?", raw.strip()):
            return raw
        # "48213 48214": order numbers side by side are not a phone either.
        if re.fullmatch(r"[1-9]\d{4}(?:[\s,]+[1-9]\d{4})+", raw.strip()):
            return raw
        kinds.append("phone")
        return "[phone]"

    passes: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
        (EMAIL, replace("email", "[email]")),
        (IBAN, iban),
        (UPS, replace("tracking", "[tracking]")),
        (USPS, replace("tracking", "[tracking]")),
        (TRACKING_AFTER_WORD, tracking_after_word),
        (DATE, birth_date),
        (CARD, card),
        (POSTCODE_AFTER_WORD, postcode_after_word),
        (UK_POSTCODE, uk_postcode),
        (CA_POSTCODE, replace("postcode", "[postcode]")),
        (NL_POSTCODE, replace("postcode", "[postcode]")),
        (US_ZIP_AFTER_STATE, us_zip),
        (US_ZIP4, replace("postcode", "[postcode]")),
        (EU_PREFIXED, replace("postcode", "[postcode]")),
        (EU_CODE_CITY, eu_city),
        (PHONE, phone),
        (STREET_EN, replace("address", "[address]")),
        (STREET_EU, replace("address", "[address]")),
    )
    masked = text
    for pattern, substitute in passes:
        masked = _outside_placeholders(masked, partial(pattern.sub, substitute))
    name = name_pattern(names)
    if name is not None:
        masked = _outside_placeholders(masked, partial(name.sub, replace("name", "[name]")))
    return Masked(masked, tuple(kinds))


def name_pattern(names: Sequence[str]) -> re.Pattern[str] | None:
    """Whole-word, any-case matcher of each full name and each part of it with 2+ letters
    ("Mary-Jane O'Neil" -> the full name, "Mary-Jane", "O'Neil", "Mary", "Jane");
    None when there is nothing to mask."""
    if isinstance(names, str):
        names = (names,)
    words: set[str] = set()
    for full in names:
        full = " ".join(full.split())
        candidates = {full, *full.split(" "), *re.split(r"[\s-]+", full)}
        for candidate in candidates:
            candidate = candidate.strip(".,;:!?\"'()")
            if sum(char.isalpha() for char in candidate) >= 2:
                # Both Unicode forms: "Zoë" typed with a combining diaeresis is the same name.
                words.update(unicodedata.normalize(form, candidate) for form in ("NFC", "NFD"))
    if not words:
        return None
    # Longest first, so the full name wins over its parts; spaces inside match any whitespace.
    alternatives = (
        r"\s+".join(re.escape(piece) for piece in word.split(" "))
        for word in sorted(words, key=len, reverse=True)
    )
    return re.compile(rf"(?<!\w)(?:{'|'.join(alternatives)})(?!\w)", re.IGNORECASE)


def _full_date_year(match: re.Match[str]) -> int | None:
    """The year of a DATE match that is a real calendar day (2-digit years as written), or None."""
    found = match.groupdict()
    if found["iso_y"]:
        year, month, day = int(found["iso_y"]), int(found["iso_m"]), int(found["iso_d"])
    elif found["num_y"]:
        year, first, second = int(found["num_y"]), int(found["num_a"]), int(found["num_b"])
        # Month first if it can be (04-17-2001), else day first (17/04/2001).
        month, day = (first, second) if first <= 12 else (second, first)
    elif found["dm_y"]:
        year, day = int(found["dm_y"]), int(found["dm_d"])
        month = MONTHS[found["dm_m"][:3].lower()]
    else:
        year, day = int(found["md_y"]), int(found["md_d"])
        month = MONTHS[found["md_m"][:3].lower()]
    try:
        date(year if year >= 1000 else 2000 + year, month, day)
    except ValueError:
        return None
    return year


def _outside_placeholders(text: str, change: Callable[[str], str]) -> str:
    """`change` applied to the text between placeholders; the placeholders stay as they are."""
    parts = PLACEHOLDER.split(text)
    return "".join(part if index % 2 else change(part) for index, part in enumerate(parts))
