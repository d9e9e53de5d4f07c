"""How Exchange reads a typed user name: through the server's ANSI code page, with best fit.

FbaModule builds `Authorization: Basic base64(Encoding.Default(username + ":" + password))`
(exchange-owa-protocol §1.4), and Windows converts characters that the code page lacks to a
"best fit" instead of failing: fullwidth `ａ` is `a`, dotless `ı` is `i`, `ş` is `s` on a Western
(1252) server. So the account Exchange signs in is the best-fit reading of what was typed, which
need not be the typed string. The simulator models this for code page 1252 (Western European, the
usual one) well enough to exercise the gateway's identity rules; it is not Windows' full table.
"""

from __future__ import annotations

import unicodedata

DEFAULT_CODE_PAGE = "cp1252"
# Letters with no decomposition that Windows' best-fit tables still map to a base letter.
_BEST_FIT_EXTRA = {"ı": "i", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ħ": "h", "Ħ": "H", "ŧ": "t", "Ŧ": "T"}


def _fits(text: str, codec: str) -> bool:
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        return False
    return bool(text)


def _base_letters(char: str) -> str:
    return "".join(part for part in unicodedata.normalize("NFKD", char) if not unicodedata.combining(part))


def ansi_reading(text: str, codec: str = DEFAULT_CODE_PAGE) -> str:
    """`text` after the round trip through the ANSI code page: kept where the code page has the
    character, else its compatibility form, its base letter, a table entry, or `?`."""
    out: list[str] = []
    for char in text:
        if _fits(char, codec):
            out.append(char)
            continue
        for candidate in (unicodedata.normalize("NFKC", char), _base_letters(char), _BEST_FIT_EXTRA.get(char, "")):
            if _fits(candidate, codec):
                out.append(candidate)
                break
        else:
            out.append("?")
    return "".join(out)
