"""Rows as they arrive, for the synchronous Bucket: one libcbffi stream
(``cbffi_query_stream`` / ``cbffi_view_stream``, see "Streams" in
include/cbffi.h) driven by the built-in loop.

``SyncStream.next()`` blocks in ``cbffi_stream_wait`` (the GIL released, as
around every cffi call) until the stream has rows or its end, and returns them
as bytes; other operations of the Bucket run as usual between two calls (a
stream's results never reach the Bucket's result queue).  ``close()`` cancels
the request if it still runs and frees the stream.

A stream left to the garbage collector (an iterator abandoned mid-way) is
closed from its finalizer when that is safe: the Bucket's lock is free (the
finalizer may run in any thread, at any allocation, even while this thread is
inside the Bucket), or, with LOCKMODE_NONE, the finalizer runs in the thread
that opened the stream.  Otherwise it is queued on the Bucket and closed by
the next stream opened there, or by ``Bucket.close()``.  Until then it costs
at most CBFFI_STREAM_HOLD_MAX bytes and one connection (and counts against the
64 requests in flight: a request refused for that runs the collector once and
tries again), and delivers nothing to anyone.
"""
import gc
import threading

from couchbase_ffi._lowlevel import ffi, lib
from couchbase_ffi import bucket as _bucket
from couchbase_ffi import exceptions as E

_CAP = _bucket._RES_CAP     # results per harvest: the size of Bucket._res


def _detail(s):
    return ffi.string(lib.cbffi_stream_error(s)).decode("utf-8", "replace")


class SyncStream(object):
    """One stream on a synchronous Bucket.  ``start`` is cbffi_query_stream or
    cbffi_view_stream, ``args`` its arguments between the client and the cookie.

    ``failed`` is set instead of raising when scheduling is refused:
    ``(rc, 0, b"", detail)``, the same shape as the final of ``next()``."""
    __slots__ = ("bucket", "s", "failed", "thread", "__weakref__")

    def __init__(self, bucket, start, args):
        self.bucket = bucket
        self.s = None
        self.failed = None
        self.thread = threading.get_ident()
        sp = ffi.new("cbffi_stream **")
        c = bucket._enter()
        try:
            self._close_dead(c)
            rc = start(c, *(args + (0, sp)))
            if rc == lib.CBFFI_EBUSY:
                # 64 requests in flight: some may be abandoned iterators the collector
                # has not finalized yet (PyPy; cycles); their finalizers defer to us,
                # who hold the Bucket
                gc.collect()
                self._close_dead(c)
                rc = start(c, *(args + (0, sp)))
            if rc:
                self.failed = (rc, 0, b"", ffi.string(lib.cbffi_client_last_error(c))
                               .decode("utf-8", "replace"))
            else:
                self.s = sp[0]
        finally:
            bucket._leave()

    def _close_dead(self, c):
        dead = self.bucket._dead_streams
        while dead:
            lib.cbffi_stream_close(c, dead.pop())

    def next(self):
        """(rows, final): the rows harvested now (a list of bytes, the JSON of each), and
        None, or once the stream ended ``(rc, http status, meta bytes, detail)``.
        Blocks until there is something (at most until the request's timeout)."""
        if self.failed is not None:
            final, self.failed = self.failed, None
            return [], final
        s = self.s
        if s is None:
            raise E.ObjectDestroyedError("the stream is closed")
        b = self.bucket
        c = b._enter()
        try:
            res = b._res        # the Bucket's harvest array: copied out before _leave
            rows, final = [], None
            n = lib.cbffi_stream_wait(c, s, res, _CAP)
            while n:
                unpack = ffi.unpack
                for i in range(n):
                    r = res[i]
                    if r.final:
                        final = (r.rc, r.status, unpack(r.value, r.nvalue) if r.nvalue else b"",
                                 _detail(s) if r.rc else "")
                    else:
                        rows.append(unpack(r.value, r.nvalue))
                n = lib.cbffi_stream_harvest(c, s, res, _CAP) if n == _CAP else 0
            if final is None and not rows:    # harvested before: nothing more comes
                final = (lib.CBFFI_EINTERNAL, 0, b"", "the stream ended already")
        finally:
            b._leave()
        if final is not None:
            self.close()
        return rows, final

    def close(self):
        """Cancel the request if it still runs; free the stream.  Idempotent."""
        s, self.s = self.s, None
        if s is None:
            return
        b = self.bucket
        if b._c is None:
            return      # the Bucket's client freed it
        if not b._try_enter(self.thread):
            b._dead_streams.append(s)
            return
        try:
            if b._c is not None:
                lib.cbffi_stream_close(b._c, s)
        finally:
            b._leave()

    def __del__(self):
        try:
            self.close()
        except Exception:   # noqa: BLE001 - never from a finalizer
            pass


class StreamState(object):
    """The Host's view of one N1QL or view stream in flight (couchbase_ffi._async,
    Host.add_stream): the rows as harvested, then the end, handed to the request's
    ``_end(rc, status, meta, detail, rows)``."""
    __slots__ = ("host", "req", "fut", "rows")

    def __init__(self, host, req):
        self.host = host
        self.req = req
        self.fut = req._fut       # what Host.close() fails
        self.rows = []

    def row(self, data):
        self.rows.append(data)

    def finish(self, rc, status, data, detail):
        rows, self.rows = self.rows, []
        self.req._end(rc, status, data, detail, rows)
