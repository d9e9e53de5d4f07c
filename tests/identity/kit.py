"""Helpers for the first-factor tests: cheap argon2id hashes (the backend verifies whatever
parameters a hash carries; the defaults cost 64 MiB and tens of milliseconds each)."""

from __future__ import annotations

from argon2 import PasswordHasher, Type

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID)


def fast_hash(password: str) -> str:
    return FAST_HASHER.hash(password)
