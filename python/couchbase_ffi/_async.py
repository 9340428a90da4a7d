"""The event-loop-agnostic half of the Twisted and asyncio front-ends.

libcbffi never blocks here.  The loop watches the sockets the core asks for
(``cbffi_io_watches``), tells it when one is ready (``cbffi_io_event``), keeps
one timer no later than the earliest deadline (``cbffi_io_deadline`` /
``cbffi_io_tick``), and after every such call harvests every finished result
in one batch.  No C-to-Python callbacks.

The asynchronous Bucket is the synchronous one with a permanent "pipe": the
sync methods validate and encode exactly as they always do, then hand the
scheduling call to ``Host.add`` / ``Host.add_multi``, which return a future of
the front-end instead of waiting.  So every operation of the sync Bucket
exists here with the same arguments, the same checks (bad input raises
at once, before anything is sent, as in the sync API) and the same results
and exceptions, delivered through the future.

N1QL and view queries are libcbffi streams (``Host.add_stream``): their rows
wait in the stream, not in the client's result queue, and every settle
harvests each open stream after the result queue (one call per stream), so
rows are taken as they arrive; the stream's end goes to its state's
``finish``.  A harvest that makes room for a paused stream makes the core's
deadline 0: the timer then resumes it.

Writes are coalesced per loop turn: operations scheduled from callbacks that
run while a harvest is delivered go out in one flush at the end of that
delivery; operations scheduled anywhere else go out in one flush at the end
of the loop turn (one ``call_soon``).

The host registers a dup() of each of the core's sockets with the loop, not
the socket itself: the core closes a socket before the host hears that it
should stop watching it, and a loop cannot unregister a descriptor that is
already closed (or, worse, already reused).  The dup keeps the descriptor
valid until the host has unregistered it, then the host closes it.
"""
import os
import weakref
from time import monotonic as _monotonic

from couchbase_ffi._lowlevel import ffi, lib
from couchbase_ffi import bucket as _sync
from couchbase_ffi import exceptions as E
from couchbase_ffi.result import MultiResult, OperationResult, ObserveInfo, ValueResult
from couchbase_ffi.transcoder import FMT_BYTES, encode_value

_READ, _WRITE = lib.CBFFI_IO_READ, lib.CBFFI_IO_WRITE
_CAP = 256          # results harvested per call
_NW = 16            # watch changes read per call
_ENOENT = lib.CBFFI_KEY_ENOENT
_K_OP, _K_GET, _K_GET_RAW, _K_COUNTER = _sync._K_OP, _sync._K_GET, _sync._K_GET_RAW, \
    _sync._K_COUNTER
_K_STATE = 4        # the entry's result goes to a state object
# The timer fires this long after the earliest deadline, so that operations
# scheduled in one loop turn time out together (as the sync Bucket's, whose
# receive timeout is rounded to 10 ms): when a silent server's first operation
# expires, the core drops the connection and fails what is still queued on it
# with a network error.
_TIMER_SLACK = 0.005
_exc = E.exc_from_rc
_MAX_KEY = _sync._MAX_KEY
_GET_PLAIN, _GET_TOUCH = _sync._GET_PLAIN, _sync._GET_TOUCH


class _Watch(object):
    """One of the core's sockets as the loop sees it."""
    __slots__ = ("fd", "dup", "want", "reg", "handle")

    def __init__(self, fd, dup):
        self.fd = fd          # the core's descriptor (what cbffi_io_event takes)
        self.dup = dup        # ours, registered with the loop
        self.want = 0         # events the core asked for
        self.reg = 0          # events registered with the loop
        self.handle = None    # front-end data (the Twisted descriptor)


