"""The `file` first factor: users and argon2id hashes in a YAML file (format: users_file.py).

For small sites and the demo. The file is re-read when it changes: at most once a second, a sign-in
compares the file's inode, size and modification time with the last ones read (no watcher thread);
an invalid new content is logged and the previous one kept, so a half-saved edit never locks
everyone out. A missing or invalid file at start-up is an error (`FileFirstFactor.load`).

Timing: an unknown name is verified against a dummy hash made with the file's own argon2
parameters (the most common ones), so it costs what a wrong password costs. A name that fails
validation is refused at once: that depends only on what was typed, so it reveals nothing.
argon2 runs in a thread (it would stall the event loop for tens of milliseconds), at most
`max_concurrent` at a time, because each verification holds the hash's memory cost (64 MiB by default).
"""

from __future__ import annotations

import asyncio
import collections
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import VerificationError

from gateway.identity.base import Failure, FailureKind, Identity, Outcome
from gateway.identity.usernames import InvalidUserName, validate_username
from gateway.identity.users_file import UsersFile, UsersFileError, new_password_hasher, parse_users_file
from gateway.observability.logging import get_logger

__all__ = ["FileFirstFactor"]

RELOAD_CHECK_INTERVAL = 1.0
_log = get_logger("gateway.identity")


@dataclass(frozen=True, slots=True)
class _FileVersion:
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, stat: os.stat_result) -> _FileVersion:
        return cls(stat.st_ino, stat.st_size, stat.st_mtime_ns)


@dataclass(frozen=True, slots=True)
class _Loaded:
    users: UsersFile
    dummy_hash: str


class FileFirstFactor:
    """`authenticate` against the users file at `path`. Build it with `await FileFirstFactor.load(...)`."""

    def __init__(self, path: Path, loaded: _Loaded, version: _FileVersion, *, allow_non_ascii: bool,
                 max_concurrent: int, clock: Callable[[], float]) -> None:
        self.path = path
        self._loaded = loaded
        self._version = version
        self._allow_non_ascii = allow_non_ascii
        self._verifications = asyncio.Semaphore(max_concurrent)
        self._clock = clock
        self._last_check = clock()
        self._reload_lock = asyncio.Lock()
        self._dummy_hashes: dict[tuple[int, int, int, int, int], str] = {}
        self._last_problem: tuple[_FileVersion | None, str] | None = None

    @classmethod
    async def load(cls, path: Path, *, allow_non_ascii: bool = False, max_concurrent: int = 2,
                   clock: Callable[[], float] = time.monotonic) -> FileFirstFactor:
        """Read the file; raise UsersFileError (or OSError) when it cannot be used."""
        dummies: dict[tuple[int, int, int, int, int], str] = {}
        version, loaded = await asyncio.to_thread(_read, path, allow_non_ascii, dummies)
        return cls._made(path, version, loaded, dummies, allow_non_ascii, max_concurrent, clock)

    @classmethod
    def open(cls, path: Path, *, allow_non_ascii: bool = False, max_concurrent: int = 2,
             clock: Callable[[], float] = time.monotonic) -> FileFirstFactor:
        """`load`, in the calling thread: where a configuration is being checked before it is
        served (start-up, a reload), which must not go on while the file is read."""
        dummies: dict[tuple[int, int, int, int, int], str] = {}
        version, loaded = _read(path, allow_non_ascii, dummies)
        return cls._made(path, version, loaded, dummies, allow_non_ascii, max_concurrent, clock)

    @classmethod
    def _made(cls, path: Path, version: _FileVersion, loaded: _Loaded,
              dummies: dict[tuple[int, int, int, int, int], str], allow_non_ascii: bool, max_concurrent: int,
              clock: Callable[[], float]) -> FileFirstFactor:
        backend = cls(path, loaded, version, allow_non_ascii=allow_non_ascii,
                      max_concurrent=max_concurrent, clock=clock)
        backend._dummy_hashes = dummies
        return backend

    @property
    def users(self) -> UsersFile:
        return self._loaded.users

    async def authenticate(self, username: str, password: str) -> Outcome:
        await self._reload_if_changed()
        try:
            name = validate_username(username, allow_non_ascii=self._allow_non_ascii)
        except InvalidUserName as exc:
            return Failure(FailureKind.BAD_CREDENTIALS, f"username refused: {exc}")
        loaded = self._loaded
        record = loaded.users.find(name.typed)
        matched = await self._verify(record.password_hash if record else loaded.dummy_hash, password)
        if record is None:
            return Failure(FailureKind.BAD_CREDENTIALS, "unknown user")
        if not matched:
            return Failure(FailureKind.BAD_CREDENTIALS, "wrong password")
        if record.disabled:
            return Failure(FailureKind.ACCOUNT_DISABLED, "account disabled in the users file")
        return Identity(username=record.name, display_name=record.display_name, email=record.email,
                        groups=record.groups, directory_id=record.name)

    async def aclose(self) -> None:
        return None

    async def _verify(self, password_hash: str, password: str) -> bool:
        async with self._verifications:
            return await asyncio.to_thread(_verify, password_hash, password)

    async def _reload_if_changed(self) -> None:
        now = self._clock()
        if now - self._last_check < RELOAD_CHECK_INTERVAL or self._reload_lock.locked():
            return
        async with self._reload_lock:
            self._last_check = now
            try:
                version = _FileVersion.of(self.path.stat())
            except OSError as exc:
                self._note_unusable(None, f"cannot read it ({exc.strerror or exc})")
                return
            if version == self._version:
                return
            try:
                version, loaded = await asyncio.to_thread(_read, self.path, self._allow_non_ascii,
                                                          self._dummy_hashes)
            except (OSError, UsersFileError) as exc:
                self._note_unusable(version, _describe(exc))
                return
            self._version, self._loaded, self._last_problem = version, loaded, None
            _log.info("users_file_reloaded", path=str(self.path), users=len(loaded.users.users))

    def _note_unusable(self, version: _FileVersion | None, reason: str) -> None:
        """Keep the previous users; log once per new version of the file or new reason (not once a second)."""
        if version is not None:
            self._version = version
        if self._last_problem == (version, reason):
            return
        self._last_problem = (version, reason)
        _log.warning("users_file_invalid", path=str(self.path), reason=reason,
                     action="kept the users read before")


