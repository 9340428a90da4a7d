"""couchbase_ffi.twisted: the Bucket API returning Deferreds, on the Twisted reactor.

The same host-driven libcbffi client as the asyncio front-end: the reactor
watches the sockets the core asks for (as IReadWriteDescriptors), one
callLater covers the earliest deadline, and every readiness event harvests all
finished results at once.

    b = Bucket("memcached://127.0.0.1:11211")
    d = b.connect()
    d.addCallback(lambda _: b.upsert("k", 1))
"""
from twisted.internet import defer
from twisted.python import failure

from couchbase_ffi._async import AsyncBucketBase


class _Descriptor(object):
    """A file descriptor as the reactor wants to see it."""

    def __init__(self, fd, on_read, on_write):
        self.fd = fd
        self.on_read = on_read
        self.on_write = on_write

    def fileno(self):
        return self.fd

    def doRead(self):
        self.on_read()

    def doWrite(self):
        self.on_write()

    def connectionLost(self, reason):
        pass

    def logPrefix(self):
        return "couchbase_ffi"


class _Adapter(object):
    def __init__(self, reactor):
        self.reactor = reactor
        self.descs = {}
        self.readers = {}
        self.writers = {}

    def _desc(self, fd):
        d = self.descs.get(fd)
        if d is None:
            d = self.descs[fd] = _Descriptor(fd, lambda: self.readers[fd](),
                                             lambda: self.writers[fd]())
        return d

    def add_reader(self, fd, cb, *args):
        self.readers[fd] = lambda: cb(*args)
        self.reactor.addReader(self._desc(fd))

    def add_writer(self, fd, cb, *args):
        self.writers[fd] = lambda: cb(*args)
        self.reactor.addWriter(self._desc(fd))

    def remove_reader(self, fd):
        d = self.descs.get(fd)
        if d is not None:
            self.reactor.removeReader(d)
        self.readers.pop(fd, None)
        self._forget(fd)

    def remove_writer(self, fd):
        d = self.descs.get(fd)
        if d is not None:
            self.reactor.removeWriter(d)
        self.writers.pop(fd, None)
        self._forget(fd)

    def _forget(self, fd):
        if fd not in self.readers and fd not in self.writers:
            self.descs.pop(fd, None)

    def call_later(self, delay, fn):
        return _Timer(self.reactor.callLater(delay, fn))

    def call_soon(self, fn):
        self.reactor.callLater(0, fn)


class _Timer(object):
    def __init__(self, call):
        self.call = call

    def cancel(self):
        if self.call.active():
            self.call.cancel()


class Bucket(AsyncBucketBase):
    """The couchbase 2.x Bucket; every operation returns a Deferred."""

    def __init__(self, connection_string=None, reactor=None, **kwargs):
        AsyncBucketBase.__init__(self, connection_string, **kwargs)
        if reactor is None:
            from twisted.internet import reactor
        self._reactor = reactor

    def _adapter(self):
        return _Adapter(self._reactor)

    @staticmethod
    def _new_future():
        return defer.Deferred()

    @staticmethod
    def _resolve(d, value):
        d.callback(value)

    @staticmethod
    def _reject(d, exc):
        d.errback(failure.Failure(exc))

    @staticmethod
    def _is_done(d):
        return d.called

    @staticmethod
    def _chain(d, fn):
        def ok(v):
            fn(v)
            return v

        def bad(f):
            fn(f.value)
            return None  # handled: the multi result carries it
        d.addCallbacks(ok, bad)