class Host(object):
    """Drives one libcbffi client from a host loop; the async Bucket's ``_pipe``.

    Front-ends subclass it and define ``_register(w, events)`` (make the
    loop's registration of ``w.dup`` match ``events``, set ``w.reg``),
    ``_call_soon(fn)`` and ``_call_later(delay, fn)`` (return a handle for
    ``_cancel``), ``_new_future()``, ``_resolve(fut, value)`` and
    ``_reject(fut, exc)`` (which ignore a future its owner cancelled),
    ``_then(fut, fn)``, and for the hot path ``_set_result(fut, value)``: the
    future type's own method, which raises ``_already`` on a cancelled one.
    """

    # asyncio runs a future's callbacks in a later loop turn, Twisted at once;
    # with later callbacks, the end-of-turn flush is queued behind them.
    later_callbacks = False

    def __init__(self, bucket):
        # The Bucket only while operations are pending (``hold``): the loop holds the
        # host (its descriptors, timers), and a Bucket nobody refers to any more must
        # be freed then (and closed: __del__), as 2.x's was.
        self._bref = weakref.ref(bucket)
        self.hold = None
        self.nconn = 0        # pending connect()s, which do not hold the Bucket
        self.c = bucket._c
        self.pending = {}     # cookie -> (future or state, result, kind, quiet)
        self.streams = {}     # cookie -> (state, cbffi_stream *): add_stream
        self.next = 1
        self.fds = {}         # core fd -> _Watch
        self.dirty = False    # operations scheduled and not flushed yet
        self.busy = False     # inside _settle: what is scheduled now goes out at its end
        self.rearm = False    # the earliest deadline may have moved earlier
        self.soon = None      # the queued end-of-turn flush
        self.timer = None
        self.timer_when = 0.0
        self.zombie = None    # a client closed from a callback, destroyed after it
        self.watches = ffi.new("cbffi_watch[%d]" % _NW)
        self.res = ffi.new("cbffi_result[%d]" % _CAP)

    @property
    def b(self):
        """The Bucket (None once it has been freed)."""
        return self._bref()

    # ---- scheduling (called by the sync Bucket's methods through _pipe) --------------
    def add(self, sched, args, res, kind, quiet):
        """Schedule ``sched(c, *args, cookie)``; a future of ``res`` filled in."""
        c = self.c
        if c is None:
            raise E.ObjectDestroyedError("the Bucket is closed")
        b = self.hold = self._bref()
        ck = self.next
        rc = sched(c, *args, ck)
        if rc:
            b._sched_error(rc, res.key)
        self.next = ck + 1
        fut = self._new_future()
        self.pending[ck] = (fut, res, kind, b.quiet if quiet is None else quiet)
        if not self.dirty:
            self._kick()
        return fut

    def add_multi(self, entries, mres, kind, quiet, okrcs):
        """Schedule every (key, result, sched, args) entry; one future of the MultiResult."""
        c = self.c
        if c is None:
            raise E.ObjectDestroyedError("the Bucket is closed")
        b = self.hold = self._bref()
        fut = self._new_future()
        state = _Multi(self, fut, mres, quiet, okrcs, kind)
        pending = self.pending
        first = ck = self.next
        for key, res, sched, args in entries:
            rc = sched(c, *args, ck)
            if rc:
                # refused (too big...): as in the sync Bucket, the ones scheduled
                # before it still go out; their results are dropped
                for k in range(first, ck):
                    pending.pop(k, None)
                self.next = ck + 1
                if ck > first and not self.dirty:
                    self._kick()
                b._sched_error(rc, key)
            pending[ck] = (state, res, _K_STATE, None)
            ck += 1
        self.next = ck
        state.left = ck - first
        if state.left == 0:
            state.finish()
        elif not self.dirty:
            self._kick()
        return fut

    def add_state(self, sched, args, state, what=None, index=0):
        """Schedule an operation whose results feed ``state`` (connect, broadcasts)."""
        c = self.c
        if c is None:
            raise E.ObjectDestroyedError("the Bucket is closed")
        b = self._bref()
        if state.__class__ is _Connect:
            self.nconn += 1
        else:
            self.hold = b
        ck = self.next
        rc = sched(c, *args, ck)
        if rc:
            if state.__class__ is _Connect:
                self.nconn -= 1
            b._sched_error(rc, what)
        self.next = ck + 1
        self.pending[ck] = (state, what, _K_STATE, index)
        if not self.dirty:
            self._kick()

    def add_stream(self, start, args, state):
        """Start a stream (``start`` is cbffi_query_stream or cbffi_view_stream, ``args``
        its arguments between the client and the cookie): its rows go to
        ``state.row(bytes)`` as they are harvested, then ``state.finish(rc, status,
        meta bytes, detail)`` once; Host.close() fails ``state.fut``."""
        c = self.c
        if c is None:
            raise E.ObjectDestroyedError("the Bucket is closed")
        b = self.hold = self._bref()
        ck = self.next
        sp = ffi.new("cbffi_stream **")
        rc = start(c, *(args + (ck, sp)))
        self.next = ck + 1
        if rc:
            b._sched_error(rc, None)
        self.streams[ck] = (state, sp[0])
        self.pending[ck] = (state, None, _K_STATE, 0)
        if not self.dirty:
            self._kick()

    def _kick(self):
        self.dirty = True
        self.rearm = True
        if not self.busy and self.soon is None:
            self.soon = self._call_soon(self._on_soon)

    # ---- the loop's entry points ----------------------------------------------------------
    def _on_event(self, fd, ev):
        c = self.c
        if c is None:
            return
        self.busy = True
        # a reply can bring a deadline forward (a retry after NOT_MY_VBUCKET, a
        # config refresh, a reconnect): look again after every event
        self.rearm = True
        lib.cbffi_io_event(c, fd, ev)
        self._settle(c)

    def _on_read(self, fd):
        self._on_event(fd, _READ)

    def _on_write(self, fd):
        self._on_event(fd, _WRITE)

    def _on_soon(self):
        self.soon = None
        c = self.c
        if c is not None and self.dirty:
            self.busy = True
            self.dirty = False
            lib.cbffi_io_flush(c)
            self._settle(c)

    def _on_timer(self):
        self.timer = None
        c = self.c
        if c is None:
            return
        self.busy = True
        self.rearm = True
        lib.cbffi_io_tick(c)
        self._settle(c)

    def _settle(self, c):
        """After an IO call: apply watch changes, deliver every finished result, send
        what the callbacks scheduled meanwhile, until nothing is left; then the timer."""
        delivered = False
        try:
            while True:
                self._apply_watches(c)
                n = lib.cbffi_harvest(c, self.res, _CAP)
                while n:
                    delivered = True
                    self._deliver(n)
                    if self.c is None:
                        return      # closed by a callback
                    n = lib.cbffi_harvest(c, self.res, _CAP) if n == _CAP else 0
                if self.streams:
                    delivered |= self._drain_streams(c)
                    if self.c is None:
                        return
                if not self.dirty:
                    break
                self.dirty = False
                lib.cbffi_io_flush(c)
        finally:
            self.busy = False
            if self.zombie is not None:
                z, self.zombie = self.zombie, None
                lib.cbffi_client_destroy(z)
        if self.c is None:
            return      # closed meanwhile (by a callback, or a garbage collection)
        if self.rearm:
            self._arm(c)
        if delivered and self.later_callbacks and self.soon is None:
            # the callbacks run next turn, in order; a flush queued now runs after them
            self.soon = self._call_soon(self._on_soon)
        if self.hold is not None and len(self.pending) <= self.nconn:
            self.hold = None     # last: the Bucket may be freed (and closed) here

    def _apply_watches(self, c):
        w = self.watches
        n = lib.cbffi_io_watches(c, w, _NW)
        while n:
            for i in range(n):
                self._watch(w[i].fd, w[i].events)
            n = lib.cbffi_io_watches(c, w, _NW) if n == _NW else 0

    def _watch(self, fd, events):
        if self.c is None:
            return      # closed meanwhile (a garbage collection freed the Bucket)
        w = self.fds.get(fd)
        if w is None:
            if not events:
                return
            w = self.fds[fd] = _Watch(fd, os.dup(fd))
        w.want = events
        if events != w.reg:
            self._register(w, events)
        if not events:
            del self.fds[fd]
            os.close(w.dup)

    def _lost(self, w):
        """The loop dropped w on its own (a hang-up it reports without a read event):
        let the core find out what happened, then restore what it still wants."""
        w.reg = 0
        if self.fds.get(w.fd) is not w or self.c is None:
            return
        self._on_event(w.fd, _READ | _WRITE)
        if self.fds.get(w.fd) is w and w.want != w.reg:
            self._register(w, w.want)

    def _arm(self, c):
        """Keep one timer no later than the earliest deadline.  A timer that fires
        early only re-arms, so it is moved only when a deadline comes sooner."""
        self.rearm = False
        dl = lib.cbffi_io_deadline(c)
        if dl < 0:
            return
        delay = dl * 1e-6 + _TIMER_SLACK
        when = _monotonic() + delay
        t = self.timer
        if t is not None:
            if self.timer_when <= when + 0.001:
                return
            self._cancel(t)
        self.timer_when = when
        self.timer = self._call_later(delay, self._on_timer)

    # ---- results -----------------------------------------------------------------------
    def _drain_streams(self, c):
        """Harvest every open stream; True if a stream ended (callbacks ran)."""
        res = self.res
        unpack = ffi.unpack
        ended = False
        self.rearm = True       # a harvest may let a paused stream resume: deadline 0
        for ck, (state, s) in list(self.streams.items()):
            final = None
            n = lib.cbffi_stream_harvest(c, s, res, _CAP)
            while n:
                for i in range(n):
                    r = res[i]
                    if r.final:
                        detail = ffi.string(lib.cbffi_stream_error(s)).decode(
                            "utf-8", "replace") if r.rc else ""
                        final = (r.rc, r.status, unpack(r.value, r.nvalue) if r.nvalue
                                 else b"", detail)
                    else:
                        state.row(unpack(r.value, r.nvalue))
                n = lib.cbffi_stream_harvest(c, s, res, _CAP) if n == _CAP else 0
            if final is None:
                continue
            del self.streams[ck]
            self.pending.pop(ck, None)
            lib.cbffi_stream_close(c, s)
            ended = True
            state.finish(*final)
            if self.c is None:
                return True     # closed by a callback
        return ended

    def _deliver(self, n):
        res = self.res
        b = self._bref()
        pending = self.pending
        set_result = self._set_result
        already = self._already
        reject = self._reject
        mt = self.b._mtok   # mutation tokens, when asked for
        for i in range(n):
            r = res[i]
            e = pending.pop(r.cookie, None)
            if e is None:
                continue
            fut, out, kind, quiet = e
            if kind == _K_STATE:
                if r.final:
                    fut.end(r, out, quiet)
                else:               # a partial result of a broadcast (a stat)
                    pending[r.cookie] = e
                    fut.row(r)
                continue
            rc = out.rc = r.rc
            if rc == 0:
                out.cas = r.cas
                if mt is not None:
                    mt.take(out, r)
                if kind != _K_OP:
                    if kind == _K_COUNTER:
                        out.value = r.u64
                    else:
                        out.flags = r.flags
                        try:
                            out.value = b._decode(r, kind == _K_GET_RAW)
                        except E.CouchbaseError as exc:
                            exc.key, exc.result = out.key, out
                            reject(fut, exc)
                            continue
            elif rc != _ENOENT or not quiet:
                reject(fut, _exc(rc, key=out.key, result=out))
                continue
            try:
                set_result(fut, out)
            except already:
                pass        # cancelled by its owner meanwhile

    # ---- shutdown -------------------------------------------------------------------------
    def close(self, later=False):
        """Unregister everything from the loop, fail what is pending with
        ObjectDestroyedError and destroy the client (after the current delivery,
        if called from inside one).  ``later``: the futures fail in a later loop
        turn (a close from __del__)."""
        c, self.c = self.c, None
        if c is None:
            return
        self.hold = None
        self.nconn = 0
        for w in list(self.fds.values()):
            if w.reg:
                self._register(w, 0)
            os.close(w.dup)
        self.fds.clear()
        for h in (self.timer, self.soon):
            if h is not None:
                self._cancel(h)
        self.timer = self.soon = None
        self.dirty = False
        self.streams = {}       # freed with the client
        pending, self.pending = self.pending, {}
        if self.busy:
            self.zombie = c
        else:
            lib.cbffi_client_destroy(c)
        failed = set()
        futs = []
        for fut, _, kind, _ in pending.values():
            if kind == _K_STATE:
                if id(fut) in failed:
                    continue
                failed.add(id(fut))
                fut = fut.fut
            futs.append(fut)
        if later and futs:
            try:
                self._call_soon(lambda: self._reject_all(futs))
                return
            except Exception:
                pass      # no loop to run it: now
        self._reject_all(futs)

    def _reject_all(self, futs):
        for fut in futs:
            self._reject(fut, E.ObjectDestroyedError("the Bucket was closed"))


