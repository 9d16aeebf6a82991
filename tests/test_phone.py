"""Reading numbers out of free text."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
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
