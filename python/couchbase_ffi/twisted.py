"""couchbase_ffi.twisted: the couchbase 2.x Bucket API returning Deferreds.

The host-driven libcbffi client of ``couchbase_ffi._async`` on the Twisted
reactor: the reactor watches the core's sockets (as IReadWriteDescriptors),
one ``callLater`` covers the earliest deadline, and every readiness event
harvests all the finished results at once.  Works with any reactor that
supports IReactorFDSet (the default epoll reactor, poll, select).

    from couchbase_ffi.twisted import Bucket
    b = Bucket("memcached://127.0.0.1:11211")
    d = b.connect()
    d.addCallback(lambda _: b.upsert("k", 1))

Every method of the sync Bucket is here with the same arguments and returns a
Deferred that fires with what the sync method returns, or fails with the
exception it raises.  Bad arguments raise at once (before anything is sent),
as 2.x's txcouchbase did once connected.
"""
from twisted.internet import defer
from twisted.python import failure, log

from couchbase_ffi._async import AsyncBucketBase, Host, _READ, _WRITE
from couchbase_ffi import n1ql as _n1ql


class _Descriptor(object):
    """A core socket (through our dup) as the reactor wants to see it."""
    __slots__ = ("host", "w", "fd")

    def __init__(self, host, w):
        self.host = host
        self.w = w
        self.fd = w.fd

    def fileno(self):
        return self.w.dup

    def doRead(self):
        try:
            self.host._on_event(self.fd, _READ)
        except Exception:
            log.err(None, "couchbase_ffi: error handling a read event")

    def doWrite(self):
        try:
            self.host._on_event(self.fd, _WRITE)
        except Exception:
            log.err(None, "couchbase_ffi: error handling a write event")

    def connectionLost(self, reason):
        # The reactor removed us: a hang-up without a read event, or its shutdown.
        self.host._lost(self.w)

    def logPrefix(self):
        return "couchbase_ffi"


def _cancel(call):
    if call.active():
        call.cancel()


def _resolve(d, value):
    if not d.called:      # not cancelled by its owner meanwhile
        d.callback(value)


def _reject(d, exc):
    if not d.called:
        d.errback(failure.Failure(exc))


class _TwistedHost(Host):
    _new_future = defer.Deferred
    _set_result = staticmethod(defer.Deferred.callback)
    _already = defer.AlreadyCalledError
    _resolve = staticmethod(_resolve)
    _reject = staticmethod(_reject)
    _cancel = staticmethod(_cancel)

    def __init__(self, bucket, reactor):
        Host.__init__(self, bucket)
        self.reactor = reactor
        self.stopping = False
        self.trigger = reactor.addSystemEventTrigger("before", "shutdown", self._on_shutdown)

    def _on_shutdown(self):
        self.stopping = True   # the reactor drops every descriptor next: do not re-add

    def _register(self, w, events):
        d = w.handle
        if d is None:
            d = w.handle = _Descriptor(self, w)
        old, r = w.reg, self.reactor
        if old & _READ and not events & _READ:
            r.removeReader(d)
        if old & _WRITE and not events & _WRITE:
            r.removeWriter(d)
        if events & _READ and not old & _READ:
            r.addReader(d)
        if events & _WRITE and not old & _WRITE:
            r.addWriter(d)
        w.reg = events

    def _lost(self, w):
        if self.stopping:
            w.reg = 0
        else:
            Host._lost(self, w)

    def _call_soon(self, fn):
        return self.reactor.callLater(0, fn)

    def _call_later(self, delay, fn):
        return self.reactor.callLater(delay, fn)

    @staticmethod
    def _then(d, fn):
        return d.addCallback(fn)

    def close(self):
        if self.trigger is not None:
            self.reactor.removeSystemEventTrigger(self.trigger)
            self.trigger = None
        Host.close(self)


class Bucket(AsyncBucketBase):
    """The couchbase 2.x Bucket; every operation returns a Deferred.

    ``Bucket(connection_string, reactor=None, **sync_bucket_kwargs)``; the
    default reactor when none is given.  Nothing is sent before ``connect()``
    or the first operation."""

    def __init__(self, connection_string=None, reactor=None, **kwargs):
        if reactor is None:
            from twisted.internet import reactor
        self._reactor = reactor
        AsyncBucketBase.__init__(self, connection_string, **kwargs)

    def _make_host(self):
        return _TwistedHost(self, self._reactor)

    # ---- N1QL, as 2.x's txcouchbase ----------------------------------------------------------
    def n1qlQueryAll(self, *args, **kwargs):
        """A Deferred that fires with a BatchedN1QLRequest once every row is in:
        iterate it for the rows (``meta``, ``metrics``, ``errors`` too).  Arguments
        as the sync ``n1ql_query``; errors as there (N1QLError, TimeoutError...)."""
        kwargs["itercls"] = BatchedN1QLRequest
        return AsyncBucketBase.n1ql_query(self, *args, **kwargs).start()._fut

    def n1qlQueryEx(self, cls, *args, **kwargs):
        """Start a query whose events go to an instance of ``cls`` (a subclass of
        AsyncN1QLRequest overriding on_rows / on_error / on_done); returns it."""
        kwargs["itercls"] = cls
        return AsyncBucketBase.n1ql_query(self, *args, **kwargs).start()

    def n1ql_query(self, *args, **kwargs):
        """As n1qlQueryAll (2.x's txcouchbase left n1ql_query unstarted; here it
        returns the Deferred like every other method of this Bucket)."""
        return self.n1qlQueryAll(*args, **kwargs)


class BatchedN1QLRequest(_n1ql.AsyncN1QLRequest):
    """What n1qlQueryAll's Deferred fires with: the finished request, iterable over
    its rows."""


AsyncN1QLRequest = _n1ql.AsyncN1QLRequest
