"""The event-loop-agnostic half of the asyncio and Twisted front-ends.

libcbffi never blocks here: the loop watches the sockets the core asks for
(``cbffi_io_watches``), tells it when one is ready (``cbffi_io_event``), arms
one timer for the earliest deadline (``cbffi_io_deadline``/``cbffi_io_tick``)
and, after every event, harvests every finished result in one batch.  No C to
Python callbacks.

A front-end supplies a loop adapter (add/remove reader and writer, call_later)
and a future type; everything else - validation, encoding, results, errors -
is the synchronous Bucket's, so the three front-ends behave alike.
"""

from time import monotonic as _monotonic

from couchbase_ffi._lowlevel import ffi, lib
from couchbase_ffi import bucket as _sync
from couchbase_ffi import exceptions as E
from couchbase_ffi.result import ValueResult, OperationResult, MultiResult

_READ, _WRITE = lib.CBFFI_IO_READ, lib.CBFFI_IO_WRITE
_CAP = 256


class LoopHost(object):
    """Connects one libcbffi client to an event loop through an adapter."""

    def __init__(self, c, loop, deliver):
        self.c = c
        self.loop = loop  # the adapter
        self.deliver = deliver          # called with each harvested cbffi_result
        self.watches = ffi.new("cbffi_watch[16]")
        self.res = ffi.new("cbffi_result[%d]" % _CAP)
        self.watched = {}
        self.timer = None
        self.timer_when = 0.0
        self.flush_pending = False

    def kick(self):
        """Operations were scheduled: send them at the end of this loop turn,
        so that everything scheduled in one turn goes out in one write."""
        if not self.flush_pending:
            self.flush_pending = True
            self.loop.call_soon(self._flush)

    def _flush(self):
        self.flush_pending = False
        if self.c != ffi.NULL:
            lib.cbffi_io_flush(self.c)
            self.after()

    def after(self):
        c = self.c
        n = lib.cbffi_io_watches(c, self.watches, 16)
        while n:
            for i in range(n):
                self._apply(self.watches[i].fd, self.watches[i].events)
            n = lib.cbffi_io_watches(c, self.watches, 16)
        n = lib.cbffi_harvest(c, self.res, _CAP)
        while n:
            for i in range(n):
                self.deliver(self.res[i])
            n = lib.cbffi_harvest(c, self.res, _CAP)
        self._arm()

    def _apply(self, fd, ev):
        old = self.watched.get(fd, 0)
        loop = self.loop
        if old & _READ and not ev & _READ:
            loop.remove_reader(fd)
        if old & _WRITE and not ev & _WRITE:
            loop.remove_writer(fd)
        if ev & _READ and not old & _READ:
            loop.add_reader(fd, self._event, fd, _READ)
        if ev & _WRITE and not old & _WRITE:
            loop.add_writer(fd, self._event, fd, _WRITE)
        if ev:
            self.watched[fd] = ev
        else:
            self.watched.pop(fd, None)

    def _event(self, fd, ev):
        if self.c != ffi.NULL:
            lib.cbffi_io_event(self.c, fd, ev)
            self.after()

    def _tick(self):
        self.timer = None
        if self.c != ffi.NULL:
            lib.cbffi_io_tick(self.c)
            self.after()

    def _arm(self):
        """Keep one timer no later than the earliest deadline.  A timer that
        fires early only re-arms, so it is moved only when a deadline comes
        sooner than it - not once per operation."""
        dl = lib.cbffi_io_deadline(self.c)
        if dl < 0:
            return
        when = _monotonic() + dl / 1e6
        if self.timer is not None and self.timer_when <= when + 0.001:
            return
        if self.timer is not None:
            self.timer.cancel()
        self.timer_when = when
        self.timer = self.loop.call_later(dl / 1e6, self._tick)

    def close(self):
        for fd in list(self.watched):
            self._apply(fd, 0)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class AsyncBucketBase(_sync.Bucket):
    """The couchbase 2.x Bucket whose operations return futures of the front-end.

    Subclasses define _adapter() (the loop adapter), _new_future(),
    _resolve(fut, value), _reject(fut, exc) and _is_done(fut).
    """

    def __init__(self, connection_string=None, loop=None, **kwargs):
        kwargs.setdefault("lockmode", _sync.LOCKMODE_NONE)
        _sync.Bucket.__init__(self, connection_string, **kwargs)
        self._loop = loop
        self._host = None
        self._pending = {}   # cookie -> (future, converter)
        self._next = 1

    def _connect(self):
        pass  # connect() does it without blocking

    def _ensure_host(self):
        if self._host is None:
            self._host = LoopHost(self._live(), self._adapter(), self._deliver)
        return self._host

    def _submit(self, schedule, convert):
        """Schedule with a fresh cookie; returns a future resolved from the result."""
        host = self._ensure_host()
        cookie = self._next
        self._next += 1
        rc = schedule(cookie)
        if rc:
            self._sched_error(rc, None)
        fut = self._new_future()
        self._pending[cookie] = (fut, convert)
        host.kick()
        return fut

    def _deliver(self, r):
        if not r.final:
            return
        entry = self._pending.pop(r.cookie, None)
        if entry is None:
            return
        fut, convert = entry
        if self._is_done(fut):
            return
        try:
            value = convert(r)
        except E.CouchbaseError as e:
            self._reject(fut, e)
        else:
            self._resolve(fut, value)

    def connect(self):
        """Connect without blocking; resolves to the Bucket or fails with ConnectError."""
        def convert(r):
            if r.rc:
                detail = ffi.string(lib.cbffi_client_last_error(self._c)).decode("utf-8",
                                                                                 "replace")
                _sync._raise_rc(r.rc, message="cannot connect to %s: %s" % (self._connstr,
                                                                           detail))
            return self
        return self._submit(lambda ck: lib.cbffi_connect(self._live(), ck), convert)

    def close(self):
        if getattr(self, "_host", None) is not None:
            self._host.close()
            self._host.c = ffi.NULL
        for fut, _ in list(getattr(self, "_pending", {}).values()):
            if not self._is_done(fut):
                self._reject(fut, E.ObjectDestroyedError("the Bucket was closed"))
        if getattr(self, "_pending", None) is not None:
            self._pending.clear()
        _sync.Bucket.close(self)

    # ---- operations ---------------------------------------------------------------
    def get(self, key, ttl=0, quiet=None, replica=False, no_format=False):
        if replica:
            raise E.NotSupportedError("replica reads need a Couchbase bucket")
        kb = self._key(key)
        mode = lib.CBFFI_GET_TOUCH if ttl else lib.CBFFI_GET_PLAIN
        ttl = _sync._check_ttl(ttl)
        quiet = self.quiet if quiet is None else quiet

        def convert(r):
            if r.rc == 0:
                return ValueResult(key, 0, r.cas, self._decode(r, no_format), r.flags)
            res = ValueResult(key, r.rc)
            if r.rc == lib.CBFFI_KEY_ENOENT and quiet:
                return res
            _sync._raise_rc(r.rc, key, res)
        return self._submit(lambda ck: lib.cbffi_get(self._live(), kb, len(kb), mode, ttl, ck),
                            convert)

    def _store(self, op, key, value, cas, ttl, fmt, persist_to, replicate_to):
        self._no_durability(persist_to, replicate_to)
        kb = self._key(key)
        vb, flags = self._value(value, fmt)
        _sync._check_ttl(ttl)

        def convert(r):
            if r.rc:
                _sync._raise_rc(r.rc, key, OperationResult(key, r.rc))
            return OperationResult(key, 0, r.cas)
        return self._submit(lambda ck: lib.cbffi_store(self._live(), op, kb, len(kb), vb,
                                                       len(vb), flags, ttl, cas, ck), convert)

    def remove(self, key, cas=0, quiet=None, persist_to=0, replicate_to=0):
        self._no_durability(persist_to, replicate_to)
        kb = self._key(key)
        quiet = self.quiet if quiet is None else quiet

        def convert(r):
            res = OperationResult(key, r.rc, r.cas)
            if r.rc and not (r.rc == lib.CBFFI_KEY_ENOENT and quiet):
                _sync._raise_rc(r.rc, key, res)
            return res
        return self._submit(lambda ck: lib.cbffi_remove(self._live(), kb, len(kb), cas, ck),
                            convert)

    def counter(self, key, delta=1, initial=None, ttl=0):
        if not isinstance(delta, int) or isinstance(delta, bool) or delta == 0:
            raise E.ArgumentError("delta must be a non-zero int, got %r" % (delta,))
        kb = self._key(key)
        _sync._check_ttl(ttl)

        def convert(r):
            if r.rc:
                _sync._raise_rc(r.rc, key, ValueResult(key, r.rc))
            return ValueResult(key, 0, r.cas, r.u64, 0)
        return self._submit(lambda ck: lib.cbffi_counter(
            self._live(), kb, len(kb), delta, initial or 0, initial is not None, ttl, ck),
            convert)

    def touch(self, key, ttl=0):
        kb = self._key(key)
        _sync._check_ttl(ttl)

        def convert(r):
            if r.rc:
                _sync._raise_rc(r.rc, key, OperationResult(key, r.rc))
            return OperationResult(key, 0, r.cas)
        return self._submit(lambda ck: lib.cbffi_touch(self._live(), kb, len(kb), ttl, ck),
                            convert)

    def _multi(self, keys, submit, quiet, okrcs):
        """One future for many: each key's future feeds a MultiResult."""
        keys = self._unique(keys)
        out = self._new_future()
        mres = MultiResult()
        left = [len(keys)]
        if not keys:
            self._resolve(out, mres)
            return out

        def one(key, value):
            mres[key] = value.result if isinstance(value, E.CouchbaseError) else value
            left[0] -= 1
            if left[0] == 0 and not self._is_done(out):
                try:
                    self._resolve(out, self._finish_multi(mres, quiet, okrcs))
                except E.CouchbaseError as e:
                    self._reject(out, e)
        for k in keys:
            self._chain(submit(k), lambda v, k=k: one(k, v))
        return out

    def get_multi(self, keys, ttl=0, quiet=None, replica=False, no_format=False):
        quiet = self.quiet if quiet is None else quiet
        return self._multi(keys, lambda k: self.get(k, ttl=ttl, quiet=True, replica=replica,
                                                    no_format=no_format),
                           quiet, (lib.CBFFI_KEY_ENOENT,))

    def upsert_multi(self, keys, ttl=0, format=None, persist_to=0, replicate_to=0):
        d = dict(self._pairs(keys))
        return self._multi(list(d), lambda k: self._store(
            lib.CBFFI_OP_SET, k, d[k], 0, ttl, format, persist_to, replicate_to), False, ())

    def _run_multi(self, *args, **kwargs):
        raise E.NotSupportedError("this multi operation is not available on the asyncio "
                                  "Bucket yet (get_multi and upsert_multi are)")

    def pipeline(self):
        raise E.PipelineError("pipelines are for the synchronous Bucket; gather awaitables")

    def stats(self, keys=None):
        raise E.NotSupportedError("stats is not available on the asyncio Bucket yet")
