"""The couchbase 2.x ``Bucket`` over libcbffi.

A synchronous single-key operation is two calls into C: one to schedule, one
(``cbffi_wait``) that does the IO and harvests the result into a struct array
allocated once per Bucket.  No callbacks; the GIL is released by cffi around
every C call, so threads with their own Buckets run in parallel.
"""
import threading
import warnings

from couchbase_ffi._lowlevel import ffi, lib
from couchbase_ffi import exceptions as E
from couchbase_ffi.result import ValueResult, OperationResult, MultiResult
from couchbase_ffi.items import ItemCollection
from couchbase_ffi.transcoder import FMT_JSON, FMT_BYTES, FMT_UTF8, encode_value, decode_value

LOCKMODE_NONE = 0
LOCKMODE_EXC = 1
LOCKMODE_WAIT = 2

_MAX_TTL = 0xFFFFFFFF
_MAX_KEY = 250
_RES_CAP = 256

_SET, _ADD, _REPLACE = lib.CBFFI_OP_SET, lib.CBFFI_OP_ADD, lib.CBFFI_OP_REPLACE
_APPEND, _PREPEND = lib.CBFFI_OP_APPEND, lib.CBFFI_OP_PREPEND
_GET_PLAIN, _GET_TOUCH = lib.CBFFI_GET_PLAIN, lib.CBFFI_GET_TOUCH
_unpack = ffi.unpack


def _raise_rc(rc, key=None, result=None, message=None, all_results=None):
    flags = lib.cbffi_errflags(rc)
    cls = E.exc_class(rc, flags)
    if message is None:
        message = ffi.string(lib.cbffi_strerror(rc)).decode()
    raise cls({"rc": rc, "key": key, "result": result, "message": message,
               "all_results": all_results})


def _check_ttl(ttl):
    if ttl.__class__ is not int or ttl < 0 or ttl > _MAX_TTL:
        raise E.ArgumentError("ttl must be an int in 0..%d, got %r" % (_MAX_TTL, ttl))
    return ttl


