"""A strict DER reader (ITU-T X.690 §10), just enough for SPNEGO tokens (pure, sans-IO).

Why strict: the gateway reads who a Windows-auth token names, and Exchange reads the same bytes
with its own decoder. Anything two decoders may read differently (indefinite or non-minimal
lengths, high tag numbers, bytes after the element, a length that runs past its parent) is
refused here rather than guessed at, so what the gateway accepts has exactly one reading.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DerError", "Element", "read_elements", "read_single"]

# Lengths above this many octets cannot describe anything an HTTP header carries.
_MAX_LENGTH_OCTETS = 3


class DerError(ValueError):
    """The bytes are not strict DER (the message says why, never the bytes)."""


@dataclass(frozen=True, slots=True)
class Element:
    """One TLV: the identifier octet (class, constructed bit and a tag number below 31) and the content."""

    tag: int
    content: bytes


def _read(data: bytes, position: int) -> tuple[Element, int]:
    if position >= len(data):
        raise DerError("missing element")
    tag = data[position]
    if tag & 0x1F == 0x1F:
        raise DerError("high tag number form")
    position += 1
    if position >= len(data):
        raise DerError("missing length")
    first = data[position]
    position += 1
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise DerError("indefinite length")
    else:
        count = first & 0x7F
        if count > _MAX_LENGTH_OCTETS or position + count > len(data):
            raise DerError("length too long")
        octets = data[position:position + count]
        position += count
        if octets[0] == 0:
            raise DerError("non-minimal length")
        length = int.from_bytes(octets, "big")
        if length < 0x80:
            raise DerError("non-minimal length")
    end = position + length
    if end > len(data):
        raise DerError("length past the end")
    return Element(tag, data[position:end]), end


def read_elements(data: bytes) -> list[Element]:
    """The elements that make up `data` exactly (the content of a constructed element)."""
    elements: list[Element] = []
    position = 0
    while position < len(data):
        element, position = _read(data, position)
        elements.append(element)
    return elements


def read_single(data: bytes, tag: int | None = None) -> Element:
    """The one element `data` holds, with nothing after it (and with `tag`, when given)."""
    element, end = _read(data, 0)
    if end != len(data):
        raise DerError("bytes after the element")
    if tag is not None and element.tag != tag:
        raise DerError("unexpected tag")
    return element
