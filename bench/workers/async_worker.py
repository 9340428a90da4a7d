"""Twisted / asyncio benchmark worker (the seed's txbench method).

C connections x T chains: each chain keeps one upsert in flight and issues
the next from its completion.  The clock starts after connecting and warm-up;
only operations completed while it runs count, and it stops when the chains
stop issuing.  Prints {"ops", "wall", "cpu", "user", "sys"} (cpu = user + sys
of this process over the measured period).

Clients: cbffi-twisted and cbffi-asyncio (this package), twisted-memcache
(twisted.protocols.memcache, text protocol), and twisted-minimal: the least
a pure-Python Twisted client can do per operation (a Deferred, one packed
binary SET written to the transport, replies split by their headers), a
floor for what the reactor and Deferreds cost around any client.
"""
import argparse
import collections
import json
import os
import struct
import time

VALUE = b"v" * 128
_SET_HDR = struct.Struct(">BBHBBHIIQ")
_BODYLEN = struct.Struct(">I")
_EXTRAS = b"\0" * 8


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--client", required=True,
                   choices=["cbffi-twisted", "twisted-memcache", "twisted-minimal",
                            "cbffi-asyncio"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--conns", type=int, default=1)
    p.add_argument("--chains", type=int, default=1)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--warmup", type=float, default=1.0)
    return p.parse_args()


class Counter(object):
    def __init__(self, args):
        self.args = args
        self.n = 0
        self.measuring = False
        self.stop_at = None

    def start(self):
        self.n = 0
        self.measuring = True
        self.t0 = os.times()
        self.w0 = time.time()
        self.stop_at = self.w0 + self.args.duration

    def result(self):
        t = os.times()
        user, sys_ = t.user - self.t0.user, t.system - self.t0.system
        return {"ops": self.n, "wall": min(time.time(), self.stop_at) - self.w0,
                "cpu": user + sys_, "user": user, "sys": sys_}


def minimal_protocol():
    from twisted.internet import defer, protocol

    class MinimalMemcache(protocol.Protocol):
        """Binary SET with a Deferred per request; replies matched in order."""

        def connectionMade(self):
            self.buf = b""
            self.waiting = collections.deque()

        def set(self, key, value):
            d = defer.Deferred()
            self.transport.write(_SET_HDR.pack(0x80, 0x01, len(key), 8, 0, 0,
                                               8 + len(key) + len(value), 0, 0)
                                 + _EXTRAS + key + value)
            self.waiting.append(d)
            return d

        def dataReceived(self, data):
            buf = self.buf + data if self.buf else data
            off, n = 0, len(buf)
            while n - off >= 24:
                end = off + 24 + _BODYLEN.unpack_from(buf, off + 8)[0]
                if end > n:
                    break
                self.waiting.popleft().callback(buf[off + 7])   # status, low byte
                off = end
            self.buf = buf[off:] if off < n else b""
    return MinimalMemcache


def run_twisted(args):
    from twisted.internet import defer, reactor, protocol
    counter = Counter(args)
    out = {}

    @defer.inlineCallbacks
    def make_clients():
        clients = []
        for _ in range(args.conns):
            if args.client == "cbffi-twisted":
                from couchbase_ffi.twisted import Bucket
                from couchbase_ffi import FMT_BYTES
                b = Bucket("memcached://127.0.0.1:%d" % args.port)
                yield b.connect()
                clients.append(lambda k, b=b: b.upsert(k, VALUE, format=FMT_BYTES))
            elif args.client == "twisted-minimal":
                cc = protocol.ClientCreator(reactor, minimal_protocol())
                p = yield cc.connectTCP("127.0.0.1", args.port)
                clients.append(lambda k, p=p: p.set(k.encode(), VALUE))
            else:
                from twisted.protocols.memcache import MemCacheProtocol
                cc = protocol.ClientCreator(reactor, MemCacheProtocol)
                p = yield cc.connectTCP("127.0.0.1", args.port)
                clients.append(lambda k, p=p: p.set(k.encode(), VALUE))
        defer.returnValue(clients)

    def chain(fn, key):
        def again(_):
            if counter.measuring:
                if time.time() >= counter.stop_at:
                    return
                counter.n += 1
            fn(key).addCallback(again)
        fn(key).addCallback(again)

    warm_end = [0]

    def started(clients):
        warm_end[0] = time.time() + args.warmup
        for ci, fn in enumerate(clients):
            for t in range(args.chains):
                chain(fn, "kx%02d%08d" % (ci, t))
        reactor.callLater(args.warmup, counter.start)
        reactor.callLater(args.warmup + args.duration + 0.05, finish)

    def finish():
        counter.measuring = False
        out.update(counter.result())
        reactor.stop()

    reactor.callWhenRunning(lambda: make_clients().addCallback(started))
    reactor.callLater(args.warmup + args.duration + 30, reactor.stop)
    reactor.run()
    return out


def run_asyncio(args):
    import asyncio
    from couchbase_ffi.asyncio import Bucket
    from couchbase_ffi import FMT_BYTES
    counter = Counter(args)

    async def chain(b, key, stop):
        while not stop[0]:
            await b.upsert(key, VALUE, format=FMT_BYTES)
            if counter.measuring:
                counter.n += 1

    async def main():
        buckets = [Bucket("memcached://127.0.0.1:%d" % args.port) for _ in range(args.conns)]
        for b in buckets:
            await b.connect()
        stop = [False]
        tasks = [asyncio.ensure_future(chain(b, "ka%02d%08d" % (ci, t), stop))
                 for ci, b in enumerate(buckets) for t in range(args.chains)]
        await asyncio.sleep(args.warmup)
        counter.start()
        await asyncio.sleep(args.duration)
        counter.measuring = False
        res = counter.result()
        stop[0] = True
        await asyncio.gather(*tasks)
        return res
    return asyncio.new_event_loop().run_until_complete(main())


if __name__ == "__main__":
    a = parse()
    res = run_asyncio(a) if a.client == "cbffi-asyncio" else run_twisted(a)
    print(json.dumps(res))