class _Multi(object):
    """The results of one ``*_multi`` call, gathered into its MultiResult."""
    __slots__ = ("host", "fut", "mres", "quiet", "okrcs", "kind", "left", "error")

    def __init__(self, host, fut, mres, quiet, okrcs, kind):
        self.host = host      # (host.hold keeps the Bucket while this is pending)
        self.fut = fut
        self.mres = mres
        self.quiet = quiet
        self.okrcs = okrcs
        self.kind = kind
        self.left = 0
        self.error = None     # the first decoding error, as the sync Bucket raises it

    def end(self, r, out, _):
        rc = out.rc = r.rc
        if rc == 0:
            out.cas = r.cas
            if self.host.b._mtok is not None:
                self.host.b._mtok.take(out, r)
            kind = self.kind
            if kind == _K_COUNTER:
                out.value = r.u64
            elif kind != _K_OP:
                out.flags = r.flags
                try:
                    out.value = self.host.hold._decode(r, kind == _K_GET_RAW)
                except E.CouchbaseError as exc:
                    if self.error is None:
                        exc.key, exc.result = out.key, out
                        self.error = exc
        self.left -= 1
        if self.left == 0:
            self.finish()

    def finish(self):
        host = self.host
        if self.error is not None:
            host._reject(self.fut, self.error)
            return
        try:
            mres = _sync.Bucket._finish_multi(self.mres, self.quiet, self.okrcs)
        except E.CouchbaseError as exc:
            host._reject(self.fut, exc)
        else:
            host._resolve(self.fut, mres)


