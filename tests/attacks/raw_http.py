"""Raw HTTP/1.1 over a socket: send exactly these bytes, read every response that comes back.

Attack vectors need request targets and header spellings that real clients normalise away
(`/owa/%2e%2e/`, absolute-form, backslashes, underscores, pipelined requests), so they are written
as bytes. Responses are parsed just enough to split them (status, headers, body by Content-Length,
chunked, or until close) and to check what they carry.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from tests.proxy.support import read_until_quiet

READ_TIMEOUT = 10.0
NO_BODY_STATUSES = frozenset({204, 304})


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    interim: list[int] = field(default_factory=list)  # 1xx statuses seen before this response

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    def all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def line(self) -> bytes | None:
        end = self.data.find(b"\r\n", self.at)
        if end < 0:
            return None
        line = self.data[self.at:end]
        self.at = end + 2
        return line

    def take(self, count: int) -> bytes:
        chunk = self.data[self.at:self.at + count]
        self.at += len(chunk)
        return chunk

    def rest(self) -> bytes:
        chunk = self.data[self.at:]
        self.at = len(self.data)
        return chunk

    @property
    def done(self) -> bool:
        return self.at >= len(self.data)


def parse_responses(data: bytes, methods: list[str]) -> list[RawResponse]:
    """Split a connection's bytes into responses; `methods` are the requests' methods, in order."""
    reader = _Reader(data)
    responses: list[RawResponse] = []
    interim: list[int] = []
    while not reader.done:
        status_line = reader.line()
        if status_line is None or not status_line.startswith(b"HTTP/"):
            break
        parts = status_line.decode("latin-1").split(" ", 2)
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers: list[tuple[str, str]] = []
        while (line := reader.line()) not in (None, b""):
            assert line is not None
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name.strip(), value.strip()))
        if 100 <= status < 200:
            interim.append(status)
            continue
        method = methods[len(responses)] if len(responses) < len(methods) else "GET"
        lowered = {name.lower(): value for name, value in headers}
        if method == "HEAD" or status in NO_BODY_STATUSES:
            body = b""
        elif "chunked" in lowered.get("transfer-encoding", "").lower():
            body = _dechunk(reader)
        elif "content-length" in lowered:
            body = reader.take(int(lowered["content-length"]))
        else:
            body = reader.rest()
        responses.append(RawResponse(status, reason, headers, body, interim))
        interim = []
    return responses


def _dechunk(reader: _Reader) -> bytes:
    body = bytearray()
    while (size_line := reader.line()) is not None:
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while reader.line() not in (None, b""):
                pass  # trailers
            break
        body.extend(reader.take(size))
        reader.line()
    return bytes(body)


async def exchange(port: int, payload: bytes, methods: list[str], *, host: str = "127.0.0.1") -> list[RawResponse]:
    """Send `payload` on a fresh connection and read until the server closes it (the last request
    says `Connection: close`), or until it stays quiet for READ_TIMEOUT seconds."""
    reader, writer = await asyncio.open_connection(host, port)
    received = b""
    try:
        writer.write(payload)
        await writer.drain()
        # The server may refuse and reset: whatever arrived before is still checked.
        received = await read_until_quiet(reader, READ_TIMEOUT, reset_ends=True)
    except ConnectionResetError:
        pass  # reset while the payload was still being written: nothing arrived
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
    return parse_responses(received, methods)


def request(method: str, target: str, *, host: str, headers: list[tuple[str, str]] | None = None,
            body: bytes = b"", close: bool = True) -> bytes:
    """One request's bytes, exactly as given (no normalisation of the target or header names)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers or []:
        lines.append(f"{name}: {value}")
    if body and not any(name.lower() in ("content-length", "transfer-encoding") for name, _ in headers or []):
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
