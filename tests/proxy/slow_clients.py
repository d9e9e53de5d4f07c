"""Slow clients on raw sockets, for the shutdown drain tests: uploads that trickle their body, downloads
that the upstream trickles, uploads that stall. Each reads its whole answer, until the gateway closes.

    upload = await SlowUpload.start(port, size=48 * 1024, chunk=4096, interval=0.2)
    ...                        # SIGTERM the gateway
    answer = await upload.finish(timeout=30)
"""

from __future__ import annotations

import asyncio
import json
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from tests.proxy.support import PUBLIC_HOST, pattern_chunk

# ActiveSync: no MFA, allowed by default; the recording upstream reads the body and answers its length.
UPLOAD_TARGET = "/Microsoft-Server-ActiveSync?Cmd=SendMail&DeviceId=DRAIN1&DeviceType=Test"


def dechunk(body: bytes) -> bytes | None:
    """The body of a chunked message, or None when it did not end with the last chunk."""
    out = bytearray()
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += body[:size]
        body = body[size + 2:]
    return None


@dataclass
class Answer:
    """What came back on the connection, up to the gateway closing it."""

    raw: bytes
    closed_at: float  # loop time

    @property
    def head(self) -> str:
        return self.raw.partition(b"\r\n\r\n")[0].decode("latin-1")

    @property
    def status(self) -> int | None:
        parts = self.head.split(" ", 2)
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None

    @property
    def body(self) -> bytes:
        return self.raw.partition(b"\r\n\r\n")[2]

    def header(self, name: str) -> str | None:
        for line in self.head.split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None

    def json(self) -> Any:
        body = self.body
        if (self.header("Transfer-Encoding") or "").lower() == "chunked":
            body = dechunk(body) or b""
        return json.loads(body)


async def _read_to_close(reader: asyncio.StreamReader, timeout: float) -> Answer:
    received = bytearray()
    with suppress(ConnectionError):
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                break
            received += chunk
    return Answer(bytes(received), asyncio.get_running_loop().time())


@dataclass
class SlowUpload:
    """POST a body of `size` bytes, `chunk` bytes every `interval` seconds; `stall_after` stops sending."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    size: int
    sending: asyncio.Task[None] | None = None
    sent: int = 0
    first_sent: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    async def start(cls, port: int, *, size: int, chunk: int, interval: float, stall_after: int | None = None,
                    target: str = UPLOAD_TARGET) -> SlowUpload:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"POST {target} HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\nContent-Type: application/octet-stream\r\n"
                     f"Content-Length: {size}\r\n\r\n".encode())
        upload = cls(reader, writer, size)
        limit = size if stall_after is None else stall_after
        upload.sending = asyncio.create_task(upload._send(chunk, interval, limit))
        return upload

    async def _send(self, chunk: int, interval: float, limit: int) -> None:
        with suppress(ConnectionError):
            while self.sent < limit:
                piece = min(chunk, limit - self.sent)
                self.writer.write(b"u" * piece)
                await self.writer.drain()
                self.sent += piece
                self.first_sent.set()
                if self.sent < limit:
                    await asyncio.sleep(interval)
        self.first_sent.set()

    async def finish(self, timeout: float) -> Answer:
        try:
            return await _read_to_close(self.reader, timeout)
        finally:
            if self.sending is not None:
                self.sending.cancel()
                with suppress(asyncio.CancelledError):
                    await self.sending
            self.writer.close()


@dataclass
class SlowDownload:
    """GET the recording upstream's `drip`: `chunks` chunks of 64 KiB, `delay` seconds apart."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    chunks: int
    first: bytes = b""

    @classmethod
    async def start(cls, port: int, *, chunks: int, delay: float) -> SlowDownload:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET /owa/auth/drip?n={chunks}&delay={delay} HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\n\r\n".encode())
        await writer.drain()
        download = cls(reader, writer, chunks)
        download.first = await asyncio.wait_for(reader.read(65536), 20)
        return download

    async def finish(self, timeout: float) -> Answer:
        try:
            answer = await _read_to_close(self.reader, timeout)
        finally:
            self.writer.close()
        return Answer(self.first + answer.raw, answer.closed_at)

    def complete(self, answer: Answer) -> bool:
        body = dechunk(answer.body)
        return body is not None and body == b"".join(pattern_chunk(index) for index in range(self.chunks))