class _Broadcast(object):
    """An every-server operation (stats per group, flush): partial rows, then one
    final result per scheduled operation; ``done(rows)`` makes the value."""
    __slots__ = ("host", "fut", "left", "rows", "rcs", "done")

    def __init__(self, host, fut, n, done):
        self.host = host
        self.fut = fut
        self.left = n
        self.rows = [[] for _ in range(n)]
        self.rcs = [0] * n
        self.done = done

    def row(self, r):
        pass  # replaced per instance kind below

    def end(self, r, what, index):
        self.rcs[index] = r.rc
        self.left -= 1
        if self.left:
            return
        for i, rc in enumerate(self.rcs):   # the first failing group, as sync raises it
            if rc:
                return self.host._reject(self.fut, _exc(rc, key=self.what_of(i)))
        self.host._resolve(self.fut, self.done(self.rows))

    def what_of(self, index):
        return None


class _Stats(_Broadcast):
    __slots__ = ("groups", "cookies")

    def row(self, r):
        if r.nkey and r.server >= 0:
            self.rows[self.cookies[r.cookie]].append(
                (ffi.unpack(r.key, r.nkey), ffi.unpack(r.value, r.nvalue) if r.nvalue else b"",
                 r.server))

    def what_of(self, index):
        return self.groups[index]


