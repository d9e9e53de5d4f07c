"""The grammar of every value the gateway sends to Monosign, checked before anything is sent.

Why: some of these values come from whoever is signing in (the typed user name; the browser's
description; the address). An input shaped to make Monosign answer oddly (a wildcard, a quote, a
megabyte, a control character) must never reach it: an odd answer is at best a refusal, at worst
a way to open the circuit breaker (and with `GATEWAY_FAIL_MODE=open`, the door). So each value
has a small grammar; anything outside it raises `InputRefused` (the value is not in the message)
and no call is made. Values Monosign gave us (user id, push request id) are checked too: they go
back into paths and bodies. Pure, no I/O; table-tested in tests/monosign/test_inputs.py.
"""

from __future__ import annotations

import ipaddress
import re

from gateway.monosign.errors import InputRefused

MAX_USER_NAME_LENGTH = 256
MAX_ID_LENGTH = 128
MAX_CONTEXT_LENGTH = 64

# User names as Exchange takes them (`alice`, `CORP\alice`, `corp/alice`, `alice@corp.example`),
# with the punctuation real account names use (`o'brien`, `first.last+tag`, `svc$`): ASCII letters,
# digits and `. _ - @ \ / ' + $ # ! & ^ ~ { }` and inner spaces. Not the characters of a query or
# a filter (`* ( ) % ? " < > ; : , = | [ ] `` `), no controls, nothing outside ASCII (Exchange
# reads those as other accounts anyway: gateway.policy.users.check_exchange_reading).
_USER_NAME = re.compile(r"[A-Za-z0-9._@\\/'+$#!&^~{}-](?:[A-Za-z0-9._@\\/'+$#!&^~{} -]*[A-Za-z0-9._@\\/'+$#!&^~{}-])?")
# Identifiers Monosign hands out (user Id, push RequestId): GUIDs (braced or not) and the like.
_IDENTIFIER = re.compile(r"[A-Za-z0-9{][A-Za-z0-9._:{}-]*")
_CODE = re.compile(r"[0-9]{6,8}")
NUMBER_CHALLENGE = re.compile(r"[0-9]{2}")
# The names of gateway.policy.user_agent's tables and the push's application name.
_CONTEXT_TEXT = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9 .()-]*[A-Za-z0-9)])?")


def _check(field: str, value: object, pattern: re.Pattern[str], max_length: int) -> str:
    if not isinstance(value, str):
        raise InputRefused(field, "not text")
    if not value:
        raise InputRefused(field, "empty")
    if len(value) > max_length:
        raise InputRefused(field, f"longer than {max_length} characters")
    if not value.isascii() or pattern.fullmatch(value) is None:
        raise InputRefused(field, "characters outside its grammar")
    return value


def user_name(value: object) -> str:
    return _check("user name", value, _USER_NAME, MAX_USER_NAME_LENGTH)


def identifier(field: str, value: object) -> str:
    return _check(field, value, _IDENTIFIER, MAX_ID_LENGTH)


def one_time_code(value: object) -> str:
    return _check("one-time code", value, _CODE, 8)


def number_challenge(value: object) -> str:
    return _check("number challenge", value, NUMBER_CHALLENGE, 2)


def context_text(field: str, value: object) -> str:
    return _check(field, value, _CONTEXT_TEXT, MAX_CONTEXT_LENGTH)


def client_address(value: object) -> str:
    """An IPv4 or IPv6 address, in its canonical spelling (no zone, no brackets)."""
    # 45: the longest IPv6 text (IPv4-mapped); "%": a zone id is nothing Monosign needs to see.
    if not isinstance(value, str) or not value or len(value) > 45 or "%" in value:
        raise InputRefused("client address", "not an address")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise InputRefused("client address", "not an address") from None
