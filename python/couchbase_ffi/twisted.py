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

2.x's txcouchbase names are here too (``txcouchbase.bucket`` and
``txcouchbase.connection`` are this module under install_as_couchbase()):
``registerDeferred("connect" | "_dtor", d)``, ``connected``, the camelCase
``getMulti``/``upsertMulti``/... aliases of the ``*_multi`` methods,
``defer()``, ``RawBucket`` and the deprecated 1.x-style ``Connection``.
"""
import gc
import weakref

from twisted.internet import defer
from twisted.python import failure, log

from couchbase_ffi._async import AsyncBucketBase, Host, _READ, _WRITE
from couchbase_ffi import n1ql as _n1ql
from couchbase_ffi.views import iterator as _views
from couchbase_ffi.bucket import _depr
from couchbase_ffi.connstr import convert_1x_args


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

    # data structures (_async.AsyncBucketBase._ds_run)
    @staticmethod
    def _is_future(x):
        return isinstance(x, defer.Deferred)

    @staticmethod
    def _when_done(d, ok, err):
        def failed(f):
            err(f.value)
        d.addCallbacks(ok, failed)

    def close(self, later=False):
        if self.trigger is not None:
            self.reactor.removeSystemEventTrigger(self.trigger)
            self.trigger = None
        Host.close(self, later)


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

    # ---- views, as 2.x's txcouchbase -------------------------------------------------------
    def queryAll(self, *args, **kwargs):
        """A Deferred that fires with a BatchedView once the response is in: iterate
        it for the ViewRows (``indexed_rows``, ``errors`` too).  Arguments as the
        sync ``query``; errors as there (HTTPError, ViewEngineError, TimeoutError)."""
        kwargs["itercls"] = BatchedView
        return AsyncBucketBase.query(self, *args, **kwargs).start()._fut

    def queryEx(self, viewcls, *args, **kwargs):
        """Start a view query whose events go to an instance of ``viewcls`` (a subclass
        of AsyncViewBase overriding on_rows / on_error / on_done); returns it."""
        kwargs["itercls"] = viewcls
        return AsyncBucketBase.query(self, *args, **kwargs).start()


    # ---- 2.x's txcouchbase ------------------------------------------------------------
    def registerDeferred(self, event, d):
        """Fire Deferred ``d`` (with None) at ``event``: "connect" once connected
        (errback with the connect error if that fails; at once, in a later reactor
        turn, if already connected), or "_dtor" once this Bucket is closed or freed.
        ValueError for any other event, as in 2.x.

        A Bucket that nothing refers to any more is freed once nothing is pending on
        it (a pending connect() does not count: it then fails with
        ObjectDestroyedError).  While a "_dtor" Deferred waits, the reactor runs
        gc.collect() at its next turn and then every 0.1 s, so that this happens on
        PyPy too (which frees objects only when its GC runs), and for Buckets caught
        in reference cycles."""
        if event == "connect":
            if self.connected:
                self._reactor.callLater(0, d.callback, None)
            else:
                self.connect().addCallbacks(lambda _: d.callback(None), d.errback)
        elif event == "_dtor":
            if self._c is None:
                self._reactor.callLater(0, d.callback, None)
                return
            self.__dict__.setdefault("_dtor_waiters", []).append(d)
            _poll_gc(weakref.ref(self), d, self._reactor)
        else:
            raise ValueError("No such event type", event)

    def _destroyed(self):
        waiters = self.__dict__.pop("_dtor_waiters", None)
        if waiters:
            call = self._reactor.callLater
            for d in waiters:
                call(0, _fire, d)

    def defer(self, opres):
        """2.x turned a RawBucket's AsyncResult into a Deferred; every operation here
        already returns a Deferred, which is returned as it is."""
        if isinstance(opres, defer.Deferred):
            return opres
        d = defer.Deferred()
        self._reactor.callLater(0, d.callback, opres)
        return d



class BatchedN1QLRequest(_n1ql.AsyncN1QLRequest):
    """What n1qlQueryAll's Deferred fires with: the finished request, iterable over
    its rows."""


AsyncN1QLRequest = _n1ql.AsyncN1QLRequest


class BatchedView(_views.AsyncViewBase):
    """What queryAll's Deferred fires with: the finished View, iterable over its rows."""


AsyncViewBase = _views.AsyncViewBase


def _fire(d):
    if not d.called:
        d.callback(None)


def _poll_gc(ref, d, reactor, interval=0.1):
    """Run gc.collect() every ``interval`` while the Bucket behind ``ref`` lives and
    ``d`` (one of its "_dtor" Deferreds) has not fired; the reactor keeps no call of
    it once ``d`` fires."""
    call = [None]

    def tick():
        call[0] = None
        if d.called or ref() is None:
            return
        gc.collect()
        if not d.called and ref() is not None:
            call[0] = reactor.callLater(interval, tick)

    def stop(result):
        if call[0] is not None and call[0].active():
            call[0].cancel()
        call[0] = None
        return result
    call[0] = reactor.callLater(0, tick)   # the first at the next reactor turn
    d.addBoth(stop)


# 2.x's txcouchbase Bucket had camelCase aliases of the *_multi methods (getMulti...)
for _name in Bucket._MEMCACHED_OPERATIONS:
    if hasattr(Bucket, _name + "_multi"):
        setattr(Bucket, _name + "Multi", getattr(Bucket, _name + "_multi"))
del _name

# 2.x's RawBucket returned AsyncResult objects, to be turned into Deferreds with
# defer(); here every operation returns a Deferred already.
RawBucket = Bucket


class Connection(Bucket):
    """1.x-style ``Connection(bucket, host=, port=, ...)``; deprecated (2.x's
    txcouchbase.connection.Connection): use Bucket."""

    def __init__(self, bucket="default", **kwargs):
        _depr("txcouchbase.connection.Connection", "txcouchbase.bucket.Bucket")
        Bucket.__init__(self, **convert_1x_args(bucket, **kwargs))


TxAsyncConnection = Connection
