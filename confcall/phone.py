"""Phone numbers: read them out of free text, normalise to E.164, mask them for logs."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import accumulate
from typing import NamedTuple

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberFormat

from confcall.errors import BadNumbers

# How a start text is read, in time linear in its length whatever it holds:
# - A run is a stretch of digits where at most _MAX_GAP spaces, dots, dashes, slashes or
#   brackets stand between two digits ("(201) 555-0123 201.555.0124"); a "+" opens a run.
#   One regex finds the runs long enough to hold a number, so most junk never reaches Python.
# - Within a run, a number can only start at a digit group where a number of the right
#   length for its country ends on a later group boundary. Set operations on the groups'
#   running digit counts find those places (in C, a window of groups at a time), and numbers
#   are taken from them greedily, longest first: "201 555 0123 201 555 0124" is two numbers.
# - Each such candidate is a token read, valid or not, and so is a run long enough to hold a
#   number that has none: `limit` bounds the calls into phonenumbers (slow: ~0.1 ms each).
# - What is left of the text, numbers taken out, is cleaned up by a few passes of C.
_DASHES = "‐‑‒–—−"
_SPACES = " \t\v\f\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
          "\u202f\u205f\u3000"
_JOINERS = _SPACES + ".-/()" + _DASHES
_MAX_GAP = 3  # characters between two digits of a run: "(201) 555", "201 - 555"
_MIN_DIGITS = 6  # no number with its country code has fewer: +43 and 4 digits in Austria
_DIGITS = re.compile(r"\d+")
_GAPS = re.compile(r"\D+")
_WINDOW = 512  # groups of a run whose starts are looked for together
_LEADS = "+("  # kept with the group they precede in a number's span: "+1", "(201)"

# Commas, semicolons and line breaks split a text into parts; what is left of a part once its
# numbers are taken out is quoted back as one, without the filler: words made only of
# punctuation, and "and" at either end.
_PARTS = re.compile(r"[^,;\r\n]+")
_PUNCTUATION = "[" + re.escape(".:/&+-()" + _DASHES) + "]"
# (a punctuation character first, not a lookbehind, lets the regex skip other text in C)
_PUNCTUATION_WORD = re.compile(
    rf"{_PUNCTUATION}(?<![^\s,;]{_PUNCTUATION}){_PUNCTUATION}*(?![^\s,;])")
_SPACES_RUN = re.compile(r"[^\S\r\n]+")
# "and" after a separator once spaces are collapsed; and the same read backwards, to find
# "and" before one in the reversed text
_LEADING_AND = re.compile(r"(?<=[,;\r\n])(?: ?[aA][nN][dD](?![^ ,;\r\n]))+")
_TRAILING_AND = re.compile(r"(?<=[,;\r\n])(?: ?[dD][nN][aA](?![^ ,;\r\n]))+")
_MAX_PART_LENGTH = 60


@dataclass(frozen=True)
class ReadNumbers:
    """What a start text held: valid numbers in E.164 (distinct, first seen first), what was
    not a number, the numbers seen more than once, and whether reading stopped at the limit
    (`numbers` then holds at most limit + 1)."""

    numbers: tuple[str, ...]
    not_numbers: tuple[str, ...]
    duplicates: tuple[str, ...] = ()
    truncated: bool = False


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
    """Every valid number in `text` and the parts of `text` that were not one. Numbers may be
    written as `+12015550123`, `(201) 555-0123`, `201.555.0123`, `201-555-0123`, `1 201 555
    0123`, `+44 20 7946 0123`..., separated by spaces, commas, semicolons, new lines or "and".
    With `limit`, reading stops once more than `limit` number-like tokens were read: each
    stretch of digits of a number's length counts, valid or not, duplicates included."""
    reader = _Reader(text, region, limit)
    reader.read()
    return ReadNumbers(tuple(reader.numbers), tuple(_leftovers(text, reader.spans, reader.end)),
                       tuple(number for number in reader.numbers if number in reader.repeated),
                       reader.truncated)


