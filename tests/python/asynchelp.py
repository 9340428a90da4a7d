"""Run one test body on the sync Bucket, on Twisted and on asyncio.

A body is a generator function: it yields what an operation returned and gets
back the result (or has the exception thrown in).  With the sync Bucket what
it yields is already the result; with Twisted it is a Deferred (the body runs
under inlineCallbacks while the test pumps the global reactor with
``reactor.iterate``, so no reactor.run() and no pytest-twisted); with asyncio
a future (a coroutine awaits each one on a fresh event loop).
"""
import asyncio
import os
import signal
import time

FRONTENDS = ("twisted", "asyncio")


def bucket_class(frontend):
    if frontend == "twisted":
        from couchbase_ffi.twisted import Bucket
    elif frontend == "asyncio":
        from couchbase_ffi.asyncio import Bucket
    else:
        from couchbase_ffi.bucket import Bucket
    return Bucket


def run(frontend, body, timeout=30.0):
    """Run generator function ``body()`` to completion; its return value."""
    if frontend == "twisted":
        return _run_twisted(body, timeout)
    if frontend == "asyncio":
        return _run_asyncio(body, timeout)
    return _run_sync(body)


def _run_sync(body):
    gen = body()
    value = None
    while True:
        try:
            value = gen.send(value)
        except StopIteration as stop:
            return stop.value


def pump_twisted(until, timeout):
    """Iterate the global reactor until ``until()`` is true."""
    from twisted.internet import reactor
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError("the reactor did not get there in %.1f s" % timeout)
        reactor.iterate(0.002)


def _run_twisted(body, timeout):
    from twisted.internet import defer
    from twisted.python import failure
    d = defer.inlineCallbacks(body)()
    out = []
    d.addBoth(out.append)
    pump_twisted(lambda: out, timeout)
    if isinstance(out[0], failure.Failure):
        out[0].raiseException()
    return out[0]


def _run_asyncio(body, timeout):
    async def main():
        gen = body()
        value, exc = None, None
        while True:
            try:
                aw = gen.throw(exc) if exc is not None else gen.send(value)
            except StopIteration as stop:
                return stop.value
            value = exc = None
            try:
                value = await aw
            except Exception as e:   # thrown back into the body, as inlineCallbacks does
                exc = e
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(main(), timeout))
    finally:
        loop.close()


def sleep(frontend, seconds):
    """Something a body can yield to let the loop run for a while."""
    if frontend == "twisted":
        from twisted.internet import reactor, task
        return task.deferLater(reactor, seconds, lambda: None)
    if frontend == "asyncio":
        return asyncio.sleep(seconds)
    time.sleep(seconds)
    return None


def gather(frontend, futs):
    """One awaitable of the outcomes of ``futs``: [(True, value) | (False, exc)]."""
    if frontend == "twisted":
        from twisted.internet import defer
        return defer.DeferredList(list(futs), consumeErrors=True).addCallback(
            lambda rs: [(ok, v if ok else v.value) for ok, v in rs])

    async def g():
        rs = await asyncio.gather(*futs, return_exceptions=True)
        return [(not isinstance(r, BaseException), r) for r in rs]
    return asyncio.ensure_future(g())


def is_future(frontend, obj):
    if frontend == "twisted":
        from twisted.internet import defer
        return isinstance(obj, defer.Deferred)
    return asyncio.isfuture(obj)


def is_done(frontend, fut):
    return fut.called if frontend == "twisted" else fut.done()


def stop_process(pid, timeout=5.0):
    """SIGSTOP pid and wait until every one of its threads has stopped (the signal
    is delivered asynchronously: a thread on another core may still run a little)."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    while True:
        states = []
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                    states.append(f.read().rsplit(")", 1)[1].split()[0])
            except OSError:
                pass
        if states and all(s in "tT" for s in states):
            return
        if time.monotonic() > deadline:
            raise AssertionError("process %d did not stop: %s" % (pid, states))
        time.sleep(0.001)


def open_fds():
    return sorted(int(x) for x in os.listdir("/proc/self/fd"))


def loop_registrations(frontend):
    """(readers and writers, live timers) the loop holds now."""
    if frontend == "twisted":
        from twisted.internet import reactor
        fds = sorted(r.fileno() for r in reactor.getReaders() + reactor.getWriters())
        timers = [c for c in reactor.getDelayedCalls() if c.active()]
        return fds, timers
    # asyncio has no public listing: the selector map and the timer heap
    loop = asyncio.get_running_loop()
    fds = sorted(loop._selector.get_map())
    timers = [h for h in loop._scheduled if not h.cancelled()]
    return fds, timers


def track_buckets(monkeypatch):
    """Record the async Buckets made from now on; close_leftovers(made) closes
    those a failed test left open, so their sockets and timers do not leak into
    the next test's checks."""
    from couchbase_ffi._async import AsyncBucketBase
    made = []
    init = AsyncBucketBase.__init__

    def recording_init(self, *args, **kwargs):
        made.append(self)
        init(self, *args, **kwargs)
    monkeypatch.setattr(AsyncBucketBase, "__init__", recording_init)
    return made


def close_leftovers(made):
    for b in made:
        if not b.closed:
            b.close()


def connected(frontend, connstr, **kwargs):
    """``b = yield from connected(frontend, connstr, password=...)``: a Bucket of the
    front-end, connected (an asynchronous one after its connect())."""
    b = bucket_class(frontend)(connstr, **kwargs)
    if frontend != "sync":
        yield b.connect()
    return b


def outcome(op):
    """``r = yield from outcome(lambda: b.op(...))``: the result, or the CouchbaseError."""
    from couchbase_ffi import exceptions as E
    try:
        value = yield op()
    except E.CouchbaseError as e:
        return e
    return value
