"""Red team, fourth pass: more spellings of alice's Exchange cookies hidden next to a passed session
of one's own (bob), against a lenient reader between the gateway and Exchange.

Review 3 closed the class at the root (only RFC 6265 cookie-pairs are read and forwarded, rebuilt
into one header); these are the spellings it did not list: RFC 2965's `$Version` and `,`
separators, quotes around `;`, empty and `$` names, raw Latin-1 and NEL bytes, header folding,
other control bytes, a `Cookie2` or request `Set-Cookie` header, a duplicate gateway session
cookie, and a header near the size limit. None may give the attacker alice's mailbox; bob's own
session keeps working wherever the request is not refused outright.
"""

from __future__ import annotations

from gateway.sim.owa.wire import parse_cookie_header
from tests.attacks.raw_http import RawResponse, exchange
from tests.attacks.test_redteam2_cookies import minted_alice_cookies
from tests.attacks.test_review3_cookies import Spelling, get_mailbox, signed_in_bob
from tests.flow.conftest import HOST, FlowEnv, flow_environment, owa_config


def _joined(prefix: bytes, separator: bytes, suffix: bytes = b"") -> Spelling:
    return lambda hidden, own: [prefix + separator.join(pair.encode() for pair in hidden) + suffix
                                + b"; " + own.encode()]


NEW_SPELLINGS: dict[str, Spelling] = {
    "$Version, comma": _joined(b"$Version=1, ", b", "),
    "$Version; comma": lambda hidden, own: [b'$Version="1"; PBack=0,' + ",".join(hidden).encode()
                                            + b"; " + own.encode()],
    "empty name": _joined(b"=x ", b" "),
    "dollar name": _joined(b"$Path=/ ", b" "),
    "raw latin-1 nbsp": _joined(b"PBack=0\xa0", b"\xa0"),
    "raw NEL": _joined(b"PBack=0\x85", b"\x85"),
    "utf-8 NEL": _joined(b"PBack=0\xc2\x85", b"\xc2\x85"),
    "ideographic space": _joined(b"PBack=0\xe3\x80\x80", b"\xe3\x80\x80"),
    "file separator": _joined(b"PBack=0\x1c", b"\x1c"),
    "unit separator": _joined(b"PBack=0\x1f", b"\x1f"),
    "backslash": _joined(b"PBack=0\\", b"\\"),
    "double quote": _joined(b'PBack=0"', b'"'),
    "folded line": lambda hidden, own: [b"PBack=0\r\n " + b"\r\n ".join(pair.encode() for pair in hidden)
                                        + b"; " + own.encode()],
    "NUL": _joined(b"PBack=0\x00", b"\x00"),
    "long padding": lambda hidden, own: [b"PBack=" + b"0" * 6000 + b" " + " ".join(hidden).encode()
                                         + b"; " + own.encode()],
    # last: it ends bob's session (ENDS_THE_SESSION)
    "quoted semicolons": lambda hidden, own: [b'PBack="0;' + ";".join(hidden).encode() + b'"; ' + own.encode()],
}


async def test_the_lenient_reader_is_fooled_by_most_of_them_when_nothing_is_in_between() -> None:
    """Without the gateway, the simulator's lenient reader finds alice's pairs: the test below can fail."""
    async with flow_environment(owa=owa_config(cookie_reader="lenient")) as env:
        alice = await minted_alice_cookies(env.owa.base_url)
        hidden = [f"{name}={value}" for name, value in alice.items()]
        fooled = []
        for label, spelling in NEW_SPELLINGS.items():
            lines = [line.decode("latin-1") for line in spelling(hidden, "PBack=0")]
            read = parse_cookie_header(lines, lenient=True)
            if {name: read.get(name) for name in alice} == alice:
                fooled.append(label)
        assert len(fooled) >= 8, fooled


# Quotes do not protect a `;` in RFC 6265: alice's pairs there are real pairs to every reader, next
# to bob's; two different cadata end bob's gateway session (binding_mismatch) rather than pick one.
ENDS_THE_SESSION = {"quoted semicolons"}


async def test_new_spellings_never_reach_a_lenient_reader() -> None:
    async with flow_environment(owa=owa_config(cookie_reader="lenient")) as env:
        alice = await minted_alice_cookies(env.owa.base_url)
        hidden = [f"{name}={value}" for name, value in alice.items()]
        own = await signed_in_bob(env)
        problems, forwarded = [], 0
        for label, spelling in NEW_SPELLINGS.items():
            answer = await get_mailbox(env, spelling(hidden, own))
            if "Alice Archer" in answer.text:
                problems.append(f"{label}: alice's mailbox")
            elif answer.status == 400:
                continue  # refused by the request parser (folding, NUL, control bytes): nothing forwarded
            elif label in ENDS_THE_SESSION:
                if answer.status not in (302, 440):
                    problems.append(f"{label}: {answer.status}, not the end of the session")
            elif answer.status != 200 or "Bob Baker" not in answer.text:
                problems.append(f"{label}: the attacker's own session stopped working ({answer.status})")
            forwarded += 1
        assert problems == []
        assert forwarded >= 10


async def test_other_headers_carry_no_cookies_to_exchange() -> None:
    """`Cookie2` and a request `Set-Cookie` are no cookies to ASP.NET; alice's pairs there open nothing."""
    async with flow_environment(owa=owa_config(cookie_reader="lenient")) as env:
        own = await signed_in_bob(env)
        alice = "; ".join(f"{name}={value}" for name, value in (await minted_alice_cookies(env.owa.base_url)).items())
        for header in ("Cookie2", "Set-Cookie", "X-Cookie", "Cookies"):
            payload_lines = [own.encode()]
            answer = await get_mailbox_with(env, payload_lines, [(header, alice)])
            assert "Alice Archer" not in answer.text, header
            assert "Bob Baker" in answer.text, header


async def test_a_second_gateway_session_cookie_opens_nothing() -> None:
    """Bob's session cookie twice with different values (one of them alice's cadata's owner's, or
    junk): which one wins is not guessed."""
    async with flow_environment() as env:
        own = await signed_in_bob(env)
        session = next(part for part in own.split("; ") if part.startswith("msgw="))
        for extra in ("msgw=forged", "msgw=" + session.split("=", 1)[1] + "x", "MSGW=forged"):
            answer = await get_mailbox(env, [f"{own}; {extra}".encode()])
            if extra.startswith("MSGW"):
                assert "Bob Baker" in answer.text  # another name (stripped, never read): bob's own session
            else:
                assert answer.status in (302, 440), extra
                assert "Bob Baker" not in answer.text, extra


async def get_mailbox_with(env: FlowEnv, cookie_lines: list[bytes], headers: list[tuple[str, str]]) -> RawResponse:
    payload = f"GET /owa/ HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n".encode()
    payload += b"".join(b"Cookie: " + line + b"\r\n" for line in cookie_lines)
    payload += b"".join(f"{name}: {value}\r\n".encode() for name, value in headers) + b"\r\n"
    answers = await exchange(env.port, payload, ["GET"])
    assert answers, "no answer"
    return answers[0]