class _Reader:
    """One pass over the runs of a text, reading the numbers in each."""

    def __init__(self, text: str, region: str, limit: int | None) -> None:
        self.text = text
        self.region = region
        self.limit = limit
        self.national = _national_lengths(region)
        self.numbers: list[str] = []
        self.repeated: set[str] = set()
        self.spans: list[tuple[int, int]] = []  # where each number read is, in text order
        self.end = len(text)  # how far the text was read
        self.truncated = False
        self._reads = 0
        self._seen: set[str] = set()
        self._parsed: dict[str, str | None] = {}

    def read(self) -> None:
        text = self.text
        in_ascii = text.isascii()
        for match in _runs(min(self.national.counts, default=_MIN_DIGITS)).finditer(text):
            start, end = match.span()
            plus = text.startswith("+", start)
            start += plus + text.startswith("(", start + plus)  # where its digits start
            groups = _DIGITS.findall(text, start, end)
            if not in_ascii:
                groups = [_ascii(group) for group in groups]
            reads = self._reads
            if not self._read_run(_Run(text, start, end, groups), plus):
                return
            # digits enough for a number but no number's shape: still a token read
            if self._reads == reads and not self._count(end):
                return

    def _read_run(self, run: _Run, plus: bool) -> bool:
        """Read the numbers of one run; False once past the limit."""
        international = _international_lengths(run.head()) if plus else self.national
        reach = max(self.national.counts + international.counts, default=0)
        for first in range(0, len(run.groups), _WINDOW):
            run.look(first, first + _WINDOW + reach)  # a group has at least one digit
            if first == 0 and plus and not self._read_at(run, 0, international, "+"):
                return False
            # where a national number can start: `length` digits before a group boundary
            counts = set(run.total)
            starts: set[int] = set()
            for length in self.national.counts:
                starts |= counts.intersection(map(length.__rsub__, run.total))
            for count in sorted(starts):
                at = run.index[count]
                if at >= first + _WINDOW:
                    break
                if at >= run.free and not (plus and at == 0) \
                        and not self._read_at(run, at, self.national, ""):
                    return False
        return True

    def _read_at(self, run: _Run, at: int, lengths: _Lengths, plus: str) -> bool:
        """Read the longest number starting at group `at`, if there is one; False once more
        than `limit` tokens were read."""
        before = run.total[at - run.first]
        for length in lengths.counts:  # longest first
            after = run.index.get(before + length)
            if after is None:
                continue
            digits = "".join(run.groups[at:after])
            # without the national prefix its length needs, a token read but not a number
            number = (self._parse(plus + digits) if length not in lengths.prefixed
                      or digits.startswith(lengths.prefix, lengths.code) else None)
            span = run.span(at, after)
            if number is not None:
                self._found(number, span)
                run.free = after
            if not self._count(span[1]):
                return False
            if number is not None:
                break
        return True

    def _count(self, end: int) -> bool:
        """Count a token read, ending at `end`; False once more than `limit` were read."""
        self._reads += 1
        if self.limit is not None and self._reads > self.limit:
            self.truncated = True
            self.end = end
            return False
        return True

    def _parse(self, candidate: str) -> str | None:
        if candidate not in self._parsed:
            try:
                parsed = phonenumbers.parse(candidate, self.region)
            except phonenumbers.NumberParseException:
                self._parsed[candidate] = None
            else:
                self._parsed[candidate] = (
                    str(phonenumbers.format_number(parsed, PhoneNumberFormat.E164))
                    if phonenumbers.is_valid_number(parsed) else None)
        return self._parsed[candidate]

    def _found(self, number: str, span: tuple[int, int]) -> None:
        self.spans.append(span)
        if number in self._seen:
            self.repeated.add(number)
        else:
            self._seen.add(number)
            self.numbers.append(number)


@cache
def _runs(least: int) -> re.Pattern[str]:
    """Runs that may hold a number: "+" and at least _MIN_DIGITS digits, or at least `least`
    digits (the fewest a national number has). No quantifier here nests another unbounded
    one, the characters between digits are never digits, and a run is only tried from its
    first digit, so matching is linear; shorter runs, most of a junk text, cost no Python."""
    joiner = "[" + re.escape(_JOINERS) + "]"
    gap = f"{joiner}{{0,{_MAX_GAP}}}"
    # the digit first, then the look behind it, lets the regex skip other text in C
    first = "".join(f"(?<!\\d{joiner}{{{n}}}\\d)" for n in range(_MAX_GAP + 1))
    return re.compile(rf"\+\(?\d(?:{gap}\d){{{_MIN_DIGITS - 1},}}"
                      rf"|\d{first}(?:{gap}\d){{{max(least, 1) - 1},}}")


