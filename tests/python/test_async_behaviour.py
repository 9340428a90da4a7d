"""The async front-ends (Twisted and asyncio, each test run on both) under load and
failure: many operations in flight, a server killed or silent while operations are
pending, close() with operations pending, a dead port, one write per loop turn, one
harvest per readiness event, cancelled futures.  Loops run in-process (asynchelp)."""
import os
import signal
import socket
import threading
import time

import pytest

from conftest import Memcached, free_port
import asynchelp as H
from couchbase_ffi import _async, exceptions as E

pytest.importorskip("twisted")


@pytest.fixture(autouse=True)
def _no_leftovers(monkeypatch):
    made = H.track_buckets(monkeypatch)
    yield
    H.close_leftovers(made)
pytestmark = pytest.mark.parametrize("frontend", H.FRONTENDS)


@pytest.fixture
def server():
    m = Memcached().start()
    yield m
    if m.proc is not None:
        os.kill(m.proc.pid, signal.SIGCONT)
    m.stop()


def test_thousand_operations_in_flight_across_buckets(memcached, frontend):
    B = H.bucket_class(frontend)

    def body():
        buckets = [B(memcached.connstr) for _ in range(4)]
        yield H.gather(frontend, [b.connect() for b in buckets])
        futs = [buckets[i % 4].upsert("fl:%d" % i, {"i": i}) for i in range(1000)]
        # all scheduled before any completes: 250 waiting on each Bucket
        assert [len(b._host.pending) for b in buckets] == [250] * 4
        outs = yield H.gather(frontend, futs)
        assert all(ok and r.success and r.cas for ok, r in outs)

        futs = []
        for i in range(1000):     # mixed operations, all in flight at once
            b, k = buckets[i % 4], "fl:%d" % i
            futs.append((lambda: b.get(k),
                         lambda: b.counter("fl-ctr-%s:%d" % (frontend, i % 8), initial=0),
                         lambda: b.get_multi([k, "fl:missing"], quiet=True),
                         lambda: b.touch(k, ttl=300))[i % 4]())
        assert sum(len(b._host.pending) for b in buckets) == 1250  # get_multi: 2 each
        outs = yield H.gather(frontend, futs)
        assert all(ok for ok, _ in outs), [v for ok, v in outs if not ok][:3]
        counts = {}
        for i, (_, r) in enumerate(outs):
            if i % 4 == 0:
                assert r.value == {"i": i}
            elif i % 4 == 1:
                counts.setdefault(r.key, []).append(r.value)
            elif i % 4 == 2:
                assert r["fl:%d" % i].value == {"i": i} and not r["fl:missing"].success
            else:
                assert r.success
        for key, values in counts.items():   # every increment happened exactly once
            assert sorted(values) == list(range(len(values))), key
        assert sum(len(v) for v in counts.values()) == 250
        for b in buckets:
            assert not b._host.pending
            b.close()
    H.run(frontend, body)


def test_server_killed_while_operations_are_in_flight(server, frontend):
    B = H.bucket_class(frontend)
    fds0 = H.open_fds()

    def body():
        b = B(server.connstr + "?operation_timeout=5s")
        yield b.connect()
        yield b.upsert("kill:a", 1)
        H.stop_process(server.proc.pid)   # requests reach its socket, no answer
        futs = [b.get("kill:a") for _ in range(100)] + [b.upsert("kill:%d" % i, i)
                                                        for i in range(50)]
        multi = b.get_multi(["kill:m%d" % i for i in range(10)], quiet=True)
        yield H.sleep(frontend, 0.3)
        assert not any(H.is_done(frontend, f) for f in futs + [multi])
        assert len(b._host.pending) == 160          # written, waiting for replies
        t0 = time.monotonic()
        server.proc.kill()
        server.proc.wait()
        server.proc = None
        outs = yield H.gather(frontend, futs + [multi])
        elapsed = time.monotonic() - t0
        assert elapsed < 2.0       # from the lost connection, not the 5 s timeout
        for ok, e in outs:
            assert not ok and isinstance(e, E.CouchbaseNetworkError) and e.rc == 0x10, e
        mres = outs[-1][1].all_results
        assert sorted(mres) == sorted("kill:m%d" % i for i in range(10))
        assert all(r.rc == 0x10 for r in mres.values())
        assert not b._host.pending and not b._host.fds   # its socket is gone from the loop
        # the server comes back on the same port: the next operation reconnects
        server.proc = Memcached(port=server.port).start().proc
        r = yield b.upsert("kill:again", 2)
        assert r.success
        b.close()
    H.run(frontend, body)
    assert H.open_fds() == fds0