class _Observe(object):
    """OBSERVE results of one or more keys: per-node rows, then one final result
    per key; resolves with ``value`` (a ValueResult or a MultiResult)."""
    __slots__ = ("host", "fut", "by_cookie", "value", "left")

    def __init__(self, host, fut, by_cookie, value):
        self.host = host
        self.fut = fut
        self.by_cookie = by_cookie
        self.value = value
        self.left = 1

    def row(self, r):
        if r.rc == 0:
            u = r.u64
            self.by_cookie[r.cookie].value.append(
                ObserveInfo(r.flags, r.cas, r.replica == 0, u >> 32, u & 0xFFFFFFFF))

    def end(self, r, what, index):
        res = self.by_cookie[r.cookie]
        res.rc = r.rc
        for info in res.value:
            if info.from_master:
                res.cas = info.cas
        self.left -= 1
        if self.left:
            return
        if isinstance(self.value, MultiResult):
            for k, v in self.value.items():
                if v.rc:
                    self.value.all_ok = False
            failed = next((v for v in self.value.values() if v.rc), None)
            if failed is not None:
                return self.host._reject(self.fut, _exc(
                    failed.rc, key=failed.key, result=failed, all_results=self.value))
        elif res.rc:
            return self.host._reject(self.fut, _exc(res.rc, key=res.key, result=res))
        self.host._resolve(self.fut, self.value)