def _describe(exc: OSError | UsersFileError) -> str:
    if isinstance(exc, OSError):
        return f"cannot read it ({exc.strerror or exc})"
    return str(exc)


def _read(path: Path, allow_non_ascii: bool,
          dummies: dict[tuple[int, int, int, int, int], str]) -> tuple[_FileVersion, _Loaded]:
    with path.open("rb") as handle:
        version = _FileVersion.of(os.fstat(handle.fileno()))
        raw = handle.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsersFileError("not UTF-8 text") from None
    users = parse_users_file(text, allow_non_ascii=allow_non_ascii)
    return version, _Loaded(users, _dummy_hash(users, dummies))


def _dummy_hash(users: UsersFile, cache: dict[tuple[int, int, int, int, int], str]) -> str:
    """A hash of a random secret, with the parameters most of the file's hashes use (cached)."""
    counts = collections.Counter(
        (p.time_cost, p.memory_cost, p.parallelism, p.hash_len, p.salt_len)
        for p in (extract_parameters(record.password_hash) for record in users.users.values())
    )
    default = new_password_hasher()
    key = counts.most_common(1)[0][0] if counts else (
        default.time_cost, default.memory_cost, default.parallelism, default.hash_len, default.salt_len)
    if key not in cache:
        time_cost, memory_cost, parallelism, hash_len, salt_len = key
        hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism,
                                hash_len=hash_len, salt_len=salt_len, type=Type.ID)
        cache[key] = hasher.hash(secrets.token_urlsafe(32))
    return cache[key]


def _verify(password_hash: str, password: str) -> bool:
    try:
        return PasswordHasher().verify(password_hash, password)
    except VerificationError:  # VerifyMismatchError included
        return False
