"""The benchmark's wrk output parser."""

from __future__ import annotations

import pytest

from bench.wrk import parse_wrk

OUTPUT = """Running 5s test @ http://127.0.0.1:1/owa/auth/bench.txt
  2 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   447.29us  823.33us  12.15ms   90.68%
    Req/Sec    23.26k     5.26k   33.36k    67.50%
  Latency Distribution
     50%  128.00us
     75%  399.00us
     90%    1.17ms
     99%    1.04s
  92613 requests in 5.00s, 111.64MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:  18522.60
Transfer/sec:     55.76MB
"""


def test_parse_wrk() -> None:
    result = parse_wrk(OUTPUT)
    assert result.requests == 92613
    assert result.requests_per_second == pytest.approx(18522.60)
    assert result.p50_ms == pytest.approx(0.128)
    assert result.p99_ms == pytest.approx(1040.0)
    assert result.errors == 12


def test_parse_wrk_rejects_other_output() -> None:
    with pytest.raises(ValueError, match="not wrk"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")