class _Connect(object):
    __slots__ = ("host", "fut")

    def __init__(self, host, fut):
        self.host = host
        self.fut = fut

    def row(self, r):
        pass

    def end(self, r, what, index):
        host = self.host
        host.nconn -= 1
        b = host.b
        if b is None:
            host._reject(self.fut, E.ObjectDestroyedError("the Bucket was freed"))
        elif r.rc:
            detail = ffi.string(lib.cbffi_client_last_error(host.c)).decode("utf-8", "replace")
            host._reject(self.fut, _exc(r.rc, message="cannot connect to %s%s" % (
                b._connstr, ": " + detail if detail else "")))
        else:
            b._connected = True
            host._resolve(self.fut, b)


class _Subdoc(object):
    """One lookup_in / mutate_in: its result is made by the sync Bucket's _subdoc_fill."""
    __slots__ = ("host", "fut", "res", "kinds", "quiet", "op")

    def __init__(self, host, fut, res, kinds, quiet, op):
        self.host = host
        self.fut = fut
        self.res = res
        self.kinds = kinds
        self.quiet = quiet
        self.op = op

    def row(self, r):
        pass

    def end(self, r, what, index):
        host = self.host
        err = host.b._subdoc_fill(self.res, self.kinds, self.quiet, self.op, r)
        if err is not None:
            host._reject(self.fut, err)
        else:
            host._resolve(self.fut, self.res)


