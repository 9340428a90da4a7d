#!/usr/bin/env python3
"""Run N operations of one kind (the benchmark's: 13-byte keys walked over 1000,
128-byte values, multi ops in batches of 100) against memcached on PORT, for
tools/instr_per_op.sh.  CPython and PyPy.

    ops_loop.py get|set|get_multi|set_multi N PORT [cbffi|pylibmc]
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "python"))
op, n, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
client = sys.argv[4] if len(sys.argv) > 4 else "cbffi"
VALUE = b"v" * 128
keys = ["k00%010d" % i for i in range(1000)]
if client == "cbffi":
    from couchbase_ffi.bucket import Bucket
    from couchbase_ffi import FMT_BYTES
    b = Bucket("memcached://127.0.0.1:%d" % port)
    ops = {"get": lambda k: b.get(k), "set": lambda k: b.upsert(k, VALUE, format=FMT_BYTES),
           "get_multi": lambda ks: b.get_multi(ks),
           "set_multi": lambda ks: b.upsert_multi(dict.fromkeys(ks, VALUE), format=FMT_BYTES)}
else:
    import pylibmc
    mc = pylibmc.Client(["127.0.0.1:%d" % port])
    ops = {"get": mc.get, "set": lambda k: mc.set(k, VALUE), "get_multi": mc.get_multi,
           "set_multi": lambda ks: mc.set_multi(dict.fromkeys(ks, VALUE))}
for k in keys:
    ops["set"](k)
fn = ops[op]
if op.endswith("multi"):
    batches = [keys[i:i + 100] for i in range(0, 1000, 100)]
    for i in range(n):
        fn(batches[i % 10])
else:
    for i in range(n):
        fn(keys[i % 1000])
