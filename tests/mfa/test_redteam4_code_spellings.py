"""Red team, fourth pass: one-time code spellings review 3 did not list (`normalise_code`).

White space of any kind is the user's paste and goes (the code is then the same code, and its
single-use claim the same claim); every other character, digits of other scripts included, makes it
no code at all.
"""

from __future__ import annotations

import pytest

from gateway.mfa.decisions import normalise_code

SAME = [
    "123\u2007456",          # figure space
    "123\u202f456",          # narrow no-break space
    "\u3000123456\u3000",    # ideographic space
    "123\u2028456",          # line separator
    "123\x1c456",            # file separator (white space to Python's split)
    "123\x0b456\x0c",        # vertical tab, form feed
    "\u1680123456",          # ogham space mark
    "1 2 3 4 5 6",
    "\r\n123456\r\n",
    "123\u0085456",          # NEL
]
NOT_A_CODE = [
    "\u00b9\u00b2\u00b3456",                     # superscript digits
    "\u0967\u0968\u0969\u096a\u096b\u096c",      # Devanagari digits
    "\U0001d7cf\U0001d7d0\U0001d7d1456",          # mathematical bold digits
    "\u2460\u2461\u2462456",                     # circled digits
    "123\u00ad456",                              # soft hyphen (invisible, not white space)
    "123\u2060456",                              # word joiner
    "123\ufeff456",                              # zero-width no-break space
    "1\u0323" "23456",                           # a combining mark on a digit
    "123456\x00",                                # NUL
    "1234567",                                   # seven digits for a six-digit code
    "12345678",                                  # eight
    "12345",                                     # five
    "+123456",
    "-123456",
    "123456\u0301",
    "",
    "   ",
]


@pytest.mark.parametrize("typed", SAME)
def test_white_space_of_any_kind_is_the_same_code(typed: str) -> None:
    assert normalise_code(typed, 6) == "123456"


@pytest.mark.parametrize("typed", NOT_A_CODE)
def test_anything_else_is_no_code(typed: str) -> None:
    assert normalise_code(typed, 6) is None


@pytest.mark.parametrize(("typed", "length", "code"), [
    ("12345678", 8, "12345678"), ("1234 5678", 8, "12345678"), ("123456", 8, None), ("1234567", 7, "1234567"),
])
def test_the_configured_length_decides(typed: str, length: int, code: str | None) -> None:
    assert normalise_code(typed, length) == code
