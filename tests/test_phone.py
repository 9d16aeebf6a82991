"""Reading numbers out of free text."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from typing import Any

import phonenumbers
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from confcall.errors import BadNumbers
from confcall.phone import mask, normalise, read_numbers


@pytest.mark.parametrize(("text", "numbers", "rest"), [
    ("+12015550123", ["+12015550123"], []),
    ("(201) 555-0123, 201.555.0124\n2015550125", ["+12015550123", "+12015550124",
                                                  "+12015550125"], []),
    ("+12015550123 +12015550124 +12015550123", ["+12015550123", "+12015550124"], []),
    ("call +12015550123 and bob", ["+12015550123"], ["call and bob"]),
    ("+1 555 555 0100", [], ["+1 555 555 0100"]),
    ("+442079460123; 2015550123", ["+442079460123", "+12015550123"], []),
    ("", [], []),
    ("hello", [], ["hello"]),
])
def test_read_numbers(text: str, numbers: list[str], rest: list[str]) -> None:
    found = read_numbers(text)
    assert list(found.numbers) == numbers
    assert list(found.not_numbers) == rest


def test_region_decides_numbers_without_country_code() -> None:
    assert read_numbers("020 7946 0123", "GB").numbers == ("+442079460123",)


def test_normalise_and_its_errors() -> None:
    assert normalise("(201) 555-0100") == "+12015550100"
    with pytest.raises(BadNumbers, match="not a valid phone number"):
        normalise("+1 555 555 0100")
    with pytest.raises(BadNumbers, match="not a phone number"):
        normalise("bob")


def test_mask() -> None:
    assert mask("+12015550123") == "+1201***0123"
    assert "5550" not in mask("+12015550123")


@given(st.text(max_size=300))
def test_reading_arbitrary_text_never_raises(text: str) -> None:
    found = read_numbers(text)
    assert all(number.startswith("+") for number in found.numbers)
    assert len(set(found.numbers)) == len(found.numbers)


@given(st.text(max_size=60))
def test_normalise_raises_only_our_error(text: str) -> None:
    with contextlib.suppress(BadNumbers):
        assert normalise(text).startswith("+")


def test_reading_stops_past_the_limit() -> None:
    text = " ".join(f"+1201555{i:04d}" for i in range(500))
    assert len(read_numbers(text, limit=20).numbers) == 21


# Start texts as organizers write them: (text, the numbers read, what is quoted back as not a
# number). The line is +12015550100 and the organizer +12015550101: to the reader they are
# numbers like any other (the conference drops the line's own).
START_TEXTS: list[tuple[str, list[str], list[str]]] = [
    # one number, in every format the README names and a few more
    ("+12015550123", ["+12015550123"], []),
    ("(201) 555-0123", ["+12015550123"], []),
    ("201.555.0123", ["+12015550123"], []),
    ("201-555-0123", ["+12015550123"], []),
    ("2015550123", ["+12015550123"], []),
    ("12015550123", ["+12015550123"], []),
    ("1 201 555 0123", ["+12015550123"], []),
    ("1-201-555-0123", ["+12015550123"], []),
    ("1 (201) 555-0123", ["+12015550123"], []),
    ("+1 201 555 0123", ["+12015550123"], []),
    ("+1 (201) 555-0123", ["+12015550123"], []),
    ("201 - 555 - 0123", ["+12015550123"], []),
    ("201\u00a0555\u00a00123", ["+12015550123"], []),
    ("２０１５５５０１２３", ["+12015550123"], []),  # full-width digits, as some phones send
    ("+44 20 7946 0123", ["+442079460123"], []),
    ("+44 (0)20 7946 0123", ["+442079460123"], []),
    # the cases of the issue: numbers separated only by spaces
    ("(201) 555-0112 201.555.0113", ["+12015550112", "+12015550113"], []),
    ("201-555-0152 201-555-0153 (201) 555-0154",
     ["+12015550152", "+12015550153", "+12015550154"], []),
    ("201 555 0116 201 555 0117", ["+12015550116", "+12015550117"], []),
    ("1 201 555 0152 1 201 555 0153", ["+12015550152", "+12015550153"], []),
    ("+1 201 555 0123 +1 201 555 0124", ["+12015550123", "+12015550124"], []),
    ("2015550123 1 201 555 0124 +12015550125",
     ["+12015550123", "+12015550124", "+12015550125"], []),
    ("+44 20 7946 0123 201 555 0124", ["+442079460123", "+12015550124"], []),
    ("+33 1 23 45 67 89 1 201 555 0124", ["+33123456789", "+12015550124"], []),
    # every separator
    ("2015550123, 2015550124", ["+12015550123", "+12015550124"], []),
    ("2015550123;2015550124", ["+12015550123", "+12015550124"], []),
    ("2015550123\n2015550124\r\n2015550125", ["+12015550123", "+12015550124",
                                             "+12015550125"], []),
    ("2015550123\t2015550124", ["+12015550123", "+12015550124"], []),
    ("201-555-0123 and 201-555-0124", ["+12015550123", "+12015550124"], []),
    ("201-555-0123 & 201-555-0124", ["+12015550123", "+12015550124"], []),
    ("2015550123, 2015550124, and 2015550125", ["+12015550123", "+12015550124",
                                                "+12015550125"], []),
    ("+12015550123,+12015550124 ; +12015550125 AND +12015550126",
     ["+12015550123", "+12015550124", "+12015550125", "+12015550126"], []),
    ("(201) 555-0112 201.555.0113, +44 20 7946 0123 and 1 201 555 0152; 2015550153\n"
     "+1 201 555 0154", ["+12015550112", "+12015550113", "+442079460123", "+12015550152",
                         "+12015550153", "+12015550154"], []),
    # words around the numbers
    ("call +12015550123 and bob", ["+12015550123"], ["call and bob"]),
    ("Hi! Please add 201-555-0123 and 201-555-0124 thanks",
     ["+12015550123", "+12015550124"], ["Hi! Please add and thanks"]),
    ("Numbers:\n(201) 555-0123\n(201) 555-0124\nThanks!", ["+12015550123", "+12015550124"],
     ["Numbers:", "Thanks!"]),
    ("bob 2015550123, alice 2015550124", ["+12015550123", "+12015550124"], ["bob", "alice"]),
    ("2015550123 and bob", ["+12015550123"], ["bob"]),
    ("Call at 3pm: 2015550123.", ["+12015550123"], ["Call at 3pm:"]),
    ("Tel: 201/555-0123 x12", ["+12015550123"], ["Tel: x12"]),
    ("1. 201-555-0123\n2. 201-555-0124", ["+12015550123", "+12015550124"], ["2."]),
    # duplicates are numbers, read once
    ("2015550123 (201) 555-0123 +1 201 555 0123", ["+12015550123"], []),
    ("2015550123, 2015550124, 2015550123", ["+12015550123", "+12015550124"], []),
    # what looks like a number but is not a valid one is quoted back
    ("+1 555 555 0100", [], ["+1 555 555 0100"]),
    ("555-555-0100, 2015550123", ["+12015550123"], ["555-555-0100"]),
    ("2015550123 555-0199", ["+12015550123"], ["555-0199"]),
    ("201 555 01234", [], ["201 555 01234"]),
    # the line's own number and the organizer's are read like any other
    ("+12015550100 +12015550124", ["+12015550100", "+12015550124"], []),
    ("(201) 555-0101, 2015550124", ["+12015550101", "+12015550124"], []),
    # a variable-length number then a number on the same run: the longest reading wins, and
    # a comma settles it
    ("+49 30 123456 201 555 0123", ["+4930123456201555"], ["0123"]),
    ("+49 30 123456, 201 555 0123", ["+4930123456", "+12015550123"], []),
    # nothing, or only filler
    ("   \n  ", [], []),
    (", , ; and AND & -", [], []),
    ("x" * 100, [], ["x" * 59 + "…"]),
]


@pytest.mark.parametrize(("text", "numbers", "rest"), START_TEXTS)
def test_start_texts(text: str, numbers: list[str], rest: list[str]) -> None:
    found = read_numbers(text, "US", limit=100)
    assert (list(found.numbers), list(found.not_numbers)) == (numbers, rest)
    assert not found.truncated


def test_duplicates_are_named_once_in_the_order_first_seen() -> None:
    found = read_numbers("2015550124 2015550123 (201) 555-0123, 2015550124 2015550124")
    assert found.numbers == ("+12015550124", "+12015550123")
    assert found.duplicates == ("+12015550124", "+12015550123")
    assert found.not_numbers == ()
    assert read_numbers("2015550123 2015550124").duplicates == ()


FORMATS = [
    lambda n: n,  # +12015550123
    lambda n: f"({n[2:5]}) {n[5:8]}-{n[8:]}",
    lambda n: f"{n[2:5]}.{n[5:8]}.{n[8:]}",
    lambda n: f"{n[2:5]}-{n[5:8]}-{n[8:]}",
    lambda n: n[2:],
    lambda n: f"1 {n[2:5]} {n[5:8]} {n[8:]}",
    lambda n: f"+1 {n[2:5]} {n[5:8]} {n[8:]}",
    lambda n: f"1-{n[2:5]}-{n[5:8]}-{n[8:]}",
]
SEPARATORS = [" ", "  ", "\t", ",", ", ", " , ", ";", "; ", "\n", "\r\n", ",\n", " and ",
              " AND ", ", and ", " & "]


@st.composite
def written_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """A valid number in E.164 and as a person may write it."""
    if draw(st.booleans()):
        area = draw(st.sampled_from(["201", "212", "312", "415", "416", "617", "702", "917"]))
        number = f"+1{area}{draw(st.integers(200, 999))}{draw(st.integers(0, 9999)):04d}"
        written = draw(st.sampled_from(FORMATS))(number)
    else:  # numbers of countries whose numbers have one length, as a person writes them
        line = draw(st.integers(0, 9999))
        number, written = draw(st.sampled_from([
            (f"+44207946{line:04d}", f"+44 20 7946 {line:04d}"),
            (f"+3312345{line:04d}", f"+33 1 23 45 {line // 100:02d} {line % 100:02d}"),
            (f"+3491234{line:04d}", f"+34 912 34 {line:04d}"),
        ]))
    parsed = phonenumbers.parse(number)
    assume(phonenumbers.is_valid_number(parsed))  # decided by phonenumbers alone
    return number, written


@given(st.lists(written_numbers(), min_size=1, max_size=12), st.data())
def test_any_list_of_valid_numbers_reads_back(numbers: list[tuple[str, str]],
                                              data: st.DataObject) -> None:
    text = numbers[0][1]
    for _, written in numbers[1:]:
        text += data.draw(st.sampled_from(SEPARATORS)) + written
    expected = list(dict.fromkeys(number for number, _ in numbers))
    found = read_numbers(text, "US")
    assert list(found.numbers) == expected
    assert found.not_numbers == ()
    assert list(found.duplicates) == [n for n in expected
                                      if [m for m, _ in numbers].count(n) > 1]
    assert not found.truncated


def test_the_limit_counts_every_number_read_duplicates_included() -> None:
    assert not read_numbers("2015550123 " * 3, limit=3).truncated
    found = read_numbers("2015550123 " * 4, limit=3)
    assert found.truncated and found.numbers == ("+12015550123",)
    copies = read_numbers("+12015550123 " * 5000, limit=100)
    assert copies.truncated and copies.numbers == copies.duplicates == ("+12015550123",)


def test_the_limit_counts_what_looks_like_a_number_and_is_not() -> None:
    assert read_numbers("+1 555 555 0100, " * 101, limit=100).truncated
    assert not read_numbers("+1 555 555 0100, " * 50, limit=100).truncated
    # beside valid numbers too: "+1 555 555 0100" and "555 555 0100" are two tokens read
    pairs = " ".join(f"+1 555 555 0100 201555{i:04d}" for i in range(40))
    assert read_numbers(pairs, limit=100).truncated
    assert len(read_numbers(pairs, limit=120).numbers) == 40
    # a run with digits enough for a number, and no number's shape
    assert read_numbers("222222 222222\n" * 101, limit=100).truncated
    assert not read_numbers("222222 222222\n" * 100, limit=100).truncated


def test_a_number_written_costs_one_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    parses = count_parses(monkeypatch)
    found = read_numbers("2015550123 1 201 555 0124 +12015550125 +44 20 7946 0123 1 201 555"
                         " 0126, (201) 555-0127 201.555.0128")
    assert len(found.numbers) == 7 and parses() == 7


def test_long_runs_are_read_across_windows() -> None:
    # 3 groups a number, 600 groups: windows of groups start at every 512th
    text = " ".join(f"201 555 {i:04d}" for i in range(200))
    found = read_numbers(text)
    assert found.numbers == tuple(f"+1201555{i:04d}" for i in range(200))
    assert found.not_numbers == ()


def test_exactly_the_limit_is_not_truncated() -> None:
    text = " ".join(f"+1201555{i:04d}" for i in range(100))
    found = read_numbers(text, limit=100)
    assert len(found.numbers) == 100 and not found.truncated


HOSTILE = [
    ". " * 32000 + "x",
    "+12015550123 " * 5000,
    "1 " * 32000,
    "+1 555 555 0100 " * 4000,
    " ".join(f"+1201555{i % 10000:04d}" for i in range(5900)),
    "22222 222222 " * 5000,
    "1-2.3/4(5)6 7,8;9\n0\t1 and 2+3&4:5 " * 1800,
    " ".join(random.Random(0).choices("0123456789", k=32000)),
]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda text: repr(text[:12]))
def test_hostile_texts_cost_at_most_limit_plus_one_parses(
        text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    parses = count_parses(monkeypatch)
    found = read_numbers(text, limit=100)
    assert parses() <= 101
    assert len(found.numbers) <= 101


def count_parses(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Count the calls into phonenumbers' parser (the slow part of reading), still made."""
    calls = 0
    parse = phonenumbers.parse

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return parse(*args, **kwargs)

    monkeypatch.setattr(phonenumbers, "parse", counted)
    return lambda: calls