class AsyncBucketBase(_sync.Bucket):
    """The couchbase 2.x Bucket whose operations return futures of the front-end.

    Subclasses set ``_make_host()`` (a Host subclass for their loop)."""

    def __init__(self, connection_string=None, **kwargs):
        kwargs.setdefault("lockmode", _sync.LOCKMODE_NONE)
        self._host = None
        self._connected = False
        _sync.Bucket.__init__(self, connection_string, **kwargs)

    def _connect(self):
        # The sync constructor connects here; an async Bucket connects on connect()
        # or on first use, without blocking.  Every operation goes through the host.
        self._pipe = self._host = self._make_host()

    def connect(self):
        """Connect without blocking: a future of the Bucket itself, or of ConnectError
        (the Bucket stays usable: a later operation or connect() tries again)."""
        host = self._host
        if host.c is None:
            raise E.ObjectDestroyedError("the Bucket is closed")
        fut = host._new_future()
        host.add_state(lib.cbffi_connect, (), _Connect(host, fut))
        return fut

    def bucket_manager(self):
        """Not here: index and design-document management is the synchronous
        Bucket's (open one beside this one)."""
        raise E.NotSupportedError("bucket_manager() is for the synchronous Bucket; "
                                  "open a couchbase_ffi.bucket.Bucket for management calls")

    @property
    def connected(self):
        """True once connect() succeeded (or, on couchbase://, a cluster map was
        fetched by a first operation); False again after close()."""
        c = self._c
        return c is not None and (self._connected or lib.cbffi_client_config_rev(c) >= 0)

    def close(self):
        """Close the connections: every pending operation fails with
        ObjectDestroyedError, the loop keeps no reader, writer or timer of ours."""
        if getattr(self, "_c", None) is None:
            return
        self._c = None
        self._host.close()
        self._destroyed()

    def _destroyed(self):
        """The Bucket was closed or freed (front-ends fire their events here)."""

    def __del__(self):
        # Nothing pending holds this Bucket (Host.hold) and nobody else refers to it:
        # close it, as 2.x's destructor did (a pending connect() fails with
        # ObjectDestroyedError, in a later loop turn).
        try:
            host = getattr(self, "_host", None)
            if host is not None and host.c is not None:
                self._c = None
                host.close(later=True)
            self._destroyed()
        except Exception:
            pass      # interpreter shutdown, a closed loop: nothing left to tell

    def pipeline(self):
        raise E.PipelineError("pipeline() is for the synchronous Bucket: here every "
                              "operation issued in one loop turn goes out in one write "
                              "anyway; gather the futures")

    # get and _store are the sync Bucket's, checks included, with the scheduling
    # call made here directly instead of through Host.add (the hot path: a tuple
    # and a star-call less per operation).  Keep them in step with bucket.py;
    # test_async_api runs every operation through both and compares.
    def get(self, key, ttl=0, quiet=None, replica=False, no_format=False):
        if replica:
            return self.rget(key, quiet=quiet, no_format=no_format)
        if key.__class__ is str and self._tc is None:
            kb = key.encode("utf-8")
            if not 0 < len(kb) <= _MAX_KEY:
                kb = self._key(key)
        else:
            kb = self._key(key)
        if ttl:
            ttl = _sync._check_ttl(ttl)
            mode = _GET_TOUCH
        else:
            ttl = 0
            mode = _GET_PLAIN
        h = self._host
        c = h.c
        if c is None:
            raise E.ObjectDestroyedError("the Bucket is closed")
        ck = h.next
        rc = lib.cbffi_get(c, kb, len(kb), mode, ttl, ck)
        if rc:
            self._sched_error(rc, key)
        h.next = ck + 1
        h.hold = self
        fut = h._new_future()
        h.pending[ck] = (fut, ValueResult(key), _K_GET_RAW if no_format else _K_GET,
                         self.quiet if quiet is None else quiet)
        if not h.dirty:
            h._kick()
        return fut

    def _store(self, op, key, value, cas, ttl, fmt, persist_to, replicate_to):
        if persist_to or replicate_to or self._dur is not None:
            persist_to, replicate_to = self._check_durability(persist_to, replicate_to)
            if persist_to or replicate_to:
                return self._store_durable(op, key, value, cas, ttl, fmt, persist_to,
                                           replicate_to)
        tc = self._tc
        if key.__class__ is str and tc is None:
            kb = key.encode("utf-8")
            if not 0 < len(kb) <= _MAX_KEY:
                kb = self._key(key)
        else:
            kb = self._key(key)
        if tc is None:
            if fmt is None:
                fmt = self.default_format
            if fmt == FMT_BYTES and value.__class__ is bytes:
                vb, flags = value, FMT_BYTES
            else:
                vb, flags = encode_value(value, fmt)
        else:
            vb, flags = self._value(value, fmt)
        ttl = _sync._check_ttl(ttl) if ttl else 0
        cas = _sync._check_cas(cas) if cas else 0
        h = self._host
        c = h.c
        if c is None:
            raise E.ObjectDestroyedError("the Bucket is closed")
        ck = h.next
        rc = lib.cbffi_store(c, op, kb, len(kb), vb, len(vb), flags, ttl, cas, ck)
        if rc:
            self._sched_error(rc, key)
        h.next = ck + 1
        h.hold = self
        fut = h._new_future()
        h.pending[ck] = (fut, OperationResult(key), _K_OP, False)
        if not h.dirty:
            h._kick()
        return fut

    def _run_multi(self, entries, kind, quiet, okrcs=(_ENOENT,)):
        self._unique(e[0] for e in entries)
        mres = MultiResult()
        for key, res, _, _ in entries:
            mres[key] = res
        quiet = self.quiet if quiet is None else quiet
        return self._host.add_multi(entries, mres, kind, quiet, okrcs)

    def stats(self, keys=None):
        """A future of {stat: {server: value}}, as the sync ``stats``."""
        pairs = _sync._stats_groups(keys)
        groups = [g for g, _ in pairs]
        encoded = [gb for _, gb in pairs]
        names = self.server_nodes
        host = self._host

        def done(rows):
            out = {}
            for group in rows:
                for r_key, r_val, server in group:
                    out.setdefault(r_key.decode("utf-8", "replace"), {})[names[server]] = \
                        _sync._maybe_int(r_val.decode("utf-8", "replace"))
            return out
        fut = host._new_future()
        state = _Stats(host, fut, len(groups), done)
        state.groups = groups
        state.cookies = {}
        for i, gb in enumerate(encoded):
            state.cookies[host.next] = i
            host.add_state(lib.cbffi_stats, (gb or ffi.NULL, len(gb or b"")), state, groups[i], i)
        return fut

    def observe(self, key, master_only=False):
        """A future of the sync ``observe``'s ValueResult (a list of ObserveInfo)."""
        kb = self._key(key)
        self._need_couchbase("observe")
        host = self._host
        fut = host._new_future()
        res = ValueResult(key, 0, 0, [])
        host.add_state(lib.cbffi_observe, (kb, len(kb), bool(master_only)),
                       _Observe(host, fut, {host.next: res}, res), key)
        return fut

    def observe_multi(self, keys, master_only=False):
        """A future of the sync ``observe_multi``'s MultiResult."""
        klist = self._unique(k for k, _ in self._pairs(keys))
        kbs = [self._key(k) for k in klist]
        self._need_couchbase("observe")
        host = self._host
        fut = host._new_future()
        mres = MultiResult()
        state = _Observe(host, fut, {}, mres)
        for key, kb in zip(klist, kbs):
            res = mres[key] = state.by_cookie[host.next] = ValueResult(key, 0, 0, [])
            state.left += 1
            host.add_state(lib.cbffi_observe, (kb, len(kb), bool(master_only)), state, key)
        state.left -= 1  # the first was counted at construction
        return fut

    def flush(self):
        """A future of OperationResult once every server has flushed."""
        host = self._host
        fut = host._new_future()
        host.add_state(lib.cbffi_flush, (), _Broadcast(
            host, fut, 1, lambda rows: OperationResult(None, 0, 0)))
        return fut

    # BEGIN subdoc block: lookup_in / mutate_in / retrieve_in are the sync Bucket's
    # (same checks, same results and exceptions); only the run differs.
    def _subdoc_run(self, res, kinds, quiet, args):
        """A future of the SubdocResult (or of its exception)."""
        host = self._host
        fut = host._new_future()
        host.add_state(lib.cbffi_subdoc, args, _Subdoc(host, fut, res, kinds, quiet, args[0]),
                       res.key)
        return fut
    # END subdoc block

    # BEGIN data-structure block: the sync Bucket's map_* / list_* / set_* / queue_*
    # generators, each step's future chained to the next (Host._when_done).
    def _ds_run(self, what, gen):
        """A future of what the data-structure generator ``gen`` returns (or raises)."""
        host = self._host
        if host.c is None:
            raise E.ObjectDestroyedError("the Bucket is closed")
        self._need_couchbase("the data-structure API (%s)" % (what,))
        out = host._new_future()

        def step(value, exc):
            while True:
                try:
                    y = gen.send(value) if exc is None else gen.throw(exc)
                except StopIteration as stop:
                    host._resolve(out, stop.value)
                    return
                except Exception as e:      # noqa: BLE001 - it is the operation's outcome
                    host._reject(out, e)
                    return
                if not host._is_future(y):
                    value, exc = y, None
                    continue
                host._when_done(y, lambda v: step(v, None), lambda e: step(None, e))
                return
        step(None, None)
        return out
    # END data-structure block

    def append_items(self, items, **kwargs):
        """As the sync ``append_items``: on success each item's value gets its fragment."""
        def added(mres):
            for item, opts in items:
                if item.success:
                    item.value = item.value + opts["fragment"]
            return mres
        return self._host._then(self.append_multi(items, **kwargs), added)

    def prepend_items(self, items, **kwargs):
        def added(mres):
            for item, opts in items:
                if item.success:
                    item.value = opts["fragment"] + item.value
            return mres
        return self._host._then(self.prepend_multi(items, **kwargs), added)
