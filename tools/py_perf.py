#!/usr/bin/env python3
"""Time synchronous Bucket.get / Bucket.upsert against memcached, and count
the calls into C that each operation makes.

    PYTHONPATH=python python3 tools/py_perf.py [-n 50000] [--connstr memcached://h:p]
    PYTHONPATH=/usr/lib/python3/dist-packages:python pypy3 tools/py_perf.py

Without --connstr it starts /usr/bin/memcached on a free loopback port.
Prints, for get, get (miss, quiet), upsert and get_multi (per key): µs/op
(best of --rounds), calls into C per op, and µs/op with the C calls stubbed
out (the Python side alone); then the cost of copying a value out.
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


def _aliases(real_lib):
    """{module global name: lib function name} for the lib functions bucket.py binds
    once at import (_get_now = lib.cbffi_get_now ...)."""
    out = {}
    for alias, fn in list(vars(_bucket).items()):
        name = getattr(fn, "__name__", "")
        if name.startswith("cbffi_") and fn is getattr(real_lib, name, None):
            out[alias] = name
    return out


def _swap(stand_in, real_lib):
    """Put stand_in in place of lib (and of the bound aliases); returns an undo()."""
    saved = {a: getattr(_bucket, a) for a in _aliases(real_lib)}
    _bucket.lib = stand_in
    for alias, name in _aliases(real_lib).items():
        setattr(_bucket, alias, getattr(stand_in, name))

    def undo():
        _bucket.lib = real_lib
        for alias, fn in saved.items():
            setattr(_bucket, alias, fn)
    return undo


def count_calls(fn, n=100):
    """Average number of calls into lib (and ffi.unpack/buffer copies) per fn()."""
    real_lib = _bucket.lib
    counting = CountingLib(real_lib)
    undo = _swap(counting, real_lib)
    try:
        for _ in range(n):
            fn()
    finally:
        undo()
    return counting.calls / float(n)


class StubLib(object):
    """Stands in for ``lib``: scheduling and waiting return at once, leaving the
    last real result in the harvest array, so timing measures only the Python
    side of an operation (argument checks, encoding, result building)."""

    def __init__(self, lib):
        self._lib = lib

    def __getattr__(self, name):
        return getattr(self._lib, name)

    @staticmethod
    def cbffi_get(*args):
        return 0

    cbffi_store = cbffi_get

    @staticmethod
    def cbffi_get_wait(*args):
        return args[-1][0].rc  # the primed result, as if just harvested

    cbffi_store_wait = cbffi_get_now = cbffi_set_now = cbffi_get_wait

    @staticmethod
    def cbffi_wait(client, res, n):
        return 1


def python_only(fn, prime, n, rounds):
    """µs per fn() with the C calls stubbed out (prime() fills the result array)."""
    prime()
    real_lib = _bucket.lib
    undo = _swap(StubLib(real_lib), real_lib)
    try:
        return timeit(fn, n, rounds)
    finally:
        undo()


def copy_costs(b, n=200000):
    """ns to copy a harvested value out: ffi.unpack vs ffi.buffer()[:]."""
    ffi = _bucket.ffi
    b.get("perf:k")
    r = b._r0
    out = {}
    for name, fn in (("ffi.unpack", lambda: ffi.unpack(r.value, r.nvalue)),
                     ("ffi.buffer[:]", lambda: ffi.buffer(r.value, r.nvalue)[:]),
                     ("(loop+call only)", lambda: None)):
        out[name] = timeit(fn, n, 3) * 1000
    return out


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
    print("%-18s %10s %14s %16s" % ("operation", "us/op", "FFI calls/op", "Python-only us"))
    prime = {"get miss quiet": lambda: b.get("perf:none", quiet=True)}
    for name, fn in cases:
        us = timeit(fn, args.n, args.rounds)
        py = python_only(fn, prime.get(name, fn), args.n * 10, args.rounds)
        print("%-18s %10.2f %14.1f %16.2f" % (name, us, count_calls(fn), py))
    multi = lambda: b.get_multi(keys)  # noqa: E731
    us = timeit(multi, max(args.n // 100, 10), args.rounds) / len(keys)
    print("%-18s %10.2f %14.2f" % ("get_multi per key", us, count_calls(multi, 10) / len(keys)))
    print("copying a %d-byte value out of the harvest array (ns):" % args.size)
    for name, ns in copy_costs(b).items():
        print("  %-18s %8.1f" % (name, ns))
    b.close()


if __name__ == "__main__":
    main()