class _Run:
    """The digit groups of text[start:end] and, for a window of them from group `first`, their
    running digit counts: `total[k]` digits before group first + k, and `index` its inverse."""

    def __init__(self, text: str, start: int, end: int, groups: list[str]) -> None:
        self.text = text
        self.start = start
        self.end = end
        self.groups = groups
        self.first = 0
        self.total: list[int] = []
        self.index: dict[int, int] = {}
        self.free = 0  # groups before this one are in a number already
        self._offsets: tuple[list[int], list[int]] | None = None

    def look(self, first: int, last: int) -> None:
        self.first = first
        self.total = list(accumulate(map(len, self.groups[first:last]), initial=0))
        self.index = dict(zip(self.total, range(first, first + len(self.total)), strict=True))

    def head(self) -> str:
        """The first digits of the run: enough to hold a country code."""
        return "".join(self.groups[:3])[:3]

    def span(self, first: int, after: int) -> tuple[int, int]:
        """Where groups[first:after] are in the text, with a "+" or "(" just before and, if
        the brackets ask for it, a ")" just after."""
        if self._offsets is None:  # the digits, and the other characters, before each group
            self._offsets = (
                list(accumulate(map(len, self.groups), initial=0)),
                list(accumulate(map(len, _GAPS.findall(self.text, self.start, self.end)),
                                initial=0)))
        text, (digits, gaps) = self.text, self._offsets
        start = self.start + digits[first] + gaps[first]
        end = self.start + digits[after] + gaps[after - 1]
        floor = max(start - 2, 0 if first == 0 else start - (gaps[first] - gaps[first - 1]))
        while start > floor and text[start - 1] in _LEADS:
            start -= 1
        if text.count("(", start, end) > text.count(")", start, end) \
                and text.startswith(")", end):
            end += 1
        return start, end


def _ascii(digits: str) -> str:
    """Digits of any script as ASCII digits, as phonenumbers reads them."""
    return digits if digits.isascii() else "".join(str(unicodedata.digit(c)) for c in digits)


class _Lengths(NamedTuple):
    """The digit counts a number can have, longest first, and those that hold the national
    prefix, which then follows its country code."""

    counts: tuple[int, ...]
    prefix: str
    prefixed: frozenset[int]
    code: int  # digits of the country code written before it, if any


def _lengths(metadata: list[PhoneMetadata], code: str) -> _Lengths:
    """The digit counts a number of these regions can have, after `code` (its country code,
    or nothing for a national number), with or without the national prefix. Prefixes that
    are patterns (carrier codes, local dialling) are not read: nobody texts a list so."""
    possible: set[int] = set()
    prefix = ""
    for region in metadata:
        if region.general_desc is not None:
            possible.update(region.general_desc.possible_length or ())
        prefix = prefix or region.national_prefix or ""
    raw = {len(code) + n for n in possible}
    prefixed = {len(code) + len(prefix) + n for n in possible} - raw if prefix else set()
    return _Lengths(tuple(sorted(raw | prefixed, reverse=True)), prefix, frozenset(prefixed),
                    len(code))


@cache
def _national_lengths(region: str) -> _Lengths:
    metadata = PhoneMetadata.metadata_for_region(region.upper())
    return _lengths([metadata] if metadata else [], "")


@lru_cache(maxsize=1024)
def _international_lengths(head: str) -> _Lengths:
    """The lengths of a number written "+" then `head`..., which opens with a country code."""
    for size in (1, 2, 3):
        code = int(head[:size]) if len(head) >= size else 0
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code, ())
        if regions:
            metadata = [PhoneMetadata.metadata_for_region_or_calling_code(code, region)
                        for region in regions]
            return _lengths([m for m in metadata if m is not None], head[:size])
    return _Lengths((), "", frozenset(), 0)


def _leftovers(text: str, spans: list[tuple[int, int]], end: int) -> list[str]:
    """Each part of text[:end] with its numbers taken out, its spaces collapsed and its filler
    dropped, if anything is left. Only passes of C run over the text, as it may hold 30,000
    parts."""
    pieces, start = [], 0
    for span_start, span_end in spans:
        pieces.append(text[start:span_start])
        start = span_end
    pieces.append(text[start:end])
    rest = _SPACES_RUN.sub(" ", _PUNCTUATION_WORD.sub("", " ".join(pieces)))
    if "and" in rest.lower():  # at the start of a part; then, the text reversed, at its end
        rest = _LEADING_AND.sub("", "\n" + rest)[1:]
        rest = _TRAILING_AND.sub("", "\n" + rest[::-1])[:0:-1]
    parts = list(filter(None, map(str.strip, _PARTS.findall(rest))))
    if max(map(len, parts), default=0) > _MAX_PART_LENGTH:
        parts = [part if len(part) <= _MAX_PART_LENGTH else part[: _MAX_PART_LENGTH - 1] + "…"
                 for part in parts]
    return parts


def mask(number: str) -> str:
    """`+12015550123` -> `+1201***0123`: enough to tell numbers apart in a log, no more."""
    if len(number) <= 8:
        return "***" + number[-2:]
    return f"{number[:5]}***{number[-4:]}"
