"""Phone numbers: read them out of free text, normalise to E.164, mask them for logs."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberMatcher

from confcall.errors import BadNumbers

# Parts of a start text are separated by commas, semicolons or line breaks; within a part,
# numbers may also be separated by spaces.
_PART_SEPARATORS = re.compile(r"[,;\n\r]+")
_FILLER = re.compile(r"^[\s,;.:/&+-]*(?:and)?[\s,;.:/&+-]*$", re.IGNORECASE)
_MAX_PART_LENGTH = 60


@dataclass(frozen=True)
class ReadNumbers:
    """What a start text held: valid numbers in E.164 (first seen first) and what was not."""

    numbers: tuple[str, ...]
    not_numbers: tuple[str, ...]


def normalise(text: str, region: str = "US") -> str:
    """One phone number in E.164, or BadNumbers naming what is wrong."""
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise BadNumbers(f"{text.strip()!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise BadNumbers(f"{text.strip()!r} is not a valid phone number")
    return str(phonenumbers.format_number(parsed, PhoneNumberFormat.E164))


def read_numbers(text: str, region: str = "US", limit: int | None = None) -> ReadNumbers:
    """Every valid number in `text`, deduplicated, and the parts of `text` that were not one.
    With `limit`, reading stops once more than `limit` numbers were found: matching is slow
    (about 0.15 ms a number), and a hostile text may hold thousands."""
    numbers: list[str] = []
    not_numbers: list[str] = []
    for part in _PART_SEPARATORS.split(text):
        if limit is not None and len(numbers) > limit:
            break
        rest = part
        for match in PhoneNumberMatcher(part, region):
            if limit is not None and len(numbers) > limit:
                break
            number = str(phonenumbers.format_number(match.number, PhoneNumberFormat.E164))
            if number not in numbers:
                numbers.append(number)
            rest = rest.replace(match.raw_string, " ", 1)
        leftover = " ".join(rest.split())
        if leftover and not _FILLER.match(leftover):
            if len(leftover) > _MAX_PART_LENGTH:
                leftover = leftover[: _MAX_PART_LENGTH - 1] + "…"
            not_numbers.append(leftover)
    return ReadNumbers(tuple(numbers), tuple(not_numbers))


def for_log(number: str, masked: bool) -> str:
    """A number as the logs show it: masked, unless the operator turned masking off."""
    return mask(number) if masked else number


def mask(number: str) -> str:
    """`+12015550123` -> `+1201***0123`: enough to tell numbers apart in a log, no more."""
    if len(number) <= 8:
        return "***" + number[-2:]
    return f"{number[:5]}***{number[-4:]}"
