#!/usr/bin/env python3
"""Time synchronous Bucket.get / Bucket.upsert against memcached, and count
the calls into C that each operation makes.

    PYTHONPATH=python python3 tools/py_perf.py [-n 50000] [--connstr memcached://h:p]
    PYTHONPATH=/usr/lib/python3/dist-packages:python pypy3 tools/py_perf.py

Without --connstr it starts /usr/bin/memcached on a free loopback port.
Prints µs/op (best of --rounds) and FFI calls/op for get, get (miss, quiet),
upsert, and get_multi per key.
"""
import argparse
import os
import platform
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "python"))

from couchbase_ffi import bucket as _bucket  # noqa: E402
from couchbase_ffi.bucket import Bucket  # noqa: E402
from couchbase_ffi import FMT_BYTES  # noqa: E402


class CountingLib(object):
    """Stands in for ``lib`` in couchbase_ffi.bucket: counts function calls."""

    def __init__(self, lib):
        self._lib = lib
        self.calls = 0

    def __getattr__(self, name):
        attr = getattr(self._lib, name)
        if not callable(attr):
            return attr

        def counted(*args):
            self.calls += 1
            return attr(*args)
        return counted


def count_calls(fn, n=100):
    """Average number of calls into lib (and ffi.unpack/buffer copies) per fn()."""
    real_lib = _bucket.lib
    counting = CountingLib(real_lib)
    _bucket.lib = counting
    try:
        for _ in range(n):
            fn()
    finally:
        _bucket.lib = real_lib
    return counting.calls / float(n)


def timeit(fn, n, rounds):
    best = None
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = (time.perf_counter() - t0) / n
        best = dt if best is None or dt < best else best
    return best * 1e6


def start_memcached():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    cmd = ["/usr/bin/memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-t", "1"]
    if os.geteuid() == 0:
        cmd += ["-u", "nobody"]
    proc = subprocess.Popen(cmd)
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            return proc, "memcached://127.0.0.1:%d" % port
        except OSError:
            time.sleep(0.01)
    proc.kill()
    raise SystemExit("memcached did not start")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=50000, help="operations per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--connstr")
    ap.add_argument("--size", type=int, default=32, help="value size in bytes")
    args = ap.parse_args()
    proc = None
    connstr = args.connstr
    if connstr is None:
        proc, connstr = start_memcached()
    try:
        run(connstr, args)
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()


def run(connstr, args):
    b = Bucket(connstr)
    value = b"x" * args.size
    b.upsert("perf:k", value, format=FMT_BYTES)
    b.upsert("perf:json", {"a": 1, "b": [1, 2, 3]})
    keys = ["perf:m%d" % i for i in range(100)]
    b.upsert_multi(dict.fromkeys(keys, value), format=FMT_BYTES)
    cases = [
        ("get (bytes)", lambda: b.get("perf:k")),
        ("get (json)", lambda: b.get("perf:json")),
        ("get miss quiet", lambda: b.get("perf:none", quiet=True)),
        ("upsert (bytes)", lambda: b.upsert("perf:k", value, format=FMT_BYTES)),
        ("upsert (json)", lambda: b.upsert("perf:json", {"a": 1})),
    ]
    impl = "%s %s" % (platform.python_implementation(), platform.python_version())
    print("%s, value %d bytes, best of %d x %d ops" % (impl, args.size, args.rounds, args.n))
    print("%-18s %10s %14s" % ("operation", "us/op", "FFI calls/op"))
    for name, fn in cases:
        us = timeit(fn, args.n, args.rounds)
        print("%-18s %10.2f %14.1f" % (name, us, count_calls(fn)))
    multi = lambda: b.get_multi(keys)  # noqa: E731
    us = timeit(multi, max(args.n // 100, 10), args.rounds) / len(keys)
    print("%-18s %10.2f %14.2f" % ("get_multi per key", us, count_calls(multi, 10) / len(keys)))
    b.close()


if __name__ == "__main__":
    main()
