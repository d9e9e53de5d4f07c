"""RequestKeyReader: the session cookie and the cadata binding of a request, remembered per exact
Cookie header. A remembered answer must always be the answer the pure readers give."""

from __future__ import annotations

import hashlib

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from gateway.mfa.request_keys import RequestKeyReader, RequestKeys
from gateway.mfa.session_cookie import SessionCookie
from gateway.policy.cookies import RequestCookies
from gateway.policy.owa_responses import request_binding

COOKIE = SessionCookie(secure=False)
CADATA = "Q" * 1300


def request(*cookie_headers: str) -> web.Request:
    return make_mocked_request("GET", "/owa/", headers=CIMultiDict([("Cookie", value) for value in cookie_headers]))


def expected(*cookie_headers: str) -> RequestKeys:
    cookies = RequestCookies(cookie_headers)
    return RequestKeys(COOKIE.read(cookies), request_binding(cookies))


def sha(cadata: str, key: str) -> str:
    return hashlib.sha256(f"{cadata}\x00{key}".encode()).hexdigest()


@pytest.mark.parametrize("headers", [
    (),
    ("msgw=T",),
    (f"msgw=T; cadata={CADATA}; cadataKey=K",),
    (f"cadata={CADATA}; cadataKey=K; cadata=other",),  # two cadata values: no binding
    ("msgw=T; msgw=U",),  # two session cookies: none
    ("msgw=T", f"cadata={CADATA}; cadataKey=K"),  # split over two headers: read, not remembered
    ("\xa0msgw=T; cadata=A; cadataKey=K",),
])
def test_reads_what_the_pure_readers_read_first_time_and_after(headers: tuple[str, ...]) -> None:
    reader = RequestKeyReader(COOKIE)
    first = reader.read(request(*headers))
    again = reader.read(request(*headers))
    assert first == again == expected(*headers)
    assert len(reader) == (1 if len(headers) == 1 else 0)


def test_a_header_that_differs_in_one_byte_gets_its_own_answer() -> None:
    reader = RequestKeyReader(COOKIE)
    one = reader.read(request(f"msgw=T; cadata={CADATA}; cadataKey=K"))
    assert one == RequestKeys("T", sha(CADATA, "K"))
    assert reader.read(request(f"msgw=T; cadata={CADATA}; cadataKey=L")) == RequestKeys("T", sha(CADATA, "L"))
    assert reader.read(request(f"msgw=U; cadata={CADATA}; cadataKey=K")) == RequestKeys("U", sha(CADATA, "K"))
    assert reader.read(request(f"msgw=T; cadata={CADATA}x; cadataKey=K")).binding == sha(CADATA + "x", "K")
    assert reader.read(request(f"msgw=T; cadata={CADATA}; cadataKey=K")) == one


def test_memory_is_bounded_and_answers_stay_right_past_the_bound() -> None:
    reader = RequestKeyReader(COOKIE, max_entries=8)
    headers = [f"msgw=T{index}; cadata={CADATA}; cadataKey=K{index}" for index in range(30)]
    for _ in range(2):
        for header in headers:
            assert reader.read(request(header)) == RequestKeys(header[5:].split(";")[0],
                                                               sha(CADATA, header.rsplit("=", 1)[1]))
            assert len(reader) <= 8