def test_silent_server_times_operations_out_within_their_timeout(server, frontend):
    B = H.bucket_class(frontend)

    def body():
        b = B(server.connstr + "?operation_timeout=500ms")
        yield b.connect()
        yield b.upsert("silent:a", 1)
        H.stop_process(server.proc.pid)
        try:
            t0 = time.monotonic()
            futs = [b.get("silent:a") for _ in range(20)] + \
                [b.upsert("silent:%d" % i, i) for i in range(20)] + \
                [b.get_multi(["silent:a", "silent:b"]), b.counter("silent:c", initial=1)]
            outs = yield H.gather(frontend, futs)
            elapsed = time.monotonic() - t0
            for ok, e in outs:
                assert not ok and isinstance(e, E.TimeoutError) and e.rc == 0x17, e
            assert 0.45 <= elapsed <= 1.0, elapsed
            assert not b._host.pending
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        r = yield b.get("silent:a")        # the server answers again: so does the Bucket
        assert r.value == 1
        b.close()
    H.run(frontend, body)


def test_close_fails_everything_pending_and_leaves_nothing_behind(server, frontend):
    B = H.bucket_class(frontend)

    def body():
        fds0 = H.open_fds()      # with the loop's own descriptors
        regs0, timers0 = H.loop_registrations(frontend)
        buckets = [B(server.connstr) for _ in range(3)]
        yield H.gather(frontend, [b.connect() for b in buckets])
        yield buckets[0].upsert("close:a", 1)
        regs1, _ = H.loop_registrations(frontend)
        assert len(regs1) == len(regs0) + 3 and H.open_fds() != fds0
        H.stop_process(server.proc.pid)
        sent = [b.get("close:a") for b in buckets for _ in range(10)]
        yield H.sleep(frontend, 0.1)       # these are on the wire now
        unsent = [f for b in buckets for f in (b.get_multi(["close:a", "close:b"]),
                                                b.stats(), b.upsert("close:x", 1))]
        assert not any(H.is_done(frontend, f) for f in sent + unsent)
        for b in buckets:
            b.close()
        assert all(H.is_done(frontend, f) for f in sent + unsent)
        outs = yield H.gather(frontend, sent + unsent)
        assert all(not ok and isinstance(e, E.ObjectDestroyedError) for ok, e in outs)
        regs2, timers2 = H.loop_registrations(frontend)
        assert regs2 == regs0
        assert len(timers2) == len(timers0)
        assert H.open_fds() == fds0
    H.run(frontend, body)


def test_close_from_a_callback_while_results_are_delivered(memcached, frontend):
    B = H.bucket_class(frontend)
    fds0 = H.open_fds()

    def body():
        b = B(memcached.connstr)
        yield b.connect()
        futs = [b.upsert("cbclose:%d" % i, i) for i in range(200)]
        seen = []

        def close_now(res):
            seen.append(res)
            b.close()
            return res
        if frontend == "twisted":
            futs[0].addCallback(close_now)
        else:
            futs[0].add_done_callback(lambda f: close_now(f.result()))
        outs = yield H.gather(frontend, futs)
        assert outs[0][0] and seen and b.closed
        for ok, v in outs[1:]:
            assert (ok and v.success) or isinstance(v, E.ObjectDestroyedError)
    H.run(frontend, body)
    assert H.open_fds() == fds0


def test_connect_to_a_dead_port(frontend):
    B = H.bucket_class(frontend)
    fds0 = H.open_fds()

    def body():
        b = B("memcached://127.0.0.1:%d" % free_port())
        d = b.connect()                     # the error comes through the future
        t0 = time.monotonic()
        try:
            yield d
        except E.ConnectError as e:
            assert e.rc == 0x18 and "127.0.0.1" in str(e)
        else:
            raise AssertionError("connect() to a dead port succeeded")
        # refused at once, not after the 2 s connect timeout (with Twisted the refusal is a
        # hang-up without a read event: the reactor drops the descriptor and the Bucket
        # must tell the core itself)
        assert time.monotonic() - t0 < 1.0
        try:
            yield b.get("dead:a")
        except E.CouchbaseNetworkError:
            pass
        else:
            raise AssertionError("get on a dead port succeeded")
        b.close()
    H.run(frontend, body)
    assert H.open_fds() == fds0


class _CountingLib(object):
    def __init__(self, lib):
        self._lib = lib
        self.calls = []

    def __getattr__(self, name):
        attr = getattr(self._lib, name)
        if not callable(attr):
            return attr

        def counted(*args):
            ret = attr(*args)
            self.calls.append((name, args[1:] if name == "cbffi_io_event" else (), ret))
            return ret
        return counted

    def names(self, name):
        return [c for c in self.calls if c[0] == name]


class _Proxy(object):
    """A TCP proxy to memcached that records the chunks the client sends."""

    def __init__(self, upstream_port):
        self.up = upstream_port
        self.chunks = []
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(4)
        self.port = self.ls.getsockname()[1]
        self.socks = [self.ls]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        try:
            c, _ = self.ls.accept()
        except OSError:
            return
        u = socket.create_connection(("127.0.0.1", self.up))
        self.socks += [c, u]
        threading.Thread(target=self._pipe, args=(c, u, True), daemon=True).start()
        threading.Thread(target=self._pipe, args=(u, c, False), daemon=True).start()

    def _pipe(self, src, dst, record):
        try:
            while True:
                data = src.recv(1 << 20)
                if not data:
                    break
                if record:
                    self.chunks.append(data)
                dst.sendall(data)
        except OSError:
            pass

    def close(self):
        for s in self.socks:
            s.close()


