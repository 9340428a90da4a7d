"""The Twisted front-end: Deferreds over the host-driven client (in a subprocess,
because a reactor runs once per process)."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("twisted")


def test_twisted_front_end(memcached):
    from conftest import free_port
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([sys.executable, os.path.join(here, "twisted_check.py"),
                          memcached.connstr, "memcached://127.0.0.1:%d" % free_port()],
                         capture_output=True, text=True, timeout=60, env=dict(os.environ))
    lines = out.stdout.splitlines()
    assert "FAILED" not in out.stdout, out.stdout
    assert lines == ["roundtrip True", "notfound typed", "quiet True", "counter True",
                     "inflight True", "multi True", "connect error typed",
                     "closed fails pending"], (out.stdout, out.stderr)
