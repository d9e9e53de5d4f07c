"""Deterministic attachment bytes, so a test can checksum a streamed download without storing it.

The stream is 64 KiB blocks of one fixed pseudo-random block, each stamped with its index in the
first eight bytes: a dropped, repeated or reordered block changes the checksum.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

BLOCK_SIZE = 64 * 1024
_SEED = 0x0A5_5114  # any fixed value; it only has to be the same in server and test
_BASE_BLOCK = random.Random(_SEED).randbytes(BLOCK_SIZE)  # noqa: S311 - test data, not a secret


def attachment_block(index: int) -> bytes:
    return index.to_bytes(8, "big") + _BASE_BLOCK[8:]


def attachment_chunks(size: int) -> Iterator[bytes]:
    """The `size` bytes of the attachment, in blocks of BLOCK_SIZE (the last one shorter)."""
    full, tail = divmod(size, BLOCK_SIZE)
    for index in range(full):
        yield attachment_block(index)
    if tail:
        yield attachment_block(full)[:tail]


def attachment_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for chunk in attachment_chunks(size):
        digest.update(chunk)
    return digest.hexdigest()