def _raw_format(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return FMT_BYTES
    if isinstance(value, str):
        return FMT_UTF8
    raise E.ValueFormatError("append/prepend take bytes or str, got %s" % type(value).__name__)


class Bucket(object):
    """A connection to a memcached cluster (``memcached://``) with the couchbase 2.x API."""

    def __init__(self, connection_string=None, password=None, username=None, quiet=False,
                 transcoder=None, lockmode=LOCKMODE_EXC, default_format=FMT_JSON,
                 unlock_gil=True, connstr=None, timeout=None, **kwargs):
        cs = connection_string if connection_string is not None else connstr
        if not isinstance(cs, str):
            raise E.ArgumentError("a connection string (str) is required, got %r" % (cs,))
        if kwargs:
            raise E.ArgumentError("unknown arguments: %s" % ", ".join(sorted(kwargs)))
        self._c = ffi.NULL
        out = ffi.new("cbffi_client **")
        err = ffi.new("char[512]")
        rc = lib.cbffi_client_create(out, cs.encode("utf-8"),
                                     username.encode() if username else ffi.NULL,
                                     password.encode() if password else ffi.NULL, err, 512)
        if rc:
            _raise_rc(rc, message=ffi.string(err).decode("utf-8", "replace"))
        self._c = out[0]
        self._res = ffi.new("cbffi_result[%d]" % _RES_CAP)
        self._connstr = cs
        self.quiet = quiet
        self.default_format = default_format
        self.data_passthrough = False
        self.unlock_gil = unlock_gil  # cffi always releases the GIL around C calls
        self._tc = transcoder
        self._dur = None
        self._pipe = None
        self._lockmode = lockmode
        self._lock = threading.Lock() if lockmode != LOCKMODE_NONE else None
        self._memcached = lib.cbffi_client_type_of(self._c) == lib.CBFFI_TYPE_MEMCACHED
        if timeout is not None:
            self.timeout = timeout
        self._connect()

    # ---- lifecycle ------------------------------------------------------------------
    def _connect(self):
        rc = lib.cbffi_connect(self._c, 0)
        if rc:
            self._sched_error(rc, None)
        lib.cbffi_wait(self._c, self._res, 1)
        rc = self._res[0].rc
        if rc:
            detail = ffi.string(lib.cbffi_client_last_error(self._c)).decode("utf-8", "replace")
            self.close()
            _raise_rc(rc, message="cannot connect to %s: %s" % (self._connstr, detail))

    def close(self):
        """Close the connections; the Bucket cannot be used afterwards."""
        if self._c != ffi.NULL:
            lib.cbffi_client_destroy(self._c)
            self._c = ffi.NULL

    @property
    def closed(self):
        return self._c == ffi.NULL

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # ---- properties -----------------------------------------------------------------
    @property
    def timeout(self):
        return lib.cbffi_client_get_timeout(self._live(), lib.CBFFI_TIMEOUT_OPERATION) / 1e6

    @timeout.setter
    def timeout(self, seconds):
        if not isinstance(seconds, (int, float)) or seconds <= 0:
            raise E.ArgumentError("timeout must be a positive number of seconds")
        lib.cbffi_client_set_timeout(self._live(), lib.CBFFI_TIMEOUT_OPERATION,
                                     int(seconds * 1e6))

    @property
    def server_nodes(self):
        c = self._live()
        return [ffi.string(lib.cbffi_client_server_name(c, i)).decode()
                for i in range(lib.cbffi_client_server_count(c))]

    @property
    def bucket(self):
        return ffi.string(lib.cbffi_client_bucket(self._live())).decode()

    @property
    def transcoder(self):
        return self._tc

    @transcoder.setter
    def transcoder(self, tc):
        self._tc = tc

    # ---- plumbing --------------------------------------------------------------------
    def _live(self):
        if self._c == ffi.NULL:
            raise E.ObjectDestroyedError("the Bucket is closed")
        return self._c

    def _enter(self):
        c = self._c
        if c == ffi.NULL:
            raise E.ObjectDestroyedError("the Bucket is closed")
        lock = self._lock
        if lock is not None:
            if self._lockmode == LOCKMODE_EXC:
                if not lock.acquire(False):
                    raise E.ObjectThreadError(
                        "another thread is using this Bucket (lockmode=LOCKMODE_EXC)")
            else:
                lock.acquire()
        return c

    def _leave(self):
        if self._lock is not None:
            self._lock.release()

    def _key(self, key):
        if key.__class__ is str and self._tc is None:
            kb = key.encode("utf-8")
        elif self._tc is not None:
            try:
                kb = self._tc.encode_key(key)
            except E.CouchbaseError:
                raise
            except Exception as e:
                raise E.ValueFormatError("cannot encode key %r: %s" % (key, e), key=key)
        elif isinstance(key, bytes):
            kb = key
        else:
            raise E.ValueFormatError("keys must be str or bytes, got %s" % type(key).__name__,
                                     key=key)
        n = len(kb)
        if n == 0 or n > _MAX_KEY:
            raise E.ArgumentError("key must be 1..250 bytes, got %d" % n, key=key)
        return kb

    def _value(self, value, fmt):
        if fmt is None:
            fmt = self.default_format
        if self._tc is not None:
            return self._tc.encode_value(value, fmt)
        if fmt == FMT_BYTES and value.__class__ is bytes:
            return value, FMT_BYTES
        return encode_value(value, fmt)

    def _decode(self, r, no_format):
        raw = _unpack(r.value, r.nvalue) if r.nvalue else b""
        if no_format or self.data_passthrough:
            return raw
        return self._decode_bytes(raw, r.flags)

    def _sched_error(self, rc, key):
        msg = ffi.string(lib.cbffi_client_last_error(self._c)).decode("utf-8", "replace")
        _raise_rc(rc, key=key, message=msg)

    def pipeline(self):
        """Context manager: operations inside are sent together when the block ends.

        Each call returns its result object at once; it is filled in at the end,
        and the first failure is raised then.  ``*_multi`` calls cannot be nested.
        """
        return Pipeline(self)

    def durability(self, persist_to=-1, replicate_to=-1, timeout=0.0):
        """Context manager: default persist_to/replicate_to for the operations inside."""
        return _Durability(self, persist_to, replicate_to, timeout)

    def _durability_defaults(self, persist_to, replicate_to):
        d = getattr(self, "_dur", None)
        if d is None:
            return persist_to, replicate_to
        return persist_to or d[0], replicate_to or d[1]

    def _no_durability(self, persist_to, replicate_to):
        if persist_to or replicate_to:
            raise E.NotSupportedError(
                "persist_to/replicate_to need a Couchbase bucket; memcached has no durability")

    # ---- single-key operations -------------------------------------------------------
    def get(self, key, ttl=0, quiet=None, replica=False, no_format=False):
        """Read a key; ``ttl`` also sets its expiry (get-and-touch)."""
        if replica:
            raise E.NotSupportedError("replica reads need a Couchbase bucket")
        kb = self._key(key)
        if self._pipe is not None:
            return self._pipe.get(kb, key, ttl, quiet, no_format)
        c = self._enter()
        try:
            if ttl:
                rc = lib.cbffi_get(c, kb, len(kb), _GET_TOUCH, _check_ttl(ttl), 0)
            else:
                rc = lib.cbffi_get(c, kb, len(kb), _GET_PLAIN, 0, 0)
            if rc:
                self._sched_error(rc, key)
            lib.cbffi_wait(c, self._res, 1)
            r = self._res[0]
            rc = r.rc
            if rc == 0:
                n = r.nvalue
                data = _unpack(r.value, n) if n else b""
                flags = r.flags
                if not (no_format or self.data_passthrough or
                        (flags == FMT_BYTES and self._tc is None)):
                    data = self._decode_bytes(data, flags)
                return ValueResult(key, 0, r.cas, data, flags)
        finally:
            self._leave()
        res = ValueResult(key, rc)
        if rc == lib.CBFFI_KEY_ENOENT and (self.quiet if quiet is None else quiet):
            return res
        _raise_rc(rc, key, res)

    def _store(self, op, key, value, cas, ttl, fmt, persist_to, replicate_to):
        if self._dur is not None:
            persist_to, replicate_to = self._durability_defaults(persist_to, replicate_to)
        if persist_to or replicate_to:
            self._no_durability(persist_to, replicate_to)
        kb = self._key(key)
        vb, flags = self._value(value, fmt)
        if ttl:
            _check_ttl(ttl)
        if cas.__class__ is not int:
            raise E.ArgumentError("cas must be an int")
        if self._pipe is not None:
            return self._pipe.add(
                lib.cbffi_store(self._c, op, kb, len(kb), vb, len(vb), flags, ttl, cas,
                                len(self._pipe.results)), OperationResult(key), "store")
        c = self._enter()
        try:
            rc = lib.cbffi_store(c, op, kb, len(kb), vb, len(vb), flags, ttl, cas, 0)
            if rc:
                self._sched_error(rc, key)
            lib.cbffi_wait(c, self._res, 1)
            r = self._res[0]
            rc = r.rc
            if rc == 0:
                return OperationResult(key, 0, r.cas)
        finally:
            self._leave()
        _raise_rc(rc, key, OperationResult(key, rc))

    def upsert(self, key, value, cas=0, ttl=0, format=None, persist_to=0, replicate_to=0):
        return self._store(_SET, key, value, cas, ttl, format, persist_to, replicate_to)

    def insert(self, key, value, ttl=0, format=None, persist_to=0, replicate_to=0):
        return self._store(_ADD, key, value, 0, ttl, format, persist_to, replicate_to)

    def replace(self, key, value, cas=0, ttl=0, format=None, persist_to=0, replicate_to=0):
        return self._store(_REPLACE, key, value, cas, ttl, format, persist_to, replicate_to)

    def append(self, key, value, cas=0, format=None, persist_to=0, replicate_to=0):
        """Add bytes (or UTF-8 text) after the stored value."""
        return self._store(_APPEND, key, value, cas, 0, format or _raw_format(value),
                           persist_to, replicate_to)

    def prepend(self, key, value, cas=0, format=None, persist_to=0, replicate_to=0):
        """Add bytes (or UTF-8 text) before the stored value."""
        return self._store(_PREPEND, key, value, cas, 0, format or _raw_format(value),
                           persist_to, replicate_to)

    def _simple(self, key, sched, quiet=False, kind="store"):
        kb = self._key(key)
        if self._pipe is not None:
            res = ValueResult(key) if kind == "counter" else OperationResult(key)
            self._pipe.add(sched(self._c, kb, len(self._pipe.results)), res, kind, quiet)
            return res, None, None
        c = self._enter()
        try:
            rc = sched(c, kb, 0)
            if rc:
                self._sched_error(rc, key)
            lib.cbffi_wait(c, self._res, 1)
            r = self._res[0]
            rc, cas, u64 = r.rc, r.cas, r.u64
        finally:
            self._leave()
        return rc, cas, u64

    def remove(self, key, cas=0, quiet=None, persist_to=0, replicate_to=0):
        self._no_durability(persist_to, replicate_to)
        quiet = self.quiet if quiet is None else quiet
        rc, cas2, _ = self._simple(
            key, lambda c, kb, i: lib.cbffi_remove(c, kb, len(kb), cas, i), quiet)
        if cas2 is None:
            return rc  # pipelined: the result is filled in at the end
        res = OperationResult(key, rc, cas2)
        if rc == 0 or (rc == lib.CBFFI_KEY_ENOENT and quiet):
            return res
        _raise_rc(rc, key, res)

    def counter(self, key, delta=1, initial=None, ttl=0):
        """Add ``delta`` (may be negative); ``initial`` creates a missing key, else NotFoundError."""
        if not isinstance(delta, int) or isinstance(delta, bool) or delta == 0 \
                or abs(delta) >= 2 ** 63:
            raise E.ArgumentError("delta must be a non-zero int, got %r" % (delta,))
        if initial is not None and (not isinstance(initial, int) or initial < 0
                                    or initial >= 2 ** 64):
            raise E.ArgumentError("initial must be None or an int in 0..2**64-1")
        _check_ttl(ttl)
        create = initial is not None
        rc, cas, u64 = self._simple(key, lambda c, kb, i: lib.cbffi_counter(
            c, kb, len(kb), delta, initial or 0, create, ttl, i), kind="counter")
        if cas is None:
            return rc
        if rc:
            _raise_rc(rc, key, ValueResult(key, rc))
        return ValueResult(key, 0, cas, u64, 0)

    def touch(self, key, ttl=0):
        _check_ttl(ttl)
        rc, cas, _ = self._simple(key, lambda c, kb, i: lib.cbffi_touch(c, kb, len(kb), ttl, i))
        if cas is None:
            return rc
        if rc:
            _raise_rc(rc, key, OperationResult(key, rc))
        return OperationResult(key, 0, cas)

    def lock(self, key, ttl=0):
        raise E.NotSupportedError("lock needs a Couchbase bucket (GET_LOCKED); "
                                  "memcached cannot lock keys")

    def unlock(self, key, cas):
        raise E.NotSupportedError("unlock needs a Couchbase bucket; memcached cannot lock keys")

    def stats(self, keys=None):
        """{stat: {server: value}} from every server (``keys``: stat groups)."""
        groups = [None] if keys is None else ([keys] if isinstance(keys, str) else list(keys))
        out = {}
        names = self.server_nodes
        c = self._enter()
        try:
            for g in groups:
                gb = g.encode() if g else ffi.NULL
                rc = lib.cbffi_stats(c, gb, len(g) if g else 0, 0)
                if rc:
                    self._sched_error(rc, g)
                n = lib.cbffi_wait(c, self._res, _RES_CAP)
                while n:
                    for i in range(n):
                        r = self._res[i]
                        if r.final and r.rc:
                            _raise_rc(r.rc, g)
                        if r.nkey:
                            k = _unpack(r.key, r.nkey).decode()
                            v = _unpack(r.value, r.nvalue).decode() if r.nvalue else ""
                            out.setdefault(k, {})[names[r.server]] = v
                    n = lib.cbffi_harvest(c, self._res, _RES_CAP)
        finally:
            self._leave()
        return out

    # ---- multi ----------------------------------------------------------------------
    def _run_multi(self, pairs, sched, make, quiet=False, okrcs=()):
        if self._pipe is not None:
            raise E.PipelineError("multi operations cannot run inside a pipeline")
        """Schedule sched(c, kb, arg, i) for each (key, arg); one wait; MultiResult."""
        keys = self._unique(k for k, _ in pairs)
        encoded = [(self._key(k), arg) for k, arg in pairs]
        mres = MultiResult()
        res = self._res
        c = self._enter()
        try:
            for i, (kb, arg) in enumerate(encoded):
                rc = sched(c, kb, arg, i)
                if rc:
                    self._abandon(c)
                    self._sched_error(rc, keys[i])
            n = lib.cbffi_wait(c, res, _RES_CAP)
            while n:
                for j in range(n):
                    r = res[j]
                    key = keys[r.cookie]
                    mres[key] = make(key, r)
                n = lib.cbffi_harvest(c, res, _RES_CAP)
        finally:
            self._leave()
        return self._finish_multi(mres, quiet, okrcs)

    @staticmethod
    def _pairs(kv, default=None):
        if isinstance(kv, dict):
            return list(kv.items())
        items = getattr(kv, "_as_pairs", None)
        if items is not None:
            return items()
        return [(k, default) for k in kv]

    def get_multi(self, keys, ttl=0, quiet=None, replica=False, no_format=False):
        if replica:
            raise E.NotSupportedError("replica reads need a Couchbase bucket")
        mode = _GET_TOUCH if ttl else _GET_PLAIN
        _check_ttl(ttl)
        if isinstance(keys, ItemCollection):
            return self._get_items(keys, ttl, quiet, no_format)
        if self._pipe is not None:
            raise E.PipelineError("multi operations cannot run inside a pipeline")
        klist = self._unique(keys)
        encoded = [self._key(k) for k in klist]
        mres = MultiResult()
        res = self._res
        get = lib.cbffi_get
        raw = no_format or self.data_passthrough
        c = self._enter()
        try:
            for i, kb in enumerate(encoded):
                rc = get(c, kb, len(kb), mode, ttl, i)
                if rc:
                    self._abandon(c)
                    self._sched_error(rc, klist[i])
            n = lib.cbffi_wait(c, res, _RES_CAP)
            while n:
                for j in range(n):
                    r = res[j]
                    key = klist[r.cookie]
                    rc = r.rc
                    if rc:
                        mres[key] = ValueResult(key, rc)
                        continue
                    flags = r.flags
                    data = _unpack(r.value, r.nvalue) if r.nvalue else b""
                    if not raw:
                        data = self._decode_bytes(data, flags)
                    mres[key] = ValueResult(key, 0, r.cas, data, flags)
                n = lib.cbffi_harvest(c, res, _RES_CAP)
        finally:
            self._leave()
        return self._finish_multi(mres, self.quiet if quiet is None else quiet,
                                  (lib.CBFFI_KEY_ENOENT,))

    def _get_items(self, coll, ttl, quiet, no_format):
        items = {item.key: item for item, _ in coll._items_and_options()}
        mres = self.get_multi(list(items), ttl=ttl, quiet=True, no_format=no_format)
        for key, r in mres.items():
            item = items[key]
            item.rc = r.rc
            if not r.rc:
                item.value, item.cas, item.flags = r.value, r.cas, r.flags
            mres[key] = item
        mres.all_ok = all(not i.rc for i in items.values())
        return self._finish_multi(mres, self.quiet if quiet is None else quiet,
                                  (lib.CBFFI_KEY_ENOENT,))

    def _decode_bytes(self, data, flags):
        if self._tc is not None:
            return self._tc.decode_value(data, flags)
        if flags == FMT_BYTES:
            return data
        return decode_value(data, flags)

    def _unique(self, keys):
        klist = list(keys)
        if len(set(klist)) != len(klist):
            warnings.warn("duplicate keys in a multi operation", stacklevel=3)
        return klist

    def _abandon(self, c):
        """Let what was scheduled finish and drop its results (a later key was refused)."""
        lib.cbffi_wait(c, ffi.NULL, 0)
        while lib.cbffi_harvest(c, self._res, _RES_CAP):
            pass

    @staticmethod
    def _finish_multi(mres, quiet, okrcs):
        failed = None
        for res in mres.values():
            if res.rc:
                mres.all_ok = False
                if failed is None and not (quiet and res.rc in okrcs):
                    failed = res
        if failed is not None:
            _raise_rc(failed.rc, failed.key, failed, all_results=mres)
        return mres

    def _store_multi(self, op, kv, ttl, format, persist_to, replicate_to):
        persist_to, replicate_to = self._durability_defaults(persist_to, replicate_to)
        self._no_durability(persist_to, replicate_to)
        _check_ttl(ttl)
        if isinstance(kv, ItemCollection):
            return self._store_items(op, kv, ttl, format)
        if op in (_APPEND, _PREPEND) and format is None:
            pairs = [(k, self._value(v, _raw_format(v))) for k, v in self._pairs(kv)]
        else:
            pairs = [(k, self._value(v, format)) for k, v in self._pairs(kv)]
        return self._run_multi(
            pairs,
            lambda c, kb, a, i: lib.cbffi_store(c, op, kb, len(kb), a[0], len(a[0]), a[1], ttl,
                                                0, i),
            lambda key, r: OperationResult(key, r.rc, r.cas))

    def _store_items(self, op, coll, ttl, format):
        """Store Items: each item's value, its CAS unless ignore_cas, per-item options."""
        pairs = []
        for item, opts in coll._items_and_options():
            vb, flags = self._value(item.value, opts.get("format", format))
            cas = 0 if (opts.get("ignore_cas") or op == _ADD) else (item.cas or 0)
            pairs.append((item.key, (vb, flags, _check_ttl(opts.get("ttl", ttl)), cas, item)))

        def make(key, r):
            item = dict_items[key]
            item.rc = r.rc
            if not r.rc:
                item.cas = r.cas
            return item
        dict_items = {k: a[4] for k, a in pairs}
        return self._run_multi(
            pairs,
            lambda c, kb, a, i: lib.cbffi_store(c, op, kb, len(kb), a[0], len(a[0]), a[1], a[2],
                                                a[3], i), make)

    def append_multi(self, keys, format=None, persist_to=0, replicate_to=0):
        return self._store_multi(_APPEND, self._raw_pairs(keys), 0, format, persist_to,
                                 replicate_to)

    def prepend_multi(self, keys, format=None, persist_to=0, replicate_to=0):
        return self._store_multi(_PREPEND, self._raw_pairs(keys), 0, format, persist_to,
                                 replicate_to)

    @staticmethod
    def _raw_pairs(kv):
        if isinstance(kv, ItemCollection):
            return kv
        return {k: v for k, v in (kv.items() if isinstance(kv, dict) else kv)}

    def upsert_multi(self, keys, ttl=0, format=None, persist_to=0, replicate_to=0):
        return self._store_multi(_SET, keys, ttl, format, persist_to, replicate_to)

    def insert_multi(self, keys, ttl=0, format=None, persist_to=0, replicate_to=0):
        return self._store_multi(_ADD, keys, ttl, format, persist_to, replicate_to)

    def replace_multi(self, keys, ttl=0, format=None, persist_to=0, replicate_to=0):
        return self._store_multi(_REPLACE, keys, ttl, format, persist_to, replicate_to)

    def remove_multi(self, keys, quiet=None, persist_to=0, replicate_to=0):
        self._no_durability(persist_to, replicate_to)
        pairs = self._pairs(keys, 0)
        return self._run_multi(
            [(k, v if isinstance(v, int) else getattr(v, "cas", 0)) for k, v in pairs],
            lambda c, kb, cas, i: lib.cbffi_remove(c, kb, len(kb), cas or 0, i),
            lambda key, r: OperationResult(key, r.rc, r.cas),
            self.quiet if quiet is None else quiet, (lib.CBFFI_KEY_ENOENT,))

    def counter_multi(self, keys, delta=1, initial=None, ttl=0):
        create = initial is not None
        _check_ttl(ttl)
        return self._run_multi(
            [(k, delta) for k in keys],
            lambda c, kb, d, i: lib.cbffi_counter(c, kb, len(kb), d, initial or 0, create, ttl,
                                                  i),
            lambda key, r: ValueResult(key, r.rc, r.cas, r.u64 if not r.rc else None))

    def touch_multi(self, keys, ttl=0):
        _check_ttl(ttl)
        pairs = self._pairs(keys, ttl)
        return self._run_multi(
            [(k, ttl if v is None else v) for k, v in pairs],
            lambda c, kb, t, i: lib.cbffi_touch(c, kb, len(kb), t, i),
            lambda key, r: OperationResult(key, r.rc, r.cas))

    def lock_multi(self, keys, ttl=0):
        raise E.NotSupportedError("lock needs a Couchbase bucket")

    def unlock_multi(self, keys):
        raise E.NotSupportedError("unlock needs a Couchbase bucket")

    # the 2.x *_items names
    def upsert_items(self, items, **kw):
        return self.upsert_multi(items, **kw)

    def insert_items(self, items, **kw):
        return self.insert_multi(items, **kw)

    def replace_items(self, items, **kw):
        return self.replace_multi(items, **kw)

    def get_items(self, items, **kw):
        return self.get_multi(items, **kw)


class _Durability(object):
    """``with bucket.durability(persist_to=1, replicate_to=1): ...``"""

    def __init__(self, bucket, persist_to, replicate_to, timeout):
        self.bucket = bucket
        self.req = (max(persist_to, 0), max(replicate_to, 0))
        self.timeout = timeout

    def __enter__(self):
        b = self.bucket
        if b._memcached and (self.req[0] or self.req[1]):
            raise E.NotSupportedError("durability needs a Couchbase bucket; a memcached "
                                      "bucket cannot persist or replicate")
        self.saved, b._dur = b._dur, self.req
        return b

    def __exit__(self, *exc):
        self.bucket._dur = self.saved


class Pipeline(object):
    """Batches single-key operations of a Bucket into one round of IO."""

    def __init__(self, bucket):
        self.bucket = bucket
        self.results = []
        self._kinds = []

    def __enter__(self):
        b = self.bucket
        if b._pipe is not None:
            raise E.PipelineError("a pipeline is already active on this Bucket")
        b._enter()
        b._pipe = self
        return self

    def add(self, rc, res, kind, quiet=False):
        if rc:
            self.bucket._sched_error(rc, res.key)
        self.results.append(res)
        self._kinds.append((kind, quiet))
        return res

    def get(self, kb, key, ttl, quiet, no_format):
        b = self.bucket
        mode = _GET_TOUCH if ttl else _GET_PLAIN
        rc = lib.cbffi_get(b._c, kb, len(kb), mode, _check_ttl(ttl), len(self.results))
        return self.add(rc, ValueResult(key), ("get", no_format),
                        b.quiet if quiet is None else quiet)

    def __exit__(self, exc_type, exc, tb):
        b = self.bucket
        b._pipe = None
        try:
            self._collect()
        finally:
            b._leave()
        if exc_type is None:
            self._raise_first()

    def _collect(self):
        b, res = self.bucket, self.bucket._res
        n = lib.cbffi_wait(b._c, res, _RES_CAP)
        while n:
            for j in range(n):
                r = res[j]
                out = self.results[r.cookie]
                kind = self._kinds[r.cookie][0]
                out.rc = r.rc
                if r.rc:
                    continue
                out.cas = r.cas
                if kind == "counter":
                    out.value = r.u64
                elif kind != "store":
                    out.flags = r.flags
                    out.value = b._decode(r, kind[1])
            n = lib.cbffi_harvest(b._c, res, _RES_CAP)

    def _raise_first(self):
        for res, (kind, quiet) in zip(self.results, self._kinds):
            if res.rc and not (quiet and res.rc == lib.CBFFI_KEY_ENOENT):
                _raise_rc(res.rc, res.key, res)

    def __iter__(self):
        return iter(self.results)