def _requests_in(chunk):
    n, off = 0, 0
    while off + 24 <= len(chunk):
        assert chunk[off] == 0x80, "not a binary-protocol request"
        off += 24 + int.from_bytes(chunk[off + 8:off + 12], "big")
        n += 1
    assert off == len(chunk)
    return n


def test_a_loop_turn_of_mixed_operations_goes_out_in_one_write(memcached, frontend, monkeypatch):
    B = H.bucket_class(frontend)
    proxy = _Proxy(memcached.port)
    counting = _CountingLib(_async.lib)

    def body():
        b = B("memcached://127.0.0.1:%d" % proxy.port)
        yield b.connect()
        yield b.upsert("turn:a", 1)
        monkeypatch.setattr(_async, "lib", counting)
        del proxy.chunks[:]
        futs = [b.upsert("turn:b", "x"), b.get("turn:a"), b.counter("turn:n", initial=1),
                b.touch("turn:a", ttl=100), b.remove("turn:b"), b.append("turn:a", b"1"),
                b.get("turn:none", quiet=True),
                b.get_multi(["turn:a", "turn:m1", "turn:m2", "turn:m3", "turn:m4"], quiet=True)]
        outs = yield H.gather(frontend, futs)
        assert all(ok for ok, _ in outs)
        flushes = counting.names("cbffi_io_flush")
        assert len(flushes) == 1
        assert all(args[1] == _async._READ for _, args, _ in counting.names("cbffi_io_event"))
        assert len(proxy.chunks) == 1 and _requests_in(proxy.chunks[0]) == 12
        monkeypatch.setattr(_async, "lib", counting._lib)
        b.close()
    try:
        H.run(frontend, body)
    finally:
        proxy.close()


def test_a_readiness_event_delivers_a_whole_batch(memcached, frontend, monkeypatch):
    B = H.bucket_class(frontend)
    counting = _CountingLib(_async.lib)

    def body():
        b = B(memcached.connstr)
        yield b.connect()
        monkeypatch.setattr(_async, "lib", counting)
        outs = yield H.gather(frontend, [b.upsert("batch:%d" % i, i) for i in range(500)])
        monkeypatch.setattr(_async, "lib", counting._lib)
        assert all(ok for ok, _ in outs)
        harvests = [ret for _, _, ret in counting.names("cbffi_harvest") if ret]
        assert sum(harvests) == 500
        assert len(harvests) <= 10 and len(counting.names("cbffi_io_event")) <= 20
        b.close()
    H.run(frontend, body)


def test_a_cancelled_future_drops_its_result_quietly(memcached, frontend):
    B = H.bucket_class(frontend)

    def body():
        b = B(memcached.connstr)
        yield b.connect()
        keep = b.upsert("cancel:a", 1)
        gone = b.get("cancel:a")
        gone.cancel()
        if frontend == "twisted":
            from twisted.internet.defer import CancelledError
            gone.addErrback(lambda f: f.trap(CancelledError))
        later = b.get_multi(["cancel:a"])
        outs = yield H.gather(frontend, [keep, later])
        assert outs[0][0] and outs[1][0] and outs[1][1]["cancel:a"].value == 1
        assert H.is_done(frontend, gone)
        yield H.sleep(frontend, 0.05)
        assert not b._host.pending
        r = yield b.get("cancel:a")
        assert r.value == 1
        b.close()
    H.run(frontend, body)


def test_two_servers_one_killed_with_operations_in_flight(frontend):
    """Two memcached servers behind one Bucket (ketama): each server's keys go out on its
    own socket; killing one fails only what was in flight to it."""
    from couchbase_ffi._lowlevel import lib
    B = H.bucket_class(frontend)
    a, b_ = Memcached().start(), Memcached().start()
    try:
        def body():
            b = B("memcached://127.0.0.1:%d,127.0.0.1:%d?operation_timeout=5s" % (a.port, b_.port))
            keys = ["two:%d" % i for i in range(400)]
            owner = {k: lib.cbffi_client_server_for_key(b._c, k.encode(), len(k)) for k in keys}
            assert sorted(set(owner.values())) == [0, 1]
            m = yield b.upsert_multi({k: i for i, k in enumerate(keys)})
            assert m.all_ok and len(b._host.fds) == 2
            H.stop_process(a.proc.pid)
            futs = [b.get(k) for k in keys]
            yield H.sleep(frontend, 0.2)
            a.proc.kill()
            a.proc.wait()
            a.proc = None
            outs = yield H.gather(frontend, futs)
            for k, (ok, v) in zip(keys, outs):
                if owner[k] == 0:
                    assert not ok and isinstance(v, E.CouchbaseNetworkError), (k, v)
                else:
                    assert ok and v.value == keys.index(k), (k, v)
            assert len(b._host.fds) == 1 and not b._host.pending
            b.close()
        H.run(frontend, body)
    finally:
        for m in (a, b_):
            if m.proc is not None:
                os.kill(m.proc.pid, signal.SIGCONT)
            m.stop()
