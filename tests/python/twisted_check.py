"""Driven by test_twisted.py in a fresh interpreter, because a reactor runs once per
process: the Twisted front-end under a real ``reactor.run()``.  argv: memcached
connection string, a dead port's connection string, and the reactor: "default",
"poll" or "select".  Prints one JSON object: check name -> [passed, detail];
exits when the reactor stops.
"""
import json
import os
import sys
import traceback

CONNSTR, DEAD, WHICH = sys.argv[1], sys.argv[2], sys.argv[3]
if WHICH == "poll":
    from twisted.internet import pollreactor
    pollreactor.install()
elif WHICH == "select":
    from twisted.internet import selectreactor
    selectreactor.install()

from twisted.internet import defer, reactor, task  # noqa: E402

from couchbase_ffi.twisted import Bucket  # noqa: E402
from couchbase_ffi import exceptions as E  # noqa: E402

checks = {}


def check(name, ok, detail=""):
    checks[name] = [bool(ok), str(detail)]


def fds():
    return len(os.listdir("/proc/self/fd"))


@defer.inlineCallbacks
def main():
    expected = {"default": "EPollReactor", "poll": "PollReactor", "select": "SelectReactor"}
    check("the reactor asked for", type(reactor).__name__ == expected[WHICH],
          type(reactor).__name__)
    fd0, readers0 = fds(), len(reactor.getReaders())
    b = Bucket(CONNSTR)
    got = yield b.connect()
    check("connect fires with the Bucket", got is b)
    w = yield b.upsert("tx:k", {"v": 1})
    g = yield b.get("tx:k")
    check("roundtrip", g.value == {"v": 1} and g.cas == w.cas, g)
    try:
        yield b.get("tx:missing")
        check("errback is NotFoundError", False, "no error")
    except E.NotFoundError as e:
        check("errback is NotFoundError", e.key == "tx:missing" and e.rc == 0x0D, e)
    rs = yield defer.gatherResults([b.upsert("tx:%d" % i, i) for i in range(1000)])
    check("1000 in flight", len(rs) == 1000 and all(r.success for r in rs))
    try:
        yield b.get_multi(["tx:1", "tx:nope"])
        check("multi errback carries all_results", False, "no error")
    except E.NotFoundError as e:
        check("multi errback carries all_results",
              e.all_results["tx:1"].value == 1 and not e.all_results["tx:nope"].success, e)
    d = Bucket(DEAD)
    try:
        yield d.connect()
        check("dead port: ConnectError", False, "connected")
    except E.ConnectError as e:
        check("dead port: ConnectError", e.rc == 0x18, e)
    d.close()
    yield task.deferLater(reactor, 0.05, lambda: None)
    pending = [b.get("tx:k") for _ in range(5)]
    b.close()
    outs = yield defer.DeferredList(pending, consumeErrors=True)
    check("close fails what is pending", all(not ok and f.check(E.ObjectDestroyedError)
                                             for ok, f in outs), outs)
    check("no fd left after close", fds() == fd0, (fds(), fd0))
    check("no reader left after close", len(reactor.getReaders()) == readers0,
          reactor.getReaders())
    check("no timer left after close",
          not [c for c in reactor.getDelayedCalls() if c.active() and
               getattr(c.func, "__module__", "").startswith("couchbase_ffi")],
          reactor.getDelayedCalls())
    # A Bucket still open with operations pending when the reactor stops.
    left = Bucket(CONNSTR)
    yield left.connect()
    left.get("tx:k")
    reactor.callLater(0, reactor.stop)


def failed(f):
    check("no exception", False, f.getTraceback())
    reactor.stop()


def run():
    main().addErrback(failed)


reactor.callWhenRunning(run)
reactor.callLater(30, reactor.stop)
try:
    reactor.run()
except Exception:
    check("reactor.run returns", False, traceback.format_exc())
print(json.dumps(checks))
