"""The Twisted front-end under a real reactor.run() (in a subprocess, because a
reactor runs once per process); every check twisted_check.py makes is asserted
here.  The in-process tests (test_async_api, test_async_behaviour) pump the
reactor with reactor.iterate instead."""
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("twisted")

EXPECTED = ["the reactor asked for", "connect fires with the Bucket", "roundtrip",
            "errback is NotFoundError", "1000 in flight", "multi errback carries all_results",
            "dead port: ConnectError", "close fails what is pending", "no fd left after close",
            "no reader left after close", "no timer left after close"]


@pytest.mark.parametrize("which", ["default", "poll", "select"])
def test_twisted_front_end_under_reactor_run(memcached, which):
    """The default reactor (epoll on Linux), and the poll and select reactors."""
    from conftest import free_port
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([sys.executable, os.path.join(here, "twisted_check.py"),
                          memcached.connstr, "memcached://127.0.0.1:%d" % free_port(), which],
                         capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    checks = json.loads(out.stdout.strip().splitlines()[-1])
    assert sorted(checks) == sorted(EXPECTED), (checks, out.stderr)
    for name in EXPECTED:
        ok, detail = checks[name]
        assert ok, "%s: %s" % (name, detail)
    # the reactor stopped with a Bucket still open and an operation pending: quietly
    assert "Traceback" not in out.stderr and "Unhandled" not in out.stderr, out.stderr
