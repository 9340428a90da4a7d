"""Driven by test_twisted.py in a fresh interpreter (the reactor cannot restart).
Runs the Twisted front-end against memcached at argv[1] and prints one line per check."""
import sys

from twisted.internet import defer, reactor

from couchbase_ffi.twisted import Bucket
from couchbase_ffi import exceptions as E

CONNSTR = sys.argv[1]
DEAD = sys.argv[2]


@defer.inlineCallbacks
def main():
    b = Bucket(CONNSTR)
    yield b.connect()
    w = yield b.upsert("tx:k", {"v": 1})
    g = yield b.get("tx:k")
    print("roundtrip", g.value == {"v": 1} and g.cas == w.cas)
    try:
        yield b.get("tx:missing")
    except E.NotFoundError:
        print("notfound typed")
    q = yield b.get("tx:missing", quiet=True)
    print("quiet", not q.success)
    c = yield b.counter("tx:ctr", initial=3)
    print("counter", c.value == 3)
    ds = [b.upsert("tx:%d" % i, i) for i in range(1000)]
    rs = yield defer.gatherResults(ds)
    print("inflight", len(rs) == 1000 and all(r.success for r in rs))
    m = yield b.get_multi(["tx:1", "tx:2", "tx:nope"], quiet=True)
    print("multi", m["tx:2"].value == 2 and not m.all_ok)
    d = Bucket(DEAD)
    try:
        yield d.connect()
    except E.ConnectError:
        print("connect error typed")
    d.close()
    pending = b.get("tx:k")
    b.close()
    try:
        yield pending
    except E.ObjectDestroyedError:
        print("closed fails pending")


def run():
    def done(_):
        reactor.stop()

    def err(f):
        print("FAILED", f.getTraceback())
        reactor.stop()
    main().addCallbacks(done, err)


reactor.callWhenRunning(run)
reactor.callLater(20, reactor.stop)
reactor.run()
