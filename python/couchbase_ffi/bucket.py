"""The couchbase 2.x ``Bucket`` over libcbffi.

A synchronous get or store is one call into C (``cbffi_get_now`` /
``cbffi_set_now``, or ``cbffi_get_wait`` / ``cbffi_store_wait`` with a ttl,
CAS or other store operation: schedule, do the IO, harvest the result into a
struct array allocated once per Bucket); the other single-key operations are
two (schedule, then ``cbffi_wait``).  Then the fields are read from that struct.
No callbacks.  cffi releases the GIL around every C call, so threads
with their own Buckets run in parallel (``unlock_gil`` is accepted for 2.x
compatibility; the GIL is always released).

``*_multi`` calls and ``pipeline()`` schedule every operation first and then
wait once, so all the operations for one server go out in one write;
``get_multi`` and the store multis schedule the whole batch in one call
(``cbffi_get_multi`` / ``cbffi_store_multi``) and harvest into columns
(``cbffi_wait_columns``: an array per field, converted in bulk).

Operations a memcached bucket cannot do (lock/unlock, durability, replica
reads) raise NotSupportedError before anything is sent; they are gated on
the client type so the couchbase:// path can enable them.
"""
import json
import os
import platform
import threading
import warnings
from urllib.parse import unquote
from array import array as _array

from couchbase_ffi._lowlevel import ffi, lib
from couchbase_ffi import exceptions as E
from couchbase_ffi.result import ValueResult, OperationResult, MultiResult, ObserveInfo
from couchbase_ffi.items import ItemCollection
from couchbase_ffi import connstr as _connstr
from couchbase_ffi import transcoder as _transcoder
from couchbase_ffi.transcoder import FMT_JSON, FMT_BYTES, FMT_UTF8, encode_value, decode_value
# 2.x's couchbase.bucket re-exported the formats, exceptions and results; code
# does ``from couchbase.bucket import Bucket, NotFoundError, FMT_UTF8``.
from couchbase_ffi.transcoder import FMT_PICKLE, FMT_AUTO  # noqa: F401
from couchbase_ffi.exceptions import *  # noqa: F401,F403
from couchbase_ffi.result import Result, HttpResult  # noqa: F401
from couchbase_ffi.result import (  # noqa: F401
    OBS_FOUND, OBS_PERSISTED, OBS_NOTFOUND, OBS_LOGICALLY_DELETED, OBS_MASK)
from couchbase_ffi.transcoder import FMT_LEGACY_MASK, FMT_COMMON_MASK, FMT_MASK  # noqa: F401

LOCKMODE_NONE = 0
LOCKMODE_EXC = 1
LOCKMODE_WAIT = 2

# 2.x's Bucket._privflags bits (couchbase._libcouchbase.PYCBC_CONN_F_*)
PYCBC_CONN_F_WARNEXPLICIT = 1 << 0
PYCBC_CONN_F_CLOSED = 1 << 1
PYCBC_CONN_F_USEITEMRES = 1 << 2
PYCBC_CONN_F_ASYNC = 1 << 3
PYCBC_CONN_F_ASYNC_DTOR = 1 << 4

_MAX_TTL = 0xFFFFFFFF
_MAX_KEY = 250
_MAX_U64 = 0xFFFFFFFFFFFFFFFF
_RES_CAP = 256
# On PyPy the harvest array is also read as int64_t[] for its two uint64_t fields,
# cookie (word 0 of each result) and cas (word 1): PyPy reads a uint64_t field through
# a slow generic path (~320 instructions: it may need a long), an int64_t in ~10.  A
# CAS past 2**63 comes back negative: + 2**64.  CPython reads the fields directly
# (there the view costs more than it saves).
_PYPY = platform.python_implementation() == "PyPy"
_W = ffi.sizeof("cbffi_result") // 8
assert ffi.offsetof("cbffi_result", "cookie") == 0 and ffi.offsetof("cbffi_result", "cas") == 8
_U64 = 1 << 64
# Also on PyPy: a key or value is handed to C from a per-Bucket cdata buffer it was
# copied into (ffi.memmove) rather than as the bytes object itself, which PyPy copies
# into malloc'd memory and frees around every call (~190 instructions saved per
# argument).  Values larger than the buffer go as bytes.
_memmove = ffi.memmove
# The sync shortcuts, bound once: a lookup on ``lib`` costs CPython about 18 ns a call.
_get_now = lib.cbffi_get_now
_set_now = lib.cbffi_set_now
_VBUF = 16384

_SET, _ADD, _REPLACE = lib.CBFFI_OP_SET, lib.CBFFI_OP_ADD, lib.CBFFI_OP_REPLACE
_APPEND, _PREPEND = lib.CBFFI_OP_APPEND, lib.CBFFI_OP_PREPEND
_GET_PLAIN, _GET_TOUCH, _GET_LOCK = lib.CBFFI_GET_PLAIN, lib.CBFFI_GET_TOUCH, lib.CBFFI_GET_LOCK
_ENOENT = lib.CBFFI_KEY_ENOENT
_MEMCACHED = lib.CBFFI_TYPE_MEMCACHED
_OP_TIMEOUT = lib.CBFFI_TIMEOUT_OPERATION
_DUR_TIMEOUT = lib.CBFFI_TIMEOUT_DURABILITY
_DUR_INTERVAL = lib.CBFFI_TIMEOUT_DURABILITY_INTERVAL
_CONFIG_POLL = lib.CBFFI_TIMEOUT_CONFIG_POLL
_CONFIG_POLL_NAME = "config_poll_interval"
# sub-document (the subdoc block of Bucket)
_LOOKUP_IN, _MUTATE_IN = lib.CBFFI_OP_LOOKUP_IN, lib.CBFFI_OP_MUTATE_IN
_SD_MKDOC, _SD_ADD = lib.CBFFI_SDDOC_MKDOC, lib.CBFFI_SDDOC_ADD
_SD_MULTI_FAILURE, _SD_PATH_ENOENT = lib.CBFFI_SUBDOC_MULTI_FAILURE, lib.CBFFI_SUBDOC_PATH_ENOENT
_PROTOCOL_ERROR = lib.CBFFI_PROTOCOL_ERROR


def _json_encode_now(v):
    return _transcoder._json_encode(v)

# What a harvested result fills in on its result object (see _Batch.collect)
_K_OP, _K_GET, _K_GET_RAW, _K_COUNTER = 0, 1, 2, 3

# Copying a value out of the client's buffer: ffi.unpack beats ffi.buffer()[:]
# on CPython (150 vs 200 ns for 32 bytes) and ties with it on PyPy (9 ns);
# tools/py_perf.py measures both.
_copy = ffi.unpack

# Building a result on the hot paths: object.__new__ plus slot stores costs CPython 3.11
# about 550 instructions less than calling the class (whose __init__ is Python); same
# object, the JIT makes both the same on PyPy.
_alloc = object.__new__


# BEGIN mutation tokens: what a Bucket opened with fetch_mutation_tokens keeps
import weakref as _weakref  # noqa: E402


class _Tokens(object):
    """The mutation tokens of a couchbase:// Bucket with ``fetch_mutation_tokens``
    (or ``enable_mutation_tokens``): ``take`` puts a harvested result's token on
    its result object (``_mutinfo``) and keeps the newest per vbucket for
    ``Bucket._mutinfo()`` / ``MutationState.add_all``."""
    __slots__ = ("name", "last")

    def __init__(self, name):
        self.name = name
        self.last = {}      # vbucket -> (vbucket, uuid, seqno, bucket)

    def take(self, out, r):
        seq = r.seqno
        if seq:
            vb = r.vbucket
            t = out._mt = (vb, r.vbuuid, seq, self.name)
            self.last[vb] = t


class _StoreMT(object):
    """A token-reading Bucket's ``_store``: calls its ``_store_mt`` through a weak
    reference, so that the Bucket does not refer to itself (a bound method in its
    own __dict__ would be a cycle: the Bucket, and its connections, would outlive
    the last reference until the GC ran, unlike any other Bucket)."""
    __slots__ = ("_ref",)

    def __init__(self, bucket):
        self._ref = _weakref.ref(bucket)

    def __call__(self, *args):
        return self._ref()._store_mt(*args)
# END mutation tokens


def _raise_rc(rc, key=None, result=None, message=None, all_results=None):
    raise E.exc_from_rc(rc, key=key, result=result, message=message, all_results=all_results)


class _TokenLock(object):
    """LOCKMODE_EXC's token list seen as a lock (acquire never blocks)."""
    __slots__ = ("_tok",)

    def __init__(self, tok):
        self._tok = tok

    def acquire(self, blocking=True, timeout=-1):
        try:
            self._tok.pop()
            return True
        except IndexError:
            return False

    def release(self):
        self._tok.append(True)


def _lengths(items):
    """uint32_t[] of len(x) for x in items, for cbffi_get_multi / cbffi_store_multi."""
    if _PYPY:  # filled in a loop the JIT compiles: cheaper than converting a list
        n = len(items)
        a = ffi.new("uint32_t[]", n)
        for i in range(n):
            a[i] = len(items[i])
        return a
    return _u32s(list(map(len, items)))


if _array("I").itemsize == 4:
    def _u32s(ints):
        """A uint32_t[] of a list of ints.  CPython: through array.array, whose C loop
        converts ~4x faster than ffi.new's (~9 ns a key on get_multi)."""
        return ffi.from_buffer("uint32_t[]", _array("I", ints))
else:
    def _u32s(ints):
        return ffi.new("uint32_t[]", ints)


class _Columns(object):
    """A cbffi_columns struct with its arrays (cookie, cas, rc, flags, voff, nvalue),
    _RES_CAP entries each, allocated once per Bucket: cbffi_harvest_columns fills
    them.  On PyPy the uint64_t columns are also read through int64_t views (see
    _W above)."""
    __slots__ = ("s", "cookie", "cas", "rc", "flags", "voff", "nvalue", "_keep")

    def __init__(self):
        s = self.s = ffi.new("cbffi_columns *")
        self.cookie = ffi.new("uint64_t[]", _RES_CAP)
        self.cas = ffi.new("uint64_t[]", _RES_CAP)
        self.rc = ffi.new("int32_t[]", _RES_CAP)
        self.flags = ffi.new("uint32_t[]", _RES_CAP)
        self.voff = ffi.new("uint32_t[]", _RES_CAP)
        self.nvalue = ffi.new("uint32_t[]", _RES_CAP)
        s.cap = _RES_CAP
        s.cookie, s.cas, s.rc = self.cookie, self.cas, self.rc
        s.flags, s.voff, s.nvalue = self.flags, self.voff, self.nvalue
        self._keep = None
        if _PYPY:  # read as int64_t: see _W
            self._keep = (self.cookie, self.cas)
            self.cookie = ffi.cast("int64_t *", self.cookie)
            self.cas = ffi.cast("int64_t *", self.cas)


_columns = _Columns
# ffi.unpack of a whole column: a list of ints in one call (CPython)
_NOFAIL = [0] * _RES_CAP  # the rc column when nothing failed
_join = "".join


if _PYPY:
    def _keyed(keys):
        """A MultiResult with every key (value None), in order: on PyPy a loop the JIT
        compiles is cheaper than dict.fromkeys on a dict subclass (310 vs 620
        instructions a key)."""
        mres = MultiResult()
        for key in keys:
            mres[key] = None
        return mres
else:
    _keyed = MultiResult.fromkeys


def _busy():
    raise E.ObjectThreadError("another thread is using this Bucket "
                              "(lockmode=LOCKMODE_EXC; use LOCKMODE_WAIT to serialise)")


def _check_ttl(ttl):
    if ttl.__class__ is not int or ttl < 0 or ttl > _MAX_TTL:
        if isinstance(ttl, int) and not isinstance(ttl, bool) and 0 <= ttl <= _MAX_TTL:
            return int(ttl)
        raise E.ArgumentError("ttl must be an int in 0..%d, got %r" % (_MAX_TTL, ttl),
                              objextra=ttl)
    return ttl


def _check_cas(cas):
    if cas.__class__ is int and 0 <= cas <= _MAX_U64:
        return cas
    if cas is None:
        return 0
    raise E.ArgumentError("cas must be an int in 0..2**64-1, got %r" % (cas,), objextra=cas)


def _check_format(fmt):
    """A default_format: FMT_AUTO or an int flags value (2.x refused the rest)."""
    if fmt is FMT_AUTO or (fmt.__class__ is int and 0 <= fmt <= _MAX_TTL):
        return fmt
    if isinstance(fmt, int) and not isinstance(fmt, bool) and 0 <= fmt <= _MAX_TTL:
        return int(fmt)
    raise E.ArgumentError("default_format must be FMT_JSON, FMT_PICKLE, FMT_BYTES, FMT_UTF8, "
                          "FMT_AUTO or other int flags, got %r" % (fmt,), objextra=fmt)


def _positive_seconds(value):
    """A timeout as 2.x took it: anything float() takes, > 0 (else ValueError)."""
    seconds = float(value)
    if not seconds > 0:
        raise ValueError("Timeout must be greater than 0")  # 2.x's error
    return seconds


_UNITS = (("ms", 1e-3), ("us", 1e-6), ("s", 1.0), ("m", 60.0), ("h", 3600.0))


def _seconds(text):
    """Seconds from "2.5" or a Go-style duration ("2.5s", "500ms", "1m30s")."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    total, rest = 0.0, text
    while rest:
        i = 0
        while i < len(rest) and (rest[i].isdigit() or rest[i] == "."):
            i += 1
        if i == 0:
            raise ValueError(text)
        number, rest = float(rest[:i]), rest[i:]
        for unit, scale in _UNITS:
            if rest.startswith(unit):
                total += number * scale
                rest = rest[len(unit):]
                break
        else:
            raise ValueError(text)
    return total


def _raw_format(value):
    """append/prepend default: the data is added as it is (bytes) or as UTF-8 (str)."""
    if isinstance(value, str):
        return FMT_UTF8
    return FMT_BYTES


class Bucket(object):
    """A Couchbase bucket (``couchbase://host1,host2/bucket``) or a memcached
    cluster (``memcached://host1,host2``) with the couchbase 2.x API.

    ``Bucket(connection_string, password=None, username=None, quiet=False,
    transcoder=None, lockmode=LOCKMODE_EXC, default_format=FMT_JSON,
    unlock_gil=True)``; ``connstr=`` is accepted for ``connection_string`` and
    ``timeout=``/``operation_timeout=`` (seconds) set :attr:`timeout`.
    Connects before returning: ConnectError (a CouchbaseNetworkError) if no
    server is reachable, AuthError for wrong credentials, BucketNotFoundError
    for an unknown bucket, InvalidError for a malformed connection string.
    On couchbase:// the username defaults to the bucket name (pre-5.0
    "classic" credentials) and the password to "".
    """

    def __init__(self, connection_string=None, password=None, username=None, quiet=False,
                 transcoder=None, lockmode=LOCKMODE_EXC, default_format=FMT_JSON,
                 unlock_gil=True, connstr=None, timeout=None, operation_timeout=None,
                 config_cache=None):
        self._c = None
        cs = connection_string if connection_string is not None else connstr
        want_tokens = _connstr.mutation_tokens_asked(cs)
        try:
            cs, applied = _connstr.for_client(cs)
        except TypeError as e:
            raise E.ArgumentError(str(e))
        if lockmode not in (LOCKMODE_NONE, LOCKMODE_EXC, LOCKMODE_WAIT):
            raise E.ArgumentError("lockmode must be LOCKMODE_NONE, _EXC or _WAIT")
        if not unlock_gil:
            lockmode = LOCKMODE_NONE  # 2.x: no GIL release, no lock
        self._fmt = _check_format(default_format)
        if timeout is not None:
            _deprecated("timeout keyword argument",
                        "operation_timeout (with float value) in connection string")
        if config_cache is not None:
            _deprecated("config_cache keyword argument", "config_cache in connection string")
        out = ffi.new("cbffi_client **")
        err = ffi.new("char[512]")
        rc = lib.cbffi_client_create(out, cs.encode("utf-8"), _opt_bytes(username),
                                     _opt_bytes(password), err, 512)
        if rc:
            _raise_rc(rc, message="%s: %s" % (ffi.string(err).decode("utf-8", "replace"), cs))
        self._c = out[0]
        self._res = ffi.new("cbffi_result[%d]" % _RES_CAP)
        self._r0 = self._res[0]
        self._v64 = ffi.cast("int64_t *", self._res)
        self._nsched = ffi.new("size_t *")
        self._cols = _columns()
        if _PYPY:
            self._kbuf = ffi.new("char[%d]" % _MAX_KEY)
            self._vbuf = ffi.new("char[%d]" % _VBUF)
        self._connstr = cs
        self._quiet = bool(quiet)
        self.data_passthrough = False
        self.unlock_gil = unlock_gil  # cffi releases the GIL around every C call anyway
        self.transcoder = transcoder
        self._dur = None
        self._pipe = None
        self._dead_streams = []   # streams a finalizer could not close (_stream.py)
        self._lockmode = lockmode
        # LOCKMODE_EXC: a token list, taken with list.pop() (atomic under the GIL, and a
        # tenth of the cost of Lock.acquire(False) on CPython); empty = a thread is inside.
        # LOCKMODE_WAIT: a real lock, to wait on.
        self._tok = [True] if lockmode == LOCKMODE_EXC else None
        self._lock = threading.Lock() if lockmode == LOCKMODE_WAIT else \
            _TokenLock(self._tok) if lockmode == LOCKMODE_EXC else None
        self._memcached = lib.cbffi_client_type_of(self._c) == _MEMCACHED
        # mutation tokens: as libcouchbase 2.x, only when asked for (a _Tokens or None)
        self._mtok = _Tokens(self.bucket) if want_tokens and not self._memcached else None
        if self._mtok is not None and type(self)._store is Bucket._store:
            # the one-crossing _store does not read tokens (so that it costs nothing
            # without them); this Bucket's own _store reads them (no cycle: _StoreMT)
            self._store = _StoreMT(self)
        self._http_timeouts = {}
        self._cfg_cache_loaded = False
        self._cfg_cache = config_cache or None
        self._bucket_creds = {}
        self._apply_options(applied)
        for t in (timeout, operation_timeout):
            if t is not None:
                self.timeout = t
        self._connect()

    def _apply_options(self, applied):
        """The libcouchbase connection-string options the Bucket applies itself."""
        for name, value in applied.items():
            if name == "config_cache":
                self._cfg_cache = unquote(value) or None
                continue
            try:
                seconds = _seconds(value)
            except ValueError:
                self.close()
                raise E.InvalidError("option %s: %r is not a duration: %s"
                                     % (name, value, self._connstr))
            if name == "durability_timeout":
                lib.cbffi_client_set_timeout(self._c, _DUR_TIMEOUT, max(int(seconds * 1e6), 1))
            elif name == "durability_interval":
                lib.cbffi_client_set_timeout(self._c, _DUR_INTERVAL,
                                             max(int(seconds * 1e6), 1))
            elif name == "http_timeout":  # REST requests that are operations (flush)
                lib.cbffi_client_set_timeout(self._c, lib.CBFFI_TIMEOUT_HTTP,
                                             max(int(seconds * 1e6), 1))
            elif name == "n1ql_timeout":  # N1QL requests (cbffi_query)
                lib.cbffi_client_set_timeout(self._c, lib.CBFFI_TIMEOUT_QUERY,
                                             max(int(seconds * 1e6), 1))
            elif name == "views_timeout":  # views (cbffi_view_request)
                lib.cbffi_client_set_timeout(self._c, lib.CBFFI_TIMEOUT_VIEW,
                                             max(int(seconds * 1e6), 1))
            else:
                self._http_timeouts[name] = seconds

    # ---- lifecycle ------------------------------------------------------------------
    def _connect(self):
        c = self._enter()
        try:
            rc = lib.cbffi_connect(c, 0)
            if rc == 0:
                lib.cbffi_wait(c, self._res, 1)
                rc = self._r0.rc
            detail = ffi.string(lib.cbffi_client_last_error(c)).decode("utf-8", "replace")
        finally:
            self._leave()
        if rc:
            self.close()
            _raise_rc(rc, message="cannot connect to %s%s" % (
                self._connstr, ": " + detail if detail else ""))
        if self._cfg_cache:
            self._write_config_cache()

    def _write_config_cache(self):
        """config_cache=PATH: after bootstrapping, PATH gets what the client learnt of
        the cluster (nodes, bucket, type, replicas, config revision) as JSON.  Written,
        never read back: every Bucket bootstraps from the network (so
        ``_cntl(LCB_CNTL_CONFIG_CACHE_LOADED)`` is 0).  A file that cannot be written
        is ignored, as libcouchbase ignored it."""
        c = self._c
        if c is None:
            return
        doc = {"name": self.bucket, "nodes": self.server_nodes,
               "bucketType": "memcached" if self._memcached or
               lib.cbffi_client_replica_count(c) < 0 else "membase",
               "numReplicas": max(lib.cbffi_client_replica_count(c), 0),
               "rev": lib.cbffi_client_config_rev(c), "writtenBy": "couchbase_ffi"}
        path = self._cfg_cache
        tmp = "%s.%d.tmp" % (path, os.getpid())
        try:
            with open(tmp, "w") as f:
                json.dump(doc, f)
            os.replace(tmp, path)
        except (OSError, ValueError):
            try:
                os.unlink(tmp)
            except OSError:
                pass

    def close(self):
        """Close the connections; any later operation raises ObjectDestroyedError."""
        if self._c is None:
            return
        if self._pipe is not None:
            raise E.PipelineError("close() inside a pipeline")
        self._enter()
        c, self._c = self._c, None
        self.__dict__.pop("_store", None)   # mutation tokens' _StoreMT goes
        self._dead_streams = []             # the client frees every stream
        try:
            lib.cbffi_client_destroy(c)
        finally:
            self._leave()

    _close = close  # the 2.x name

    @property
    def closed(self):
        return self._c is None

    @property
    def connected(self):
        """True until close(): this Bucket connected in its constructor."""
        return self._c is not None

    @property
    def _privflags(self):
        """2.x's private flag word: PYCBC_CONN_F_CLOSED once closed, and the bits set
        by the caller (PYCBC_CONN_F_WARNEXPLICIT: duplicate-key warnings go through
        ``warnings.warn_explicit`` with a fresh registry, so each one is shown)."""
        flags = self.__dict__.get("_privflags_set", 0)
        return flags | PYCBC_CONN_F_CLOSED if self._c is None else flags

    @_privflags.setter
    def _privflags(self, value):
        self.__dict__["_privflags_set"] = int(value) & ~PYCBC_CONN_F_CLOSED

    @staticmethod
    def lcb_version():
        """(version string, version number) of the C library, as 2.x's
        ``lcb_version()`` (libcouchbase's): here libcbffi's, reported in
        libcouchbase's numbering of the 2.x API it follows."""
        return ("2.10.0 (libcbffi)", 0x020A00)

    def add_bucket_creds(self, bucket, password):
        """2.x's extra credentials for another bucket (which N1QL and full-text
        queries across buckets used): both must be non-empty (ValueError).  Kept;
        nothing here uses them, as this client runs no queries."""
        if not bucket or not password:
            raise ValueError("Bucket and password must be nonempty")
        self._bucket_creds[bucket] = password

    def _thr_lockop(self, release):
        """2.x's test hook: take (0) or release (1) the Bucket's thread lock;
        ObjectThreadError under LOCKMODE_NONE (there is no lock)."""
        if self._lock is None:
            raise E.ObjectThreadError("lockmode is LOCKMODE_NONE: the Bucket has no lock")
        if release:
            self._lock.release()
        else:
            self._lock.acquire()

    def _cntlstr(self, key, value):
        """2.x's ``lcb_cntl_string``, for the settings this client has:
        operation_timeout, durability_timeout, durability_interval (seconds, or
        durations like "500ms"), config_poll_interval (0 turns polling off,
        else at least 50 ms); the libcouchbase options listed in
        ``couchbase_ffi.connstr.IGNORED_OPTIONS`` are accepted and ignored;
        anything else is NotSupportedError."""
        if key in _connstr.IGNORED_OPTIONS or key == "config_cache":
            return None   # config_cache: too late to matter after the bootstrap
        kinds = {"operation_timeout": _OP_TIMEOUT, "durability_timeout": _DUR_TIMEOUT,
                 "durability_interval": _DUR_INTERVAL, "n1ql_timeout": lib.CBFFI_TIMEOUT_QUERY,
                 "query_timeout": lib.CBFFI_TIMEOUT_QUERY,
                 "views_timeout": lib.CBFFI_TIMEOUT_VIEW}
        if key == "config_poll_interval":
            kinds[key] = _CONFIG_POLL
        if key not in kinds:
            raise E.NotSupportedError("setting %r is not supported by this client" % (key,))
        try:
            usec = int(_seconds(str(value)) * 1e6)
        except ValueError:
            if key != _CONFIG_POLL_NAME or str(value).strip() not in ("0", "0s", "0ms"):
                raise E.ArgumentError("setting %s: %r is not a duration" % (key, value))
            usec = 0
        if kinds[key] == _CONFIG_POLL:
            if lib.cbffi_client_set_timeout(self._live(), _CONFIG_POLL, usec) != lib.CBFFI_OK:
                raise E.ArgumentError("setting %s must be 0 (off) or at least 50ms" % (key,))
            return None
        if usec <= 0:
            raise E.ArgumentError("setting %s must be greater than 0" % (key,))
        lib.cbffi_client_set_timeout(self._live(), kinds[key], usec)
        return None

    # libcouchbase's lcb_cntl codes of the timeouts: a libcbffi timeout kind, or the
    # name of a timeout kept for its property (views/N1QL: no such requests here)
    _CNTL_TIMEOUTS = {0x00: _OP_TIMEOUT, 0x01: lib.CBFFI_TIMEOUT_VIEW, 0x0D: _DUR_TIMEOUT,
                      0x0E: _DUR_INTERVAL, 0x0F: lib.CBFFI_TIMEOUT_HTTP,
                      0x12: lib.CBFFI_TIMEOUT_BOOTSTRAP, 0x3D: lib.CBFFI_TIMEOUT_QUERY,
                      0x46: _CONFIG_POLL}

    # read-only lcb_cntl codes: LCB_CNTL_CONFIG_CACHE_LOADED, LCB_CNTL_CHANGESET
    _CNTL_INFO = frozenset((0x15, 0x1F))

    def _cntl(self, op, value=None, value_type="int"):
        """2.x's ``lcb_cntl`` for the timeouts: LCB_CNTL_OP_TIMEOUT (0x00),
        VIEW_TIMEOUT (0x01), DURABILITY_TIMEOUT/INTERVAL (0x0D, 0x0E), HTTP_TIMEOUT
        (0x0F), CONFIGURATION_TIMEOUT (0x12), N1QL_TIMEOUT (0x3D),
        CONFIG_POLL_INTERVAL (0x46; 0 turns polling off); read or set as
        ``value_type`` "timeout" (seconds, float) or "int"/"uint32_t"/"unsigned"
        (microseconds).  Read-only: CONFIG_CACHE_LOADED (0x15; 1 if this Bucket
        bootstrapped from its ``config_cache`` file, which it never does: 0) and
        CHANGESET (0x1F; the library's version string).  Other codes are
        NotSupportedError."""
        if op in self._CNTL_INFO:
            if value is not None:
                raise E.ArgumentError("lcb_cntl 0x%x is read-only" % (op,))
            self._live()
            if op == 0x1F:
                return self.lcb_version()[0]
            return 1 if self._cfg_cache_loaded else 0
        kind = self._CNTL_TIMEOUTS.get(op)
        if kind is None:
            raise E.NotSupportedError("lcb_cntl 0x%x is not supported by this client" % (op,))
        if value_type not in ("timeout", "uint32_t", "int", "unsigned"):
            raise E.ArgumentError("value_type %r is not supported for timeouts" % (value_type,))
        c = self._live()
        if value is None:
            if isinstance(kind, str):
                usec = int(self._http_timeouts.get(kind, 75.0) * 1e6)
            else:
                usec = lib.cbffi_client_get_timeout(c, kind)
            return usec / 1e6 if value_type == "timeout" else usec
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise E.ArgumentError("a number is required for lcb_cntl 0x%x, got %r" % (op, value))
        usec = int(value * 1e6) if value_type == "timeout" else int(value)
        if kind == _CONFIG_POLL:
            if lib.cbffi_client_set_timeout(c, kind, usec) != lib.CBFFI_OK:
                raise E.ArgumentError("config_poll_interval must be 0 (off) or at least 50ms")
            return None
        if usec <= 0:
            raise E.ArgumentError("timeouts must be greater than 0")
        if isinstance(kind, str):
            self._http_timeouts[kind] = usec / 1e6
        else:
            lib.cbffi_client_set_timeout(c, kind, usec)
        return None

    # 2.x lists its memcached operations for wrappers (couchbase.async and users)
    _MEMCACHED_OPERATIONS = ("upsert", "get", "insert", "append", "prepend", "replace",
                             "remove", "counter", "touch", "lock", "unlock", "endure",
                             "observe", "rget", "stats", "set", "add", "delete")
    _MEMCACHED_NOMULTI = ("stats",)

    @classmethod
    def _gen_memd_wrappers(cls, factory):
        """{name: factory(unbound method, name)} for every memcached operation and its
        ``_multi`` form, as 2.x's Bucket._gen_memd_wrappers."""
        d = {}
        for n in cls._MEMCACHED_OPERATIONS:
            for variant in (n, n + "_multi"):
                try:
                    d[variant] = factory(getattr(cls, variant), variant)
                except AttributeError:
                    if n in cls._MEMCACHED_NOMULTI:
                        continue
                    raise
        return d

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_c", None) is not None and getattr(self, "_pipe", None) is None:
            lib.cbffi_client_destroy(self._c)
            self._c = None

    def __repr__(self):
        if self._c is None:
            return "<%s.%s closed at 0x%x>" % (__name__, type(self).__name__, id(self))
        return "<%s.%s bucket=%s, nodes=%s at 0x%x>" % (
            __name__, type(self).__name__, self.bucket, self.server_nodes, id(self))

    # ---- properties -----------------------------------------------------------------
    @property
    def timeout(self):
        """The operation timeout in seconds (float)."""
        return lib.cbffi_client_get_timeout(self._live(), _OP_TIMEOUT) / 1e6

    @timeout.setter
    def timeout(self, seconds):
        usec = int(_positive_seconds(seconds) * 1e6)
        lib.cbffi_client_set_timeout(self._live(), _OP_TIMEOUT, max(usec, 1))

    @property
    def server_nodes(self):
        """The servers, as "host:port" strings."""
        c = self._live()
        return [ffi.string(lib.cbffi_client_server_name(c, i)).decode()
                for i in range(lib.cbffi_client_server_count(c))]

    @property
    def bucket(self):
        """The bucket name ("" for memcached://)."""
        return ffi.string(lib.cbffi_client_bucket(self._live())).decode()

    def _mutinfo(self):
        """2.x: the newest mutation token this Bucket saw in each vbucket, as
        ``(vbucket, vbucket uuid, seqno)`` tuples ([] without fetch_mutation_tokens)."""
        if self._mtok is None:
            return []
        return [t[:3] for _, t in sorted(self._mtok.last.items())]

    @property
    def transcoder(self):
        """The transcoder (None: the built-in encoding).  A class is instantiated;
        None, False or 0 mean none.  The Bucket calls it through 2.x's checks."""
        return self._tc_obj

    @transcoder.setter
    def transcoder(self, tc):
        if isinstance(tc, type):
            tc = tc()  # 2.x accepted a class too
        self._tc = _transcoder.checked(tc)
        self._tc_obj = tc if self._tc is not None else None

    @property
    def quiet(self):
        """The default of every ``quiet`` argument: True makes a missing key a
        result whose ``success`` is False instead of NotFoundError."""
        return self._quiet

    @quiet.setter
    def quiet(self, value):
        if value is not True and value is not False:
            raise E.ArgumentError("quiet must be True or False, got %r" % (value,),
                                  objextra=value)
        self._quiet = value

    @property
    def default_format(self):
        """The format of values stored without ``format=`` (FMT_JSON unless set)."""
        return self._fmt

    @default_format.setter
    def default_format(self, fmt):
        self._fmt = _check_format(fmt)

    @property
    def is_ssl(self):
        """True on a TLS connection (couchbases://, or ssl=on / no_verify)."""
        return _connstr.is_tls(self._connstr)

    @property
    def views_timeout(self):
        """The timeout of view queries and design-document requests, in seconds
        (default 75, as libcouchbase; connection-string ``views_timeout``)."""
        return lib.cbffi_client_get_timeout(self._live(), lib.CBFFI_TIMEOUT_VIEW) / 1e6

    @views_timeout.setter
    def views_timeout(self, value):
        usec = int(_positive_seconds(value) * 1e6)
        lib.cbffi_client_set_timeout(self._live(), lib.CBFFI_TIMEOUT_VIEW, max(usec, 1))

    # ---- views and design documents (couchbase_ffi.views, couchbase_ffi._design) -------
    def query(self, design, view, use_devmode=False, **kwargs):
        """A View (couchbase_ffi.views.iterator) of ``design``/``view``; iterate it
        for ViewRows.  ``use_devmode=True`` queries ``dev_<design>``; ``itercls=``
        another View class; other arguments go to it (view parameters,
        ``include_docs``, ``streaming``, ``query=``, ``row_processor``).  Bad
        parameters are ArgumentError here, before anything is sent."""
        if isinstance(self._pipe, Pipeline):
            raise E.PipelineError("view queries cannot run inside a pipeline")
        from couchbase_ffi import _design
        return _design.query(self, design, view, use_devmode, **kwargs)

    def bucket_manager(self):
        """A BucketManager (couchbase_ffi.bucketmanager) of this Bucket: design
        documents and N1QL index management.  memcached:// has neither:
        NotSupportedError."""
        if self._memcached:
            raise E.NotSupportedError("the bucket manager (Bucket.bucket_manager) needs a "
                                      "couchbase:// cluster: memcached:// has no view or "
                                      "query service")
        from couchbase_ffi.bucketmanager import BucketManager
        return BucketManager(self)

    def design_create(self, name, ddoc, use_devmode=True, syncwait=0):
        """Store design document ``name`` (``dev_<name>`` with use_devmode); ``ddoc``
        is a dict or its JSON.  ``syncwait`` seconds: wait until it can be read
        back (TimeoutError past that).  Returns an HttpResult."""
        from couchbase_ffi import _design
        return _design.design_create(self, name, ddoc, use_devmode, syncwait)

    def design_get(self, name, use_devmode=True):
        """The design document (HttpResult, ``value`` the decoded document);
        HTTPError (404) if there is none."""
        from couchbase_ffi import _design
        return _design.design_get(self, name, use_devmode)

    def design_publish(self, name, syncwait=0):
        """Copy ``dev_<name>`` to the production ``<name>`` and delete the dev copy."""
        from couchbase_ffi import _design
        return _design.design_publish(self, name, syncwait)

    def design_delete(self, name, use_devmode=True, syncwait=0):
        """Delete the design document; HTTPError (404) if there is none."""
        from couchbase_ffi import _design
        return _design.design_delete(self, name, use_devmode, syncwait)

    @property
    def n1ql_timeout(self):
        """The N1QL timeout in seconds (default 75, as libcouchbase; connection-string
        ``n1ql_timeout`` or ``query_timeout``); a N1QLQuery.timeout can only lower it."""
        return lib.cbffi_client_get_timeout(self._live(), lib.CBFFI_TIMEOUT_QUERY) / 1e6

    @n1ql_timeout.setter
    def n1ql_timeout(self, value):
        usec = int(_positive_seconds(value) * 1e6)
        lib.cbffi_client_set_timeout(self._live(), lib.CBFFI_TIMEOUT_QUERY, max(usec, 1))

    # ---- N1QL (couchbase_ffi.n1ql) ---------------------------------------------------
    def n1ql_query(self, query, *args, **kwargs):
        """A N1QLRequest for ``query`` (a statement or a N1QLQuery); iterate it for the
        rows.  ``itercls=`` another request class; other arguments go to it
        (``row_factory``, ``meta_lookahead``).  See couchbase_ffi.n1ql.  memcached://
        has no query service: NotSupportedError at once.  Inside a pipeline:
        PipelineError, as 2.x."""
        if isinstance(self._pipe, Pipeline):
            raise E.PipelineError("N1QL queries cannot run inside a pipeline")
        if self._memcached:
            raise E.NotSupportedError("N1QL (n1ql_query) needs a couchbase:// cluster; "
                                      "memcached:// has no query service")
        from couchbase_ffi import n1ql
        return n1ql.n1ql_query(self, query, *args, **kwargs)

    def _http_once(self, sched, args):
        """One buffered HTTP request (``sched(c, *args, cookie)``: cbffi_query,
        cbffi_view_request) through the built-in loop: (rc, status, body bytes,
        the client's last error)."""
        c = self._enter()
        try:
            rc = sched(c, *args, 0)
            if rc == 0:
                r = self._r0
                lib.cbffi_wait(c, self._res, 1)
                rc, status = r.rc, r.status
                data = _copy(r.value, r.nvalue) if r.nvalue else b""
            else:
                status, data = 0, b""
            detail = ffi.string(lib.cbffi_client_last_error(c)).decode("utf-8", "replace")
        finally:
            self._leave()
        return rc, status, data, detail

    def _n1ql_run(self, body, timeout_us):
        from couchbase_ffi import n1ql
        return n1ql.run_sync(self, body, timeout_us)

    def _n1ql_stream(self, body, timeout_us):
        from couchbase_ffi import n1ql
        return n1ql.stream_sync(self, body, timeout_us)

    @property
    def lockmode(self):
        return self._lockmode

    # ---- plumbing --------------------------------------------------------------------
    def _live(self):
        if self._c is None:
            raise E.ObjectDestroyedError("the Bucket is closed")
        return self._c

    def _enter(self):
        """The client, with the Bucket held for this thread (per lockmode)."""
        c = self._c
        if c is None:
            raise E.ObjectDestroyedError("the Bucket is closed")
        tok = self._tok
        if tok is not None:
            try:
                tok.pop()
            except IndexError:
                _busy()
        elif self._lock is not None:
            self._lock.acquire()
        return c

    def _try_enter(self, thread=None):
        """Take the Bucket without waiting, for finalizers (which may run in any thread,
        even in this one while it is inside the Bucket): False if it is held; with
        LOCKMODE_NONE (no lock to ask), True only in ``thread``.  _leave() after True."""
        tok = self._tok
        if tok is not None:
            try:
                tok.pop()
            except IndexError:
                return False
            return True
        if self._lock is not None:
            return self._lock.acquire(False)
        return thread is None or thread == threading.get_ident()

    def _leave(self):
        tok = self._tok
        if tok is not None:
            tok.append(True)
        elif self._lock is not None:
            self._lock.release()

    def _key(self, key):
        """The key as bytes, checked; raises before anything is sent."""
        if key.__class__ is str and self._tc is None:
            kb = key.encode("utf-8")
        else:
            kb = self._key_slow(key)
        if 0 < len(kb) <= _MAX_KEY:
            return kb
        if kb:
            raise E.KeyTooLongError("key must be 1..%d bytes, got %d" % (_MAX_KEY, len(kb)),
                                    key=key)
        raise E.ArgumentError("Empty key (i.e. '', empty string) passed", key=key)

    def _key_slow(self, key):
        tc = self._tc
        if tc is not None:
            try:
                kb = tc.encode_key(key)
            except E.CouchbaseError:
                raise
            except Exception as e:
                raise E.ValueFormatError("cannot encode key %r: %s" % (key, e), key=key,
                                         inner_cause=e)
            if not isinstance(kb, bytes):
                raise E.ValueFormatError("encode_key must return bytes, got %s"
                                         % type(kb).__name__, key=key)
            return kb
        if isinstance(key, bytes):
            return key
        if isinstance(key, str):
            return key.encode("utf-8")
        raise E.ValueFormatError("keys must be str or bytes (or set a transcoder), got %s"
                                 % type(key).__name__, key=key, objextra=key)

    def _value(self, value, fmt):
        """(bytes, flags) for value; raises before anything is sent."""
        if fmt is None:
            fmt = self._fmt
        if self._tc is None:
            return encode_value(value, fmt)
        try:
            vb, flags = self._tc.encode_value(value, fmt)
        except E.CouchbaseError:
            raise
        except Exception as e:
            raise E.ValueFormatError("cannot encode value: %s" % (e,), inner_cause=e,
                                     objextra=value)
        if not isinstance(vb, bytes):
            vb = bytes(vb)
        return vb, flags

    def _decode_bytes(self, data, flags):
        if self._tc is None:
            return decode_value(data, flags)
        return self._tc.decode_value(data, flags)

    def _decode(self, r, no_format):
        """The value of harvested result r (copied out of the client's buffer)."""
        n = r.nvalue
        raw = _copy(r.value, n) if n else b""
        if no_format or self.data_passthrough:
            return raw
        return self._decode_bytes(raw, r.flags)

    def _sched_error(self, rc, key):
        msg = ffi.string(lib.cbffi_client_last_error(self._c)).decode("utf-8", "replace")
        _raise_rc(rc, key=key, message=msg or None)

    def _need_couchbase(self, what):
        """Operations a memcached bucket cannot do: refused before anything is sent
        (memcached://, or a memcached-type bucket over couchbase:// once its map is
        known)."""
        c = self._c
        if self._memcached or (c is not None and lib.cbffi_client_config_rev(c) >= 0 and
                               lib.cbffi_client_replica_count(c) < 0):
            raise E.NotSupportedError("%s needs a Couchbase bucket; memcached:// cannot do it"
                                      % (what,))

    def _check_durability(self, persist_to, replicate_to):
        """(persist_to, replicate_to) with the durability() context's defaults;
        NotSupportedError on a memcached bucket, ArgumentError for bad values."""
        if self._dur is not None:
            persist_to = persist_to or self._dur[0]
            replicate_to = replicate_to or self._dur[1]
        for v in (persist_to, replicate_to):
            if v.__class__ is not int or v < -1 or v > 4:
                raise E.ArgumentError("persist_to/replicate_to must be ints in -1..4, got %r"
                                      % (v,), objextra=v)
        if persist_to or replicate_to:
            self._need_couchbase("persist_to/replicate_to (durability)")
        return persist_to, replicate_to

    _no_durability = _check_durability  # the name the async front-ends use

    def pipeline(self):
        """Context manager: the operations inside are sent together when the block ends.

        Each call returns its result object at once; it is filled in when the
        block ends, and ``Pipeline.results`` lists them in call order.  The
        first failure (not silenced by ``quiet``) is raised at the end.
        """
        return Pipeline(self)

    def durability(self, persist_to=-1, replicate_to=-1, timeout=0.0):
        """Context manager: default persist_to/replicate_to for the operations inside.

        On a memcached bucket, asking for any durability raises NotSupportedError
        on entry."""
        return DurabilityContext(self, persist_to, replicate_to, timeout)

    # ---- single-key operations -------------------------------------------------------
    def get(self, key, ttl=0, quiet=None, replica=False, no_format=False):
        """Read a key (a ValueResult); ``ttl`` also sets its expiry (get-and-touch).

        A missing key raises NotFoundError, or with ``quiet`` returns a result
        whose ``success`` is False.  ``replica=True`` reads from the first
        replica that has the key (Couchbase buckets; see :meth:`rget`)."""
        if replica:
            return self.rget(key, quiet=quiet, no_format=no_format)
        if key.__class__ is str and self._tc is None:  # _key(), inlined
            kb = key.encode()
            if not 0 < len(kb) <= _MAX_KEY:
                kb = self._key(key)
        else:
            kb = self._key(key)
        if ttl:
            ttl = _check_ttl(ttl)
        else:
            ttl = 0
        if self._pipe is not None:
            return self._pipe.add(lib.cbffi_get, (kb, len(kb), _GET_TOUCH if ttl else _GET_PLAIN,
                                                  ttl), ValueResult(key),
                                  _K_GET_RAW if no_format else _K_GET, quiet)
        c = self._c
        if c is None:
            raise E.ObjectDestroyedError("the Bucket is closed")
        tok = self._tok  # _enter(), inlined
        if tok is not None:
            try:
                tok.pop()
            except IndexError:
                _busy()
        elif self._lock is not None:
            self._lock.acquire()
        try:
            if _PYPY:
                nk = len(kb)
                _memmove(self._kbuf, kb, nk)
                kb = self._kbuf
            else:
                nk = len(kb)
            if ttl:
                rc = lib.cbffi_get_wait(c, kb, nk, _GET_TOUCH, ttl, self._res)
            else:  # the shortcut with fewer arguments to convert
                rc = _get_now(c, kb, nk, self._res)
            r = self._r0
            if rc == 0:
                n = r.nvalue
                data = _copy(r.value, n) if n else b""
                flags = r.flags
                if _PYPY:
                    cas = self._v64[1]
                    if cas < 0:
                        cas += _U64
                else:
                    cas = r.cas
            elif not r.final:
                self._sched_error(rc, key)
        finally:
            if tok is not None:  # _leave(), inlined
                tok.append(True)
            elif self._lock is not None:
                self._lock.release()
        if rc:
            res = ValueResult(key, rc)
            if rc == _ENOENT and (self.quiet if quiet is None else quiet):
                return res
            _raise_rc(rc, key, res)
        if (flags != FMT_BYTES or self._tc is not None) and \
                not (no_format or self.data_passthrough):
            if self._tc is None:
                data = decode_value(data, flags)
            else:
                data = self._tc.decode_value(data, flags)
        res = _alloc(ValueResult)
        res.key = key
        res.rc = 0
        res.cas = cas
        res.value = data
        res.flags = flags
        return res

    def _store(self, op, key, value, cas, ttl, fmt, persist_to, replicate_to):
        if persist_to or replicate_to or self._dur is not None:
            persist_to, replicate_to = self._check_durability(persist_to, replicate_to)
            if persist_to or replicate_to:
                return self._store_durable(op, key, value, cas, ttl, fmt, persist_to,
                                           replicate_to)
        if key.__class__ is str and self._tc is None:  # _key(), inlined
            kb = key.encode()
            if not 0 < len(kb) <= _MAX_KEY:
                kb = self._key(key)
        else:
            kb = self._key(key)
        if self._tc is None:  # _value(), inlined
            if fmt is None:
                fmt = self._fmt
            if fmt == FMT_BYTES and value.__class__ is bytes:
                vb = value
                flags = FMT_BYTES
            else:
                vb, flags = encode_value(value, fmt)
        else:
            vb, flags = self._value(value, fmt)
        ttl = _check_ttl(ttl) if ttl else 0
        cas = _check_cas(cas) if cas else 0
        if self._pipe is not None:
            return self._pipe.add(lib.cbffi_store, (op, kb, len(kb), vb, len(vb), flags, ttl,
                                                    cas), OperationResult(key), _K_OP, False)
        c = self._c
        if c is None:
            raise E.ObjectDestroyedError("the Bucket is closed")
        tok = self._tok  # _enter(), inlined
        if tok is not None:
            try:
                tok.pop()
            except IndexError:
                _busy()
        elif self._lock is not None:
            self._lock.acquire()
        try:
            nk = len(kb)
            nv = len(vb)
            if _PYPY:
                _memmove(self._kbuf, kb, nk)
                kb = self._kbuf
                if nv <= _VBUF:
                    _memmove(self._vbuf, vb, nv)
                    vb = self._vbuf
            if op == _SET and not (ttl or cas):  # the shortcut with fewer arguments
                rc = _set_now(c, kb, nk, vb, nv, flags, self._res)
            else:
                rc = lib.cbffi_store_wait(c, op, kb, nk, vb, nv, flags, ttl, cas, self._res)
            if rc == 0:
                if _PYPY:
                    cas = self._v64[1]
                    if cas < 0:
                        cas += _U64
                else:
                    cas = self._r0.cas
            elif not self._r0.final:
                self._sched_error(rc, key)
        finally:
            if tok is not None:  # _leave(), inlined
                tok.append(True)
            elif self._lock is not None:
                self._lock.release()
        if rc:
            _raise_rc(rc, key, OperationResult(key, rc))
        res = _alloc(OperationResult)
        res.key = key
        res.rc = 0
        res.cas = cas
        return res

    def _store_mt(self, op, key, value, cas, ttl, fmt, persist_to, replicate_to):
        """_store for a Bucket with mutation tokens: schedule and wait (_run1 takes the
        token), so that the plain one-crossing _store stays as it is."""
        if persist_to or replicate_to or self._dur is not None:
            persist_to, replicate_to = self._check_durability(persist_to, replicate_to)
            if persist_to or replicate_to:
                return self._store_durable(op, key, value, cas, ttl, fmt, persist_to,
                                           replicate_to)
        kb = self._key(key)
        vb, flags = self._value(value, fmt)
        return self._run1(key, OperationResult(key), _K_OP, False, lib.cbffi_store,
                          op, kb, len(kb), vb, len(vb), flags, _check_ttl(ttl) if ttl else 0,
                          _check_cas(cas) if cas else 0)

    def _store_durable(self, op, key, value, cas, ttl, fmt, persist_to, replicate_to):
        kb = self._key(key)
        vb, flags = self._value(value, fmt)
        hook = self.__dict__.get("_dur_testhook")
        if hook is not None and self._pipe is None:
            res = self._run1(key, OperationResult(key), _K_OP, False, lib.cbffi_store, op, kb,
                             len(kb), vb, len(vb), flags, _check_ttl(ttl) if ttl else 0,
                             _check_cas(cas) if cas else 0)
            return self._hooked_endure(hook, res, kb, persist_to, replicate_to, False)
        return self._run1(key, OperationResult(key), _K_OP, False, lib.cbffi_store_durable,
                          op, kb, len(kb), vb, len(vb), flags, _check_ttl(ttl) if ttl else 0,
                          _check_cas(cas) if cas else 0, persist_to, replicate_to)

    def _hooked_endure(self, hook, res, kb, persist_to, replicate_to, removed):
        """2.x's test hook ``_dur_testhook``: a mutation with durability requirements
        is done without them, ``hook(result)`` runs, and then the requirements are
        checked (``endure``, with the durability timeout and interval)."""
        hook(res)
        c = self._live()
        self._run1(res.key, OperationResult(res.key), _K_OP, False, lib.cbffi_endure, kb,
                   len(kb), res.cas, persist_to, replicate_to, removed,
                   lib.cbffi_client_get_timeout(c, _DUR_TIMEOUT),
                   lib.cbffi_client_get_timeout(c, _DUR_INTERVAL))
        return res

    def upsert(self, key, value, cas=0, ttl=0, format=None, persist_to=0, replicate_to=0):
        """Store unconditionally (or only if the CAS still matches, when ``cas`` is given)."""
        return self._store(_SET, key, value, cas, ttl, format, persist_to, replicate_to)

    def insert(self, key, value, ttl=0, format=None, persist_to=0, replicate_to=0):
        """Store only if the key does not exist (else KeyExistsError)."""
        return self._store(_ADD, key, value, 0, ttl, format, persist_to, replicate_to)

    def replace(self, key, value, cas=0, ttl=0, format=None, persist_to=0, replicate_to=0):
        """Store only if the key exists (else NotFoundError)."""
        return self._store(_REPLACE, key, value, cas, ttl, format, persist_to, replicate_to)

    def append(self, key, value, cas=0, format=None, persist_to=0, replicate_to=0):
        """Add ``value`` after the stored value (NotStoredError if the key is missing).

        Without ``format``: str is added as UTF-8, bytes as they are."""
        return self._store(_APPEND, key, value, cas, 0, format or _raw_format(value),
                           persist_to, replicate_to)

    def prepend(self, key, value, cas=0, format=None, persist_to=0, replicate_to=0):
        """Add ``value`` before the stored value; see :meth:`append`."""
        return self._store(_PREPEND, key, value, cas, 0, format or _raw_format(value),
                           persist_to, replicate_to)

    def _run1(self, key, res, kind, quiet, sched, *args):
        """Schedule sched(c, *args, cookie), wait; fill and return ``res``."""
        if self._pipe is not None:
            return self._pipe.add(sched, args, res, kind, quiet)
        c = self._enter()
        try:
            rc = sched(c, *args, 0)
            if rc:
                self._sched_error(rc, key)
            lib.cbffi_wait(c, self._res, 1)
            r = self._r0
            rc = res.rc = r.rc
            if rc == 0:
                res.cas = r.cas
                if self._mtok is not None:
                    self._mtok.take(res, r)
                if kind == _K_COUNTER:
                    res.value = r.u64
                elif kind != _K_OP:
                    res.flags = r.flags
                    res.value = self._decode(r, kind == _K_GET_RAW)
        finally:
            self._leave()
        if rc and not (rc == _ENOENT and (self.quiet if quiet is None else quiet)):
            _raise_rc(rc, key, res)
        return res

    def remove(self, key, cas=0, quiet=None, persist_to=0, replicate_to=0):
        """Delete a key (only if its CAS matches, when ``cas`` is given)."""
        if persist_to or replicate_to or self._dur is not None:
            persist_to, replicate_to = self._check_durability(persist_to, replicate_to)
        kb = self._key(key)
        if persist_to or replicate_to:
            hook = self.__dict__.get("_dur_testhook")
            if hook is not None and self._pipe is None:
                res = self._run1(key, OperationResult(key), _K_OP, quiet, lib.cbffi_remove,
                                 kb, len(kb), _check_cas(cas))
                if not res.success:
                    return res
                return self._hooked_endure(hook, res, kb, persist_to, replicate_to, True)
            return self._run1(key, OperationResult(key), _K_OP, quiet, lib.cbffi_remove_durable,
                              kb, len(kb), _check_cas(cas), persist_to, replicate_to)
        return self._run1(key, OperationResult(key), _K_OP, quiet, lib.cbffi_remove,
                          kb, len(kb), _check_cas(cas))

    def counter(self, key, delta=1, initial=None, ttl=0):
        """Add ``delta`` (negative: subtract, stopping at 0) to a numeric value.

        ``initial`` creates a missing key with that value; with None a missing
        key raises NotFoundError.  The new value is ``result.value``."""
        delta, initial, ttl = _counter_args(delta, initial, ttl)
        kb = self._key(key)
        return self._run1(key, ValueResult(key), _K_COUNTER, False, lib.cbffi_counter,
                          kb, len(kb), delta, initial or 0, initial is not None, ttl)

    def touch(self, key, ttl=0):
        """Set a key's expiry (0: never expires)."""
        ttl = _check_ttl(ttl)
        kb = self._key(key)
        return self._run1(key, OperationResult(key), _K_OP, False, lib.cbffi_touch,
                          kb, len(kb), ttl)

    def lock(self, key, ttl=0):
        """Read and lock a key for ``ttl`` seconds (Couchbase buckets only).

        ``ttl`` is required (ArgumentError without one, as in 2.x); a locked key
        raises TemporaryFailError, a mutation of it without the lock's CAS
        KeyExistsError."""
        ttl = _lock_ttl(ttl)
        kb = self._key(key)
        self._need_couchbase("lock")
        return self._run1(key, ValueResult(key), _K_GET, False, lib.cbffi_get,
                          kb, len(kb), _GET_LOCK, ttl)

    def unlock(self, key, cas):
        """Release a lock taken by :meth:`lock`, given its CAS (Couchbase buckets only).

        A CAS is required (ArgumentError); a wrong one, or a key not locked,
        raises TemporaryFailError."""
        cas = _unlock_cas(cas)
        kb = self._key(key)
        self._need_couchbase("unlock")
        return self._run1(key, OperationResult(key), _K_OP, False, lib.cbffi_unlock,
                          kb, len(kb), cas)

    def endure(self, key, persist_to=-1, replicate_to=-1, cas=0, check_removed=False,
               timeout=5.0, interval=0.010):
        """Wait until ``key`` (at ``cas``, if given) is on disk on ``persist_to``
        nodes and in memory on ``replicate_to`` replicas (-1: every node of its
        vbucket), polling OBSERVE every ``interval`` seconds for up to
        ``timeout``.  ``check_removed`` waits for a deletion instead.  Raises
        TimeoutError, KeyExistsError (the key changed), NotFoundError (it is
        gone) or ArgumentError (more nodes asked than the bucket has)."""
        kb = self._key(key)
        t_us, i_us = _dur_times(timeout, interval)
        args = (_check_cas(cas), _dur_arg(persist_to), _dur_arg(replicate_to))
        self._need_couchbase("endure")
        return self._run1(key, OperationResult(key), _K_OP, False, lib.cbffi_endure,
                          kb, len(kb), *args, bool(check_removed), t_us, i_us)

    def observe(self, key, master_only=False):
        """Where the key is: a ValueResult whose value is a list of ObserveInfo,
        one per node that answered (the active node first asked; replicas too
        unless ``master_only``)."""
        kb = self._key(key)
        self._need_couchbase("observe")
        if self._pipe is not None:
            raise E.PipelineError("observe() cannot run inside a pipeline")
        res = ValueResult(key, 0, 0, [])
        c = self._enter()
        try:
            rc = lib.cbffi_observe(c, kb, len(kb), bool(master_only), 0)
            if rc:
                self._sched_error(rc, key)
            self._collect_observe(c, {0: res})
        finally:
            self._leave()
        if res.rc:
            _raise_rc(res.rc, key, res)
        return res

    def _collect_observe(self, c, by_cookie):
        """Harvest OBSERVE results into by_cookie[cookie].value (lists)."""
        out = self._res
        n = lib.cbffi_wait(c, out, _RES_CAP)
        while n:
            for i in range(n):
                r = out[i]
                res = by_cookie[r.cookie]
                if r.final:
                    res.rc = r.rc
                    for info in res.value:
                        if info.from_master:
                            res.cas = info.cas
                elif r.rc == 0:
                    u = r.u64
                    res.value.append(ObserveInfo(r.flags, r.cas, r.replica == 0,
                                                 u >> 32, u & 0xFFFFFFFF))
            n = lib.cbffi_harvest(c, out, _RES_CAP) if n == _RES_CAP else 0

    def rget(self, key, replica_index=None, quiet=None, no_format=False):
        """Read a replica copy: the first replica that has the key, or replica
        ``replica_index`` (0 = the first).  NotFoundError if none has it (or,
        with ``quiet``, a result whose ``success`` is False)."""
        kb = self._key(key)
        idx = _replica_arg(replica_index)
        self._need_couchbase("replica reads")
        return self._run1(key, ValueResult(key), _K_GET_RAW if no_format else _K_GET, quiet,
                          lib.cbffi_get_replica, kb, len(kb), idx)

    @property
    def configured_replica_count(self):
        """The bucket's replica count (0 for memcached buckets)."""
        return max(lib.cbffi_client_replica_count(self._live()), 0)

    def _vbmap(self, key):
        """(vbucket, server index) of ``key`` (Couchbase buckets; diagnostics)."""
        kb = self._key(key)
        self._need_couchbase("_vbmap")
        vb = ffi.new("uint32_t *")
        srv = ffi.new("int *")
        rc = lib.cbffi_client_vbucket(self._live(), kb, len(kb), vb, srv)
        if rc:
            _raise_rc(rc, key)
        return vb[0], srv[0]

    def stats(self, keys=None, keystats=False):
        """{stat: {server: value}} from every server; ``keys``: a stat group (str)
        or a list/tuple of them (an entry that is not a str or bytes is
        ArgumentError, as in 2.x).

        Numeric values are ints, as in 2.x.  ``keystats`` (per-document stats)
        is NotSupportedError."""
        if keystats:
            raise E.NotSupportedError("stats(keystats=True) is not supported by this client")
        if self._pipe is not None:
            raise E.PipelineError("stats() cannot run inside a pipeline")
        out = {}
        names = self.server_nodes
        for g, gb in _stats_groups(keys):
            for r_key, r_val, server in self._broadcast(lib.cbffi_stats, g,
                                                        gb or ffi.NULL, len(gb or b"")):
                out.setdefault(r_key.decode("utf-8", "replace"), {})[names[server]] = \
                    _maybe_int(r_val.decode("utf-8", "replace"))
        return out

    def flush(self):
        """Delete every item: memcached FLUSH on every server, or for a Couchbase
        bucket the REST doFlush call (NotSupportedError if flush is not enabled)."""
        for _ in self._broadcast(lib.cbffi_flush, None):
            pass
        return OperationResult(None, 0, 0)

    def _broadcast(self, sched, what, *args):
        """Run an every-server operation; [(key, value, server)] of its partial results."""
        rows = []
        c = self._enter()
        try:
            rc = sched(c, *args, 0)
            if rc:
                self._sched_error(rc, what)
            res, final_rc = self._res, 0
            n = lib.cbffi_wait(c, res, _RES_CAP)
            while n:
                for i in range(n):
                    r = res[i]
                    if r.final:
                        final_rc = r.rc
                    elif r.nkey and r.server >= 0:
                        rows.append((_copy(r.key, r.nkey), _copy(r.value, r.nvalue)
                                     if r.nvalue else b"", r.server))
                n = lib.cbffi_harvest(c, res, _RES_CAP) if n == _RES_CAP else 0
        finally:
            self._leave()
        if final_rc:
            _raise_rc(final_rc, what)
        return rows

    # ---- multi ----------------------------------------------------------------------
    @staticmethod
    def _pairs(kv, default=None):
        """[(key, value)] from a dict, or [(key, default)] from any iterable of keys."""
        if isinstance(kv, dict):
            return list(kv.items())
        if isinstance(kv, (str, bytes)):
            raise E.ArgumentError("a *_multi call takes a collection of keys, not one key")
        return [(k, default) for k in kv]

    def _unique(self, keys):
        klist = list(keys)
        if len(set(klist)) != len(klist):
            self._warn_duplicates(5)
        return klist

    def _warn_duplicates(self, stacklevel):
        """RuntimeWarning for a multi call given a key more than once, at the caller's
        line; with PYCBC_CONN_F_WARNEXPLICIT in _privflags, through
        warnings.warn_explicit with a fresh registry, so every one is shown."""
        msg = "Found duplicate key (a multi operation got a key more than once; the " \
              "last result wins)"
        if self.__dict__.get("_privflags_set", 0) & PYCBC_CONN_F_WARNEXPLICIT:
            warnings.warn_explicit(msg, RuntimeWarning, "couchbase", 0, "couchbase", None)
        else:
            warnings.warn(msg, RuntimeWarning, stacklevel=stacklevel)

    @staticmethod
    def _finish_multi(mres, quiet, okrcs):
        """Set all_ok; raise for the first failure not silenced by quiet."""
        failed = None
        for res in mres.values():
            if res.rc:
                mres.all_ok = False
                if failed is None and not (quiet and res.rc in okrcs):
                    failed = res
        if failed is not None:
            _raise_rc(failed.rc, failed.key, failed, all_results=mres)
        return mres

    def _run_multi(self, entries, kind, quiet, okrcs=(_ENOENT,)):
        """entries: [(key, result, sched, args)].  Schedules them all, waits once and
        returns the MultiResult (or, in a pipeline, returns it unfilled)."""
        self._unique(e[0] for e in entries)
        mres = MultiResult()
        for key, res, _, _ in entries:
            mres[key] = res
        if self._pipe is not None:
            return self._pipe.add_multi(entries, mres, kind, quiet)
        batch = _Batch(self)
        c = self._enter()
        try:
            for key, res, sched, args in entries:
                batch.schedule(c, key, res, kind, sched, args)
            batch.collect(c)
        finally:
            self._leave()
        if batch.error is not None:  # a value that did not decode: 2.x attached all_results
            if not batch.error.all_results:
                batch.error.all_results = mres
            raise batch.error
        quiet = self.quiet if quiet is None else quiet
        return self._finish_multi(mres, quiet, okrcs)

    def get_multi(self, keys, ttl=0, quiet=None, replica=False, no_format=False):
        """Read many keys at once: a MultiResult of key -> ValueResult.

        ``keys`` may be any iterable of keys or an ItemCollection (the values
        are stored onto the Items)."""
        if replica:
            return self.rget_multi(keys, quiet=quiet, no_format=no_format)
        ttl = _check_ttl(ttl)
        entries = []
        if isinstance(keys, dict):  # key -> per-key ttl (or {"ttl": n})
            for key, opt in _multi_pairs(keys, "get_multi"):
                t = _opt_ttl(opt, ttl)
                kb = self._key(key)
                entries.append((key, ValueResult(key), lib.cbffi_get,
                                (kb, len(kb), _GET_TOUCH if t else _GET_PLAIN, t)))
        else:
            mode = _GET_TOUCH if ttl else _GET_PLAIN
            if isinstance(keys, ItemCollection):
                pairs = [(item.key, item) for item, _ in _items_of(keys, "get_multi")]
            elif self._pipe is None:
                return self._get_multi_now(_multi_keys(keys, "get_multi"), mode, ttl, quiet,
                                           no_format)
            else:
                pairs = [(k, ValueResult(k)) for k in _multi_keys(keys, "get_multi")]
            for key, res in pairs:
                kb = self._key(key)
                entries.append((key, res, lib.cbffi_get, (kb, len(kb), mode, ttl)))
        return self._run_multi(entries, _K_GET_RAW if no_format else _K_GET, quiet)

    # The multi fast paths (outside a pipeline, not Items): every key (and value) is
    # checked and encoded first, so bad input sends nothing; then one call schedules
    # the batch (cbffi_get_multi / cbffi_store_multi; the cookie is the key's index),
    # one wait, and a tight harvest loop builds each result from its struct.  The MultiResult is made
    # with every key first, so it keeps the caller's order whatever order the replies
    # come in; a duplicated key gets the result that arrives last (its last one).

    def _encode_keys_joined(self, keys):
        """(keys as a list, their checked bytes back to back, a uint32_t[] of their
        lengths, a MultiResult keyed in their order).  Keys that are all str and
        ASCII (no transcoder) are encoded in a few bulk calls: one join and one
        encode for the lot, the lengths by map(len) (an ASCII key's length in
        bytes is its length in characters); anything else key by key."""
        keys = keys if keys.__class__ is list else list(keys)
        if self._tc is None:
            try:
                joined = _join(keys)
            except TypeError:  # not all str
                joined = None
            if joined is not None and joined.isascii():
                if _PYPY:  # a loop the JIT compiles
                    n = len(keys)
                    lens = ffi.new("uint32_t[]", n)
                    for i in range(n):
                        m = len(keys[i])
                        if not 0 < m <= _MAX_KEY:
                            break
                        lens[i] = m
                    else:
                        return keys, joined.encode("ascii"), lens, _keyed(keys)
                else:
                    lens = list(map(len, keys))
                    if min(lens) > 0 and max(lens) <= _MAX_KEY:
                        return keys, joined.encode("ascii"), _u32s(lens), _keyed(keys)
        keys, kbs, mres = self._encode_keys(keys)
        return keys, b"".join(kbs), _lengths(kbs), mres

    def _encode_keys(self, keys):
        """(keys as a list, their checked bytes, a MultiResult keyed in their order)."""
        keys = keys if keys.__class__ is list else list(keys)
        kbs = []
        if self._tc is None:
            for key in keys:
                if key.__class__ is str:
                    kb = key.encode()
                    if not 0 < len(kb) <= _MAX_KEY:
                        kb = self._key(key)
                else:
                    kb = self._key(key)
                kbs.append(kb)
        else:
            for key in keys:
                kbs.append(self._key(key))
        return keys, kbs, _keyed(keys)

    def _abandon(self, c):
        """A scheduling call was refused: let the ops scheduled before it end and
        drop their results, so the client is clean for the next call."""
        lib.cbffi_wait(c, ffi.NULL, 0)
        while lib.cbffi_harvest(c, self._res, _RES_CAP):
            pass

    def _get_multi_now(self, keys, mode, ttl, quiet, no_format):
        keys, kall, klens, mres = self._encode_keys_joined(keys)
        nkeys = len(keys)
        if len(mres) != nkeys:
            self._warn_duplicates(4)
        decode = not (no_format or self.data_passthrough)
        tc = self._tc
        plain = FMT_BYTES if tc is None else -1  # flags that need no decoding
        error = None
        failed = False
        c = self._enter()
        try:
            nsched = self._nsched
            rc = lib.cbffi_get_multi(c, kall, klens, nkeys, mode, ttl, 0, nsched)
            if rc:
                self._abandon(c)
                self._sched_error(rc, keys[nsched[0]])
            # Harvested into columns.  CPython: a list per column (ffi.unpack) and
            # the values in one bytes object, sliced per key.  PyPy: the columns
            # read in place (the JIT makes those plain loads) and each value
            # copied from its place.
            cols = self._cols
            cs = cols.s
            n = lib.cbffi_wait_columns(c, cs)
            while n:
                if _PYPY:
                    vals = cs.values
                    idxs, rcs, cass = cols.cookie, cols.rc, cols.cas
                    flgs, offs, nvs = cols.flags, cols.voff, cols.nvalue
                    rows = range(n)
                else:
                    nb = cs.nvalues
                    blob = _copy(cs.values, nb) if nb else b""
                    rows = zip(_copy(cols.cookie, n),
                               _copy(cols.rc, n) if cs.nfailed else _NOFAIL,
                               _copy(cols.cas, n), _copy(cols.flags, n),
                               _copy(cols.voff, n), _copy(cols.nvalue, n))
                for row in rows:
                    if _PYPY:
                        i = idxs[row]
                        rc = rcs[row]
                        cas = cass[row]
                        if cas < 0:
                            cas += _U64
                        flags = flgs[row]
                        nv = nvs[row]
                        data = _copy(vals + offs[row], nv) if nv else b""
                    else:
                        i, rc, cas, flags, o, nv = row
                        data = blob[o:o + nv]
                    key = keys[i]
                    if rc:
                        mres[key] = ValueResult(key, rc)
                        failed = True
                        continue
                    if decode and flags != plain:
                        try:
                            data = decode_value(data, flags) if tc is None else \
                                tc.decode_value(data, flags)
                        except Exception as e:  # raised once every result is in
                            out = mres[key] = ValueResult(key, 0, cas, None, flags)
                            if error is None:
                                if isinstance(e, E.CouchbaseError):
                                    e.key, e.result = key, out
                                error = e
                            continue
                    out = _alloc(ValueResult)
                    out.key = key
                    out.rc = 0
                    out.cas = cas
                    out.value = data
                    out.flags = flags
                    mres[key] = out
                n = lib.cbffi_harvest_columns(c, cs) if cs.nready else 0
        finally:
            self._leave()
        if error is not None:
            if isinstance(error, E.CouchbaseError) and not error.all_results:
                error.all_results = mres  # as 2.x attached it
            raise error
        if failed:
            return self._finish_multi(mres, self.quiet if quiet is None else quiet,
                                      (_ENOENT,))
        return mres

    def _store_multi_now(self, op, kv, ttl, fmt):
        raw = op == _APPEND or op == _PREPEND
        tc = self._tc
        dfmt = self._fmt if fmt is None else fmt
        pairs = kv.items() if kv.__class__ is dict and kv else \
            _multi_pairs(kv, "a store *_multi", allow_list=False)
        keys, kbs, vbs, fls = [], [], [], []
        for key, value in pairs:
            if key.__class__ is str and tc is None:
                kb = key.encode()
                if not 0 < len(kb) <= _MAX_KEY:
                    kb = self._key(key)
            else:
                kb = self._key(key)
            if raw:
                vb, flags = self._value(value, fmt or _raw_format(value))
            elif tc is not None:
                vb, flags = self._value(value, fmt)
            elif dfmt == FMT_BYTES and value.__class__ is bytes:
                vb, flags = value, FMT_BYTES
            else:
                vb, flags = encode_value(value, dfmt)
            keys.append(key)
            kbs.append(kb)
            vbs.append(vb)
            fls.append(flags)
        mres = _keyed(keys)
        if len(mres) != len(keys):
            self._warn_duplicates(5)
        failed = False
        mt = self._mtok
        c = self._enter()
        try:
            nsched = self._nsched
            flags = ffi.new("uint32_t[]", fls) if _PYPY else _u32s(fls)
            rc = lib.cbffi_store_multi(c, op, b"".join(kbs), _lengths(kbs), b"".join(vbs),
                                       _lengths(vbs), flags, len(kbs), ttl, 0, nsched)
            if rc:
                self._abandon(c)
                self._sched_error(rc, keys[nsched[0]])
            if mt is not None:
                # mutation tokens travel in cbffi_result, not in the columns
                res = self._res
                v64 = self._v64
                n = lib.cbffi_wait(c, res, _RES_CAP)
                while n:
                    for j in range(n):
                        r = res[j]
                        rc = r.rc
                        key = keys[v64[j * _W] if _PYPY else r.cookie]
                        out = _alloc(OperationResult)
                        out.key = key
                        out.rc = rc
                        out.cas = 0
                        if rc:
                            failed = True
                        else:
                            if _PYPY:
                                cas = v64[j * _W + 1]
                                out.cas = cas + _U64 if cas < 0 else cas
                            else:
                                out.cas = r.cas
                            mt.take(out, r)
                        mres[key] = out
                    n = lib.cbffi_harvest(c, res, _RES_CAP) if n == _RES_CAP else 0
                return self._finish_multi(mres, False, ()) if failed else mres
            # harvested into columns, read as in _get_multi_now
            cols = self._cols
            cs = cols.s
            n = lib.cbffi_wait_columns(c, cs)
            while n:
                if cs.nfailed:
                    failed = True
                if _PYPY:
                    idxs, rcs, cass = cols.cookie, cols.rc, cols.cas
                    for j in range(n):
                        key = keys[idxs[j]]
                        out = _alloc(OperationResult)
                        out.key = key
                        rc = out.rc = rcs[j]
                        if rc:
                            out.cas = 0
                        else:
                            cas = cass[j]
                            out.cas = cas + _U64 if cas < 0 else cas
                        mres[key] = out
                else:
                    for i, rc, cas in zip(_copy(cols.cookie, n),
                                          _copy(cols.rc, n) if cs.nfailed else _NOFAIL,
                                          _copy(cols.cas, n)):
                        key = keys[i]
                        out = _alloc(OperationResult)
                        out.key = key
                        out.rc = rc
                        out.cas = 0 if rc else cas
                        mres[key] = out
                n = lib.cbffi_harvest_columns(c, cs) if cs.nready else 0
        finally:
            self._leave()
        if failed:
            return self._finish_multi(mres, False, ())
        return mres

    def _store_multi(self, op, kv, ttl, fmt, persist_to, replicate_to):
        if persist_to or replicate_to or self._dur is not None:
            persist_to, replicate_to = self._check_durability(persist_to, replicate_to)
        ttl = _check_ttl(ttl)
        if self._pipe is None and not isinstance(kv, ItemCollection) and \
                not (persist_to or replicate_to):
            return self._store_multi_now(op, kv, ttl, fmt)
        raw = op in (_APPEND, _PREPEND)
        entries = []
        if isinstance(kv, ItemCollection):
            for item, opts in _items_of(kv, "a store"):
                entries.append(self._item_store_entry(op, item, opts or {}, ttl, fmt, raw))
        else:
            for key, value in _multi_pairs(kv, "a store *_multi", allow_list=False):
                kb = self._key(key)
                vb, flags = self._value(value, fmt or (_raw_format(value) if raw else None))
                entries.append((key, OperationResult(key), lib.cbffi_store,
                                (op, kb, len(kb), vb, len(vb), flags, ttl, 0)))
        if persist_to or replicate_to:
            entries = [(k, r, lib.cbffi_store_durable, a + (persist_to, replicate_to))
                       for k, r, _, a in entries]
        return self._run_multi(entries, _K_OP, False, ())

    def _item_store_entry(self, op, item, opts, ttl, fmt, raw):
        """An Item's value (or its ``fragment`` for append/prepend), its CAS unless
        ``ignore_cas``, and its per-item ``ttl``/``format``."""
        if raw and "fragment" not in opts:
            raise E.ArgumentError("append/prepend of Items needs a 'fragment' option for each "
                                  "item (an ItemOptionDict)", key=item.key, objextra=item)
        value = opts["fragment"] if raw else _ITEM_VALUE(item)
        fmt = opts.get("format", fmt)
        if raw and fmt is None:
            fmt = _raw_format(value)
        vb, flags = self._value(value, fmt)
        cas = 0 if (op == _ADD or opts.get("ignore_cas")) else _check_cas(item.cas or 0)
        kb = self._key(item.key)
        return (item.key, item, lib.cbffi_store,
                (op, kb, len(kb), vb, len(vb), flags, _check_ttl(opts.get("ttl", ttl)), cas))

    def upsert_multi(self, keys, ttl=0, format=None, persist_to=0, replicate_to=0):
        """Store many: ``keys`` is a dict key -> value, or an ItemCollection."""
        return self._store_multi(_SET, keys, ttl, format, persist_to, replicate_to)

    def insert_multi(self, keys, ttl=0, format=None, persist_to=0, replicate_to=0):
        return self._store_multi(_ADD, keys, ttl, format, persist_to, replicate_to)

    def replace_multi(self, keys, ttl=0, format=None, persist_to=0, replicate_to=0):
        return self._store_multi(_REPLACE, keys, ttl, format, persist_to, replicate_to)

    def append_multi(self, keys, format=None, persist_to=0, replicate_to=0):
        return self._store_multi(_APPEND, keys, 0, format, persist_to, replicate_to)

    def prepend_multi(self, keys, format=None, persist_to=0, replicate_to=0):
        return self._store_multi(_PREPEND, keys, 0, format, persist_to, replicate_to)

    def remove_multi(self, keys, quiet=None, persist_to=0, replicate_to=0):
        """Delete many: keys, or a dict key -> CAS (or -> a result carrying ``cas``)."""
        if persist_to or replicate_to or self._dur is not None:
            persist_to, replicate_to = self._check_durability(persist_to, replicate_to)
        entries = []
        for key, cas in self._cas_pairs(keys):
            kb = self._key(key)
            if persist_to or replicate_to:
                entries.append((key, OperationResult(key), lib.cbffi_remove_durable,
                                (kb, len(kb), cas, persist_to, replicate_to)))
            else:
                entries.append((key, OperationResult(key), lib.cbffi_remove, (kb, len(kb), cas)))
        return self._run_multi(entries, _K_OP, quiet)

    def counter_multi(self, keys, delta=1, initial=None, ttl=0):
        """:meth:`counter` for many keys: keys, or a dict key -> delta, or key ->
        {"delta": .., "initial": .., "ttl": ..} (what a key leaves out comes from
        the arguments)."""
        _counter_args(delta, initial, ttl)
        entries = []
        for key, opts in _multi_pairs(keys, "counter_multi"):
            d, i, t = delta, initial, ttl
            if isinstance(opts, dict):
                bad = set(opts) - {"delta", "initial", "ttl"}
                if bad:
                    raise E.ArgumentError("unknown counter_multi option(s) %s for key %r"
                                          % (sorted(bad), key), key=key)
                d, i, t = opts.get("delta", d), opts.get("initial", i), opts.get("ttl", t)
            elif opts is not None:
                d = opts
            d, i, t = _counter_args(d, i, t)
            kb = self._key(key)
            entries.append((key, ValueResult(key), lib.cbffi_counter,
                            (kb, len(kb), d, i or 0, i is not None, t)))
        return self._run_multi(entries, _K_COUNTER, False, ())

    def touch_multi(self, keys, ttl=0):
        """Set the expiry of many keys: keys, or a dict key -> ttl."""
        ttl = _check_ttl(ttl)
        entries = []
        for key, t in _multi_pairs(keys, "touch_multi"):
            kb = self._key(key)
            entries.append((key, OperationResult(key), lib.cbffi_touch,
                            (kb, len(kb), _opt_ttl(t, ttl))))
        return self._run_multi(entries, _K_OP, False, ())

    def lock_multi(self, keys, ttl=0):
        """:meth:`lock` for many keys: keys, or a dict key -> ttl (a ttl is required)."""
        entries = []
        for key, t in _multi_pairs(keys, "lock_multi"):
            t = _lock_ttl(_opt_ttl(t, _check_ttl(ttl)))
            kb = self._key(key)
            entries.append((key, ValueResult(key), lib.cbffi_get,
                            (kb, len(kb), _GET_LOCK, t)))
        self._need_couchbase("lock")
        return self._run_multi(entries, _K_GET, False, ())

    def unlock_multi(self, keys):
        """Unlock many: a dict key -> CAS, or the MultiResult of :meth:`lock_multi`."""
        entries = []
        for key, cas in self._cas_pairs(keys, "unlock_multi"):
            cas = _unlock_cas(cas)
            kb = self._key(key)
            entries.append((key, OperationResult(key), lib.cbffi_unlock, (kb, len(kb), cas)))
        self._need_couchbase("unlock")
        return self._run_multi(entries, _K_OP, False, ())

    def _cas_pairs(self, keys, what="remove_multi"):
        """[(key, CAS)] from keys, a dict key -> CAS (or -> a result, or -> {"cas": ..}),
        a MultiResult, a sequence of results or an ItemCollection."""
        if isinstance(keys, ItemCollection):
            return [(item.key, _check_cas(item.cas or 0)) for item, _ in _items_of(keys, what)]
        out = []
        for k, v in _multi_pairs(keys, what):
            if isinstance(k, Result) and v is None:  # a sequence of results
                k, v = k.key, getattr(k, "cas", 0)
            elif isinstance(v, dict):
                v = v.get("cas", 0)
            out.append((k, _check_cas(getattr(v, "cas", v) or 0)))
        return out

    def endure_multi(self, keys, persist_to=-1, replicate_to=-1, timeout=5.0, interval=0.010,
                     check_removed=False):
        """:meth:`endure` for many keys: keys, a dict key -> CAS, or the
        MultiResult of a mutation (its CAS values are waited for)."""
        t_us, i_us = _dur_times(timeout, interval)
        p, r = _dur_arg(persist_to), _dur_arg(replicate_to)
        entries = []
        for key, cas in self._cas_pairs(keys, "endure_multi"):
            kb = self._key(key)
            entries.append((key, OperationResult(key), lib.cbffi_endure,
                            (kb, len(kb), cas, p, r, bool(check_removed), t_us, i_us)))
        self._need_couchbase("endure")
        return self._run_multi(entries, _K_OP, False, ())

    def observe_multi(self, keys, master_only=False):
        """:meth:`observe` for many keys: a MultiResult of key -> ValueResult."""
        klist = self._unique(k for k, _ in _multi_pairs(keys, "observe_multi"))
        kbs = [self._key(k) for k in klist]
        self._need_couchbase("observe")
        if self._pipe is not None:
            raise E.PipelineError("observe_multi() cannot run inside a pipeline")
        mres = MultiResult()
        by_cookie = {}
        c = self._enter()
        try:
            for i, (key, kb) in enumerate(zip(klist, kbs)):
                rc = lib.cbffi_observe(c, kb, len(kb), bool(master_only), i)
                if rc:
                    _Batch(self).abandon(c)
                    self._sched_error(rc, key)
                by_cookie[i] = mres[key] = ValueResult(key, 0, 0, [])
            self._collect_observe(c, by_cookie)
        finally:
            self._leave()
        return self._finish_multi(mres, False, ())

    def rget_multi(self, keys, replica_index=None, quiet=None, no_format=False):
        """:meth:`rget` for many keys: a MultiResult of key -> ValueResult."""
        idx = _replica_arg(replica_index)
        entries = []
        for key, _ in _multi_pairs(keys, "rget_multi"):
            kb = self._key(key)
            entries.append((key, ValueResult(key), lib.cbffi_get_replica, (kb, len(kb), idx)))
        self._need_couchbase("replica reads")
        return self._run_multi(entries, _K_GET_RAW if no_format else _K_GET, quiet)

    # ---- the 2.x Item calls -----------------------------------------------------------
    def get_items(self, items, **kwargs):
        return self.get_multi(items, **kwargs)

    def upsert_items(self, items, **kwargs):
        return self.upsert_multi(items, **kwargs)

    def insert_items(self, items, **kwargs):
        return self.insert_multi(items, **kwargs)

    def replace_items(self, items, **kwargs):
        return self.replace_multi(items, **kwargs)

    def remove_items(self, items, **kwargs):
        return self.remove_multi(items, **kwargs)

    def append_items(self, items, **kwargs):
        """Append each item's ``fragment`` option; on success item.value gets it too."""
        mres = self.append_multi(items, **kwargs)
        for item, opts in items:
            if item.success:
                item.value = item.value + opts["fragment"]
        return mres

    def prepend_items(self, items, **kwargs):
        """Prepend each item's ``fragment`` option; on success item.value gets it too."""
        mres = self.prepend_multi(items, **kwargs)
        for item, opts in items:
            if item.success:
                item.value = opts["fragment"] + item.value
        return mres

    # ---- sub-document operations (couchbase_ffi.subdocument; 2.x semantics) -----------
    # BEGIN subdoc block: lookup_in / mutate_in / retrieve_in.  The async front-ends
    # override _subdoc_run only (_async.py); everything else is shared.
    _sd_ents = None     # cbffi_subdoc_entry[16], made on first use

    def lookup_in(self, key, *specs, **kwargs):
        """Read several paths of one document atomically: a SubdocResult.

        ``rv[i]`` / ``rv['path']`` give each value (raising that path's error);
        a path that is not there does not make the call fail (``rv.exists(i)``
        is False, ``rv.success`` is False); other path errors (a mismatch, a
        document that is not JSON...) are raised.  A missing document raises
        NotFoundError, or with ``quiet`` returns a result whose ``success`` is
        False."""
        quiet = kwargs.pop("quiet", None)
        if kwargs:
            raise E.ArgumentError("lookup_in: unknown argument(s) %s" % (sorted(kwargs),))
        return self._subdoc(_LOOKUP_IN, key, specs, quiet, 0, 0, 0, 0, 0)

    def retrieve_in(self, key, *paths, **kwargs):
        """``lookup_in(key, *[subdocument.get(p) for p in paths])``."""
        from couchbase_ffi import subdocument as SD
        return self.lookup_in(key, *tuple(SD.get(p) for p in paths), **kwargs)

    def mutate_in(self, key, *specs, **kwargs):
        """Apply several changes to one document atomically (all or none): a
        SubdocResult (counters' new values by index, ``cas``).

        ``cas`` makes it conditional, ``ttl`` sets the document's expiry,
        ``upsert_doc=True`` (alias ``create_doc``) creates a missing document,
        ``insert_doc=True`` creates it and fails (KeyExistsError) if it exists;
        ``persist_to`` / ``replicate_to`` as for upsert.  The first failing
        spec's error is raised (SubdocPathNotFoundError...)."""
        cas = kwargs.pop("cas", 0)
        ttl = kwargs.pop("ttl", 0)
        persist_to = kwargs.pop("persist_to", 0)
        replicate_to = kwargs.pop("replicate_to", 0)
        docflags = kwargs.pop("_sd_doc_flags", 0)
        if kwargs.pop("upsert_doc", False) or kwargs.pop("create_doc", False):
            docflags |= _SD_MKDOC
        if kwargs.pop("insert_doc", False):
            docflags |= _SD_ADD
        if kwargs:
            raise E.ArgumentError("mutate_in: unknown argument(s) %s" % (sorted(kwargs),))
        if docflags & _SD_MKDOC and docflags & _SD_ADD:
            raise E.ArgumentError("upsert_doc and insert_doc exclude each other")
        if persist_to or replicate_to or self._dur is not None:
            persist_to, replicate_to = self._check_durability(persist_to, replicate_to)
        return self._subdoc(_MUTATE_IN, key, specs, False, docflags,
                            _check_ttl(ttl) if ttl else 0, _check_cas(cas) if cas else 0,
                            persist_to, replicate_to)

    def _subdoc(self, op, key, specs, quiet, docflags, ttl, cas, persist_to, replicate_to):
        from couchbase_ffi import subdocument as SD
        self._need_couchbase("sub-document operations (%s)"
                             % ("lookup_in" if op == _LOOKUP_IN else "mutate_in"))
        kb = self._key(key)
        cmds, flags, paths, npaths, values, nvalues, kinds = SD.encode_specs(
            specs, op == _LOOKUP_IN, _json_encode_now)
        n = len(cmds)
        args = (op, kb, len(kb), n, ffi.new("uint8_t[]", cmds), ffi.new("uint8_t[]", flags),
                paths, ffi.new("uint32_t[]", npaths), values or ffi.NULL,
                ffi.new("uint32_t[]", nvalues), docflags, ttl, cas, persist_to, replicate_to)
        res = SD.SubdocResult(key, 0, 0, specs)
        return self._subdoc_run(res, kinds, self.quiet if quiet is None else quiet, args)

    def _subdoc_run(self, res, kinds, quiet, args):
        """Schedule, wait, and make the result (or raise)."""
        if self._pipe is not None:
            raise E.PipelineError("sub-document operations cannot run inside a pipeline")
        c = self._enter()
        try:
            rc = lib.cbffi_subdoc(c, *args, 0)
            if rc:
                self._sched_error(rc, res.key)
            lib.cbffi_wait(c, self._res, 1)
            err = self._subdoc_fill(res, kinds, quiet, args[0], self._r0)
        finally:
            self._leave()
        if err is not None:
            raise err
        return res

    def _subdoc_fill(self, res, kinds, quiet, op, r):
        """Fill res from harvested result r; the exception to raise, or None."""
        rc = res.rc = r.rc
        res.cas = r.cas
        if rc == 0 and self._mtok is not None:
            self._mtok.take(res, r)
        n = len(kinds)
        if rc == 0 or rc == _SD_MULTI_FAILURE:
            ents = self._sd_ents
            if ents is None:
                ents = self._sd_ents = ffi.new("cbffi_subdoc_entry[16]")
            k = lib.cbffi_subdoc_parse(op, rc, r.value, r.nvalue, n, ents)
            if k < 0:       # the core checked it already
                res.rc = _PROTOCOL_ERROR
                return E.exc_from_rc(_PROTOCOL_ERROR, key=res.key, result=res)
            try:
                if op == _LOOKUP_IN:
                    res._results = [self._sd_value(kinds[i], ents[i]) for i in range(k)]
                else:
                    out = [(0, None)] * n
                    for i in range(k):
                        e = ents[i]
                        out[e.index] = self._sd_value(kinds[e.index], e)
                    res._results = out
            except E.CouchbaseError as exc:
                exc.key, exc.result = res.key, res
                return exc
            if rc == 0:
                return None
            for spec_rc, _ in res._results:
                if spec_rc and (spec_rc != _SD_PATH_ENOENT or op != _LOOKUP_IN):
                    return E.exc_from_rc(spec_rc, key=res.key, result=res)
            return None
        if rc == _ENOENT and quiet and op == _LOOKUP_IN:
            return None
        return E.exc_from_rc(rc, key=res.key, result=res)

    def _sd_value(self, kind, e):
        """(rc, value) of one spec's entry."""
        if e.rc:
            return e.rc, None
        from couchbase_ffi import subdocument as SD
        if kind == SD.LCB_SDCMD_EXISTS:
            return 0, None
        raw = _copy(e.value, e.nvalue) if e.nvalue else b""
        if not raw:
            return 0, None
        try:
            text = raw.decode("utf-8")
            if kind == SD.LCB_SDCMD_GET_COUNT or kind == SD.LCB_SDCMD_COUNTER:
                return 0, int(text)
            return 0, _transcoder._json_decode(text)
        except Exception as ex:
            raise E.ValueFormatError("cannot decode a sub-document value: %s" % (ex,),
                                     inner_cause=ex, objextra=raw)
    # END subdoc block

    # BEGIN data-structure block: 2.x's map_* / list_* / set_* / queue_* on lookup_in /
    # mutate_in.  Each operation is a generator that yields what a Bucket call returned
    # and gets back its result (or has its exception thrown in): the sync Bucket runs it
    # directly (_ds_run), the async front-ends chain it over their futures (_async.py).
    # As in 2.x: a missing document raises NotFoundError unless create=True (then an
    # empty container is inserted and the operation tried again); a missing path or
    # index raises IndexError; keyword arguments go to mutate_in / lookup_in (cas, ttl,
    # persist_to, replicate_to).  Mutations return an Item with the new cas; reads an
    # Item with the value.

    def _ds_run(self, what, gen):
        self._need_couchbase("the data-structure API (%s)" % (what,))
        if self._pipe is not None:
            raise E.PipelineError("data-structure operations cannot run inside a pipeline")
        value = None
        while True:
            try:
                value = gen.send(value)
            except StopIteration as stop:
                return stop.value

    @staticmethod
    def _ds_item(sdres, value=False):
        from couchbase_ffi.items import Item
        it = Item(sdres.key)
        it.cas = sdres.cas
        mt = sdres._mutinfo
        if mt is not None:
            it._mt = mt
        if value:
            it.value = sdres[0]
        return it

    def _ds_mutate(self, key, spec, kwargs, create_type=None, create=False):
        """mutate_in(key, spec): creating the document first if asked, IndexError for
        a path that is not there."""
        try:
            try:
                sdres = yield self.mutate_in(key, spec, **kwargs)
            except E.NotFoundError:
                if not create:
                    raise
                try:
                    yield self.insert(key, create_type(), format=FMT_JSON)
                except E.KeyExistsError:
                    pass
                sdres = yield self.mutate_in(key, spec, **kwargs)
        except E.SubdocPathNotFoundError:
            raise IndexError(spec[1])
        return self._ds_item(sdres)

    def _ds_lookup(self, key, path, kwargs):
        sdres = yield self.lookup_in(key, _sd_get(path), **kwargs)
        try:
            return self._ds_item(sdres, True)
        except E.SubdocPathNotFoundError:
            raise IndexError(path)

    def _ds_size(self, key, kwargs):
        from couchbase_ffi import subdocument as SD
        sdres = yield self.lookup_in(key, SD.get_count(""), **kwargs)
        return sdres[0]

    def map_add(self, key, mapkey, value, create=False, **kwargs):
        """Set ``mapkey`` to ``value`` in the map (a JSON object) at ``key``: an Item
        (new cas).  NotFoundError if there is no such document, unless ``create``."""
        from couchbase_ffi import subdocument as SD
        return self._ds_run("map_add",
                            self._ds_mutate(key, SD.upsert(mapkey, value), kwargs, dict, create))

    def map_get(self, key, mapkey, **kwargs):
        """The value of ``mapkey`` in the map at ``key`` (an Item: ``.value``);
        IndexError if the map has no such key."""
        return self._ds_run("map_get", self._ds_lookup(key, mapkey, kwargs))

    def map_remove(self, key, mapkey, **kwargs):
        """Remove ``mapkey`` from the map at ``key``; IndexError if it is not there."""
        from couchbase_ffi import subdocument as SD
        return self._ds_run("map_remove", self._ds_mutate(key, SD.remove(mapkey), kwargs))

    def map_size(self, key, **kwargs):
        """The number of keys in the map at ``key`` (an int)."""
        return self._ds_run("map_size", self._ds_size(key, kwargs))

    def list_append(self, key, value, create=False, **kwargs):
        """Add ``value`` at the end of the list (a JSON array) at ``key``."""
        from couchbase_ffi import subdocument as SD
        return self._ds_run("list_append",
                            self._ds_mutate(key, SD.array_append("", value), kwargs, list, create))

    def list_prepend(self, key, value, create=False, **kwargs):
        """Add ``value`` at the start of the list at ``key``."""
        from couchbase_ffi import subdocument as SD
        return self._ds_run("list_prepend",
                            self._ds_mutate(key, SD.array_prepend("", value), kwargs, list,
                                            create))

    def list_set(self, key, index, value, **kwargs):
        """Replace the element at ``index``; IndexError if there is none."""
        from couchbase_ffi import subdocument as SD
        return self._ds_run("list_set",
                            self._ds_mutate(key, SD.replace(_ds_index(index), value), kwargs))

    def list_get(self, key, index, **kwargs):
        """The element at ``index`` (an Item: ``.value``; -1 is the last)."""
        return self._ds_run("list_get", self._ds_lookup(key, _ds_index(index), kwargs))

    def list_remove(self, key, index, **kwargs):
        """Remove the element at ``index``; IndexError if there is none."""
        from couchbase_ffi import subdocument as SD
        return self._ds_run("list_remove",
                            self._ds_mutate(key, SD.remove(_ds_index(index)), kwargs))

    def list_size(self, key, **kwargs):
        """The number of elements of the list at ``key``."""
        return self._ds_run("list_size", self._ds_size(key, kwargs))

    def _ds_set_add(self, key, value, create, kwargs):
        from couchbase_ffi import subdocument as SD
        try:
            rv = yield from self._ds_mutate(key, SD.array_addunique("", value), kwargs, list,
                                            create)
        except E.SubdocPathExistsError:
            return None         # 2.x: already in the set
        return rv

    def set_add(self, key, value, create=False, **kwargs):
        """Add ``value`` to the set (a JSON array of unique primitives) at ``key``: an
        Item, or None if it was there already."""
        return self._ds_run("set_add", self._ds_set_add(key, value, create, kwargs))

    def _ds_set_remove(self, key, value, kwargs):
        from couchbase_ffi import subdocument as SD
        while True:
            rv = yield self.get(key)
            try:
                ix = rv.value.index(value)
            except (ValueError, AttributeError):
                return None
            kw = dict(kwargs, cas=rv.cas)
            try:
                return (yield from self._ds_mutate(key, SD.remove(_ds_index(ix)), kw))
            except E.KeyExistsError:
                continue        # changed meanwhile: look again

    def set_remove(self, key, value, **kwargs):
        """Remove ``value`` from the set at ``key``: an Item, or None if it was not
        there."""
        return self._ds_run("set_remove", self._ds_set_remove(key, value, kwargs))

    def _ds_set_contains(self, key, value):
        rv = yield self.get(key)
        return value in rv.value

    def set_contains(self, key, value, **kwargs):
        """True if ``value`` is in the set at ``key``."""
        return self._ds_run("set_contains", self._ds_set_contains(key, value))

    def set_size(self, key, **kwargs):
        """The number of elements of the set at ``key``."""
        return self._ds_run("set_size", self._ds_size(key, kwargs))

    def queue_push(self, key, value, create=False, **kwargs):
        """Add ``value`` to the queue at ``key`` (its front: queue_pop takes from the
        back, so items come out in the order they were pushed)."""
        from couchbase_ffi import subdocument as SD
        return self._ds_run("queue_push",
                            self._ds_mutate(key, SD.array_prepend("", value), kwargs, list,
                                            create))

    def _ds_queue_pop(self, key, kwargs):
        from couchbase_ffi import subdocument as SD
        while True:
            try:
                itm = yield from self._ds_lookup(key, "[-1]", {})
            except IndexError:
                raise E.QueueEmpty("the queue %r is empty" % (key,))
            kw = dict(kwargs, cas=itm.cas)
            try:
                yield from self._ds_mutate(key, SD.remove("[-1]"), kw)
            except E.KeyExistsError:
                continue        # another consumer was first: try again
            except IndexError:
                raise E.QueueEmpty("the queue %r is empty" % (key,))
            return itm

    def queue_pop(self, key, **kwargs):
        """Remove and return the oldest item of the queue at ``key`` (an Item:
        ``.value``); QueueEmpty if there is none."""
        return self._ds_run("queue_pop", self._ds_queue_pop(key, kwargs))

    def queue_size(self, key, **kwargs):
        """The number of items in the queue at ``key``."""
        return self._ds_run("queue_size", self._ds_size(key, kwargs))
    # END data-structure block

    # ---- the deprecated 2.x names -------------------------------------------------------
    def incr(self, key, amount=1, **kwargs):
        _deprecated("incr", "counter")
        return self.counter(key, delta=amount, **kwargs)

    def decr(self, key, amount=1, **kwargs):
        _deprecated("decr", "counter")
        return self.counter(key, delta=-amount, **kwargs)

    def incr_multi(self, keys, amount=1, **kwargs):
        _deprecated("incr_multi", "counter_multi")
        return self.counter_multi(keys, delta=amount, **kwargs)

    def decr_multi(self, keys, amount=1, **kwargs):
        _deprecated("decr_multi", "counter_multi")
        return self.counter_multi(keys, delta=-amount, **kwargs)


def _deprecated(old, new):
    warnings.warn("%s is deprecated. Use %s instead" % (old, new), DeprecationWarning,
                  stacklevel=3)


def _depr(fn, usage, stacklevel=3):
    """2.x's couchbase.bucket._depr: warns "<fn> is deprecated. Use <usage> instead"."""
    warnings.warn("%s is deprecated. Use %s instead" % (fn, usage), DeprecationWarning,
                  stacklevel=stacklevel)


def _make_alias(old, new):
    def alias(self, *args, **kwargs):
        _deprecated(old, new)
        return getattr(self, new)(*args, **kwargs)
    alias.__name__ = old
    return alias


for _old, _new in (("set", "upsert"), ("add", "insert"), ("delete", "remove")):
    for _suffix in ("", "_multi"):
        setattr(Bucket, _old + _suffix, _make_alias(_old + _suffix, _new + _suffix))


# 2.x Bucket methods outside key-value access, which this client does not have:
# they raise NotSupportedError (a CouchbaseError) rather than AttributeError.
_UNSUPPORTED = {
    "search": "full-text search",
    "analytics_query": "analytics queries",
    "ping": "ping", "diagnostics": "diagnostics",
}


# 2.x refused to run these inside a pipeline (PipelineError), before anything else
_QUERIES = frozenset(("n1ql_query", "query", "search", "analytics_query"))


def _make_unsupported(name, what):
    def unsupported(self, *args, **kwargs):
        if name in _QUERIES and isinstance(self._pipe, Pipeline):
            raise E.PipelineError("%s cannot run inside a pipeline" % (what,))
        raise E.NotSupportedError("%s (Bucket.%s) is not supported by couchbase_ffi, a "
                                  "key-value client" % (what, name))
    unsupported.__name__ = name
    unsupported.__doc__ = "Not supported here: raises NotSupportedError (%s)." % (what,)
    return unsupported


for _name, _what in _UNSUPPORTED.items():
    setattr(Bucket, _name, _make_unsupported(_name, _what))


def _stats_groups(keys):
    """[(group, its bytes)] of ``stats(keys)`` ([(None, None)]: the general stats), as 2.x
    took them: a list or tuple of group names, or one name (a str, or anything else,
    which is then the one entry).  Every entry must be a str or bytes: anything else
    is ArgumentError, before anything is sent."""
    if not keys:
        return [(None, None)]
    if not isinstance(keys, (list, tuple)):
        keys = (keys,)
    out = []
    for g in keys:
        if isinstance(g, str):
            out.append((g, g.encode("utf-8")))
        elif isinstance(g, bytes):
            out.append((g, g))
        else:
            raise E.ArgumentError("bad key type in stats: a stat group is a str, got %s"
                                  % (type(g).__name__,), key=g, objextra=g)
    return out


def _sd_get(path):
    from couchbase_ffi import subdocument as SD
    return SD.get(path)


def _ds_index(index):
    """The sub-document path of list element ``index`` ("[3]", "[-1]")."""
    if isinstance(index, bool) or not isinstance(index, int):
        raise E.ArgumentError("a list index must be an int, not %r" % (index,))
    return "[%d]" % index


def _dur_arg(v):
    if v.__class__ is not int or v < -1 or v > 4:
        raise E.ArgumentError("persist_to/replicate_to must be ints in -1..4, got %r" % (v,),
                              objextra=v)
    return v


def _dur_times(timeout, interval):
    for name, v in (("timeout", timeout), ("interval", interval)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise E.ArgumentError("%s must be a positive number of seconds, got %r"
                                  % (name, v), objextra=v)
    return max(int(timeout * 1e6), 1), max(int(interval * 1e6), 1)


def _replica_arg(index):
    if index is None:
        return -1
    if index.__class__ is not int or not 0 <= index <= 3:
        raise E.ArgumentError("replica_index must be None or an int in 0..3, got %r"
                              % (index,), objextra=index)
    return index


def _opt_bytes(s):
    if s is None or s == "":
        return ffi.NULL
    return s.encode("utf-8") if isinstance(s, str) else bytes(s)


def _maybe_int(s):
    try:
        return int(s)
    except ValueError:
        return s


def _counter_args(delta, initial, ttl):
    if delta.__class__ is not int or not -2 ** 63 < delta < 2 ** 63:
        raise E.ArgumentError("delta must be an int in -(2**63-1)..2**63-1, got %r" % (delta,),
                              objextra=delta)
    if initial is not None and (initial.__class__ is not int or not 0 <= initial <= _MAX_U64):
        raise E.ArgumentError("initial must be None or an int in 0..2**64-1, got %r"
                              % (initial,), objextra=initial)
    return delta, initial, _check_ttl(ttl)


def _lock_ttl(ttl):
    """lock()'s ttl: required and > 0 (2.x: ArgumentError "missing expiry")."""
    ttl = _check_ttl(ttl)
    if not ttl:
        raise E.ArgumentError("lock needs a ttl (seconds, > 0)", objextra=ttl)
    return ttl


def _unlock_cas(cas):
    """unlock()'s CAS: required (2.x: ArgumentError without one)."""
    cas = _check_cas(cas)
    if not cas:
        raise E.ArgumentError("unlock needs the CAS returned by lock()", objextra=cas)
    return cas


def _opt_ttl(opt, default):
    """A per-key ttl of a *_multi dict: an int, {"ttl": n}, or None (the default)."""
    if opt is None:
        return default
    if isinstance(opt, dict):
        if set(opt) - {"ttl"}:
            raise E.ArgumentError("unknown per-key option(s) %s" % (sorted(set(opt) - {"ttl"}),),
                                  objextra=opt)
        return _check_ttl(opt.get("ttl", default))
    return _check_ttl(opt)


def _multi_pairs(kv, what, allow_list=True):
    """[(key, value)] of a *_multi argument, checked as 2.x checked it: a dict
    (key -> value or per-key options) or, where ``allow_list``, keys as
    :func:`_multi_keys` takes them (value None)."""
    if isinstance(kv, dict):
        if not kv:
            raise E.ArgumentError("%s: the key list is empty" % (what,), objextra=kv)
        return list(kv.items())
    if not allow_list:
        raise E.ArgumentError("%s needs a dict of key -> value or an ItemCollection, got %s"
                              % (what, type(kv).__name__), objextra=kv)
    return [(k, None) for k in _multi_keys(kv, what)]


def _multi_keys(kv, what):
    """The keys of a *_multi argument that is a list, tuple or other iterable of
    keys, checked as 2.x checked it: one key (str/bytes), something not iterable,
    nothing at all, or an iterable whose len() differs from what it yields is
    ArgumentError.  (2.x also refused iterables without a len(), such as
    generators; they are accepted here.)"""
    if kv.__class__ is list or kv.__class__ is tuple:
        if kv:
            return kv
    elif isinstance(kv, (str, bytes, bytearray)):
        raise E.ArgumentError("%s takes a collection of keys, not one key" % (what,),
                              objextra=kv)
    else:
        try:
            n = len(kv)
        except TypeError:
            n = None
        try:
            keys = list(kv)
        except TypeError:
            raise E.ArgumentError("%s takes an iterable of keys, got %s"
                                  % (what, type(kv).__name__), objextra=kv)
        if n is not None and n != len(keys):
            raise E.ArgumentError("%s: len() of the keys is %d but iterating gave %d keys"
                                  % (what, n, len(keys)), objextra=kv)
        if keys:
            return keys
    raise E.ArgumentError("%s: the key list is empty" % (what,), objextra=kv)


# An Item's own fields, read past any property a subclass puts over them (2.x read
# its C struct): the slots of ValueResult.
_ITEM_KEY = ValueResult.key.__get__
_ITEM_VALUE = ValueResult.value.__get__
_ITEM_CAS = ValueResult.cas.__get__


def _items_of(coll, what):
    """The (item, options) pairs of an ItemCollection; ArgumentError if it is empty,
    if an entry is not an Item, or if an Item was never initialised (a subclass
    whose __init__ did not call Item.__init__: it has no key, value or CAS of its
    own, whatever properties it defines)."""
    pairs = list(coll)
    if not pairs:
        raise E.ArgumentError("%s: the ItemCollection is empty" % (what,), objextra=coll)
    for item, _ in pairs:
        if not isinstance(item, ValueResult):
            raise E.ArgumentError("%s: an ItemCollection holds Items, got %s"
                                  % (what, type(item).__name__), objextra=item)
        try:
            _ITEM_KEY(item)
            _ITEM_VALUE(item)
            _ITEM_CAS(item)
        except AttributeError:
            raise E.ArgumentError("%s: %s was not initialised (its __init__ must call "
                                  "Item.__init__)" % (what, type(item).__name__),
                                  objextra=item)
    return pairs


class _Batch(object):
    """Operations scheduled on one client, harvested together into their result
    objects (the cookie is the operation's index)."""

    def __init__(self, bucket):
        self.bucket = bucket
        self.entries = []   # (result object, kind)
        self.error = None   # the first decoding error met while collecting

    def schedule(self, c, key, res, kind, sched, args):
        rc = sched(c, *args, len(self.entries))
        if rc:
            self.abandon(c)
            self.bucket._sched_error(rc, key)
        self.entries.append((res, kind))

    def abandon(self, c):
        """A later operation was refused: let the scheduled ones end, drop their results."""
        lib.cbffi_wait(c, ffi.NULL, 0)
        while lib.cbffi_harvest(c, self.bucket._res, _RES_CAP):
            pass

    def collect(self, c):
        res, entries = self.bucket._res, self.entries
        mt = self.bucket._mtok
        n = lib.cbffi_wait(c, res, _RES_CAP)
        while n:
            for j in range(n):
                r = res[j]
                out, kind = entries[r.cookie]
                rc = out.rc = r.rc
                if rc:
                    continue
                out.cas = r.cas
                if mt is not None:
                    mt.take(out, r)
                if kind == _K_COUNTER:
                    out.value = r.u64
                elif kind != _K_OP:
                    out.flags = r.flags
                    self._fill_value(out, r, kind)
            # cbffi_wait returned once everything ended: a short batch was the last
            n = lib.cbffi_harvest(c, res, _RES_CAP) if n == _RES_CAP else 0

    def _fill_value(self, out, r, kind):
        try:
            out.value = self.bucket._decode(r, kind == _K_GET_RAW)
        except E.CouchbaseError as e:
            if self.error is None:
                e.key, e.result = out.key, out
                self.error = e


class Pipeline(object):
    """``with bucket.pipeline() as p:`` batches the Bucket's operations into one
    round of IO; ``p.results`` lists their results (filled when the block ends)."""

    def __init__(self, bucket):
        self._bucket = bucket
        self._batch = None
        self._quiet = []
        self._results = []

    @property
    def results(self):
        return self._results

    def __enter__(self):
        b = self._bucket
        if b._pipe is not None:
            raise E.PipelineError("a pipeline is already active on this Bucket")
        self._c = b._enter()
        self._batch = _Batch(b)
        self._results, self._quiet = [], []
        b._pipe = self
        return self

    def add(self, sched, args, res, kind, quiet):
        """Schedule one operation; returns its (not yet filled) result."""
        self._batch.schedule(self._c, res.key, res, kind, sched, args)
        self._quiet.append(quiet)
        self._results.append(res)
        return res

    def add_multi(self, entries, mres, kind, quiet):
        for key, res, sched, args in entries:
            self._batch.schedule(self._c, key, res, kind, sched, args)
            self._quiet.append(quiet)
        self._results.append(mres)
        return mres

    def __exit__(self, exc_type, exc, tb):
        b = self._bucket
        b._pipe = None
        try:
            self._batch.collect(self._c)
        finally:
            b._leave()
        if exc_type is None:
            self._raise_first()
        return False

    def _raise_first(self):
        if self._batch.error is not None:
            raise self._batch.error
        default_quiet = self._bucket.quiet
        first = None
        for (res, _), quiet in zip(self._batch.entries, self._quiet):
            if res.rc == 0:
                continue
            if res.rc == _ENOENT and (default_quiet if quiet is None else quiet):
                continue
            if first is None:
                first = res
        for mres in self._results:
            if isinstance(mres, MultiResult):
                mres.all_ok = all(r.rc == 0 for r in mres.values())
        if first is not None:
            _raise_rc(first.rc, first.key, first)

    def __iter__(self):
        return iter(self._results)


class DurabilityContext(object):
    """``with bucket.durability(persist_to=1, replicate_to=1, timeout=2.0): ...``:
    defaults for the mutations inside, and their durability timeout
    (NotSupportedError on entry on memcached://)."""

    def __init__(self, bucket, persist_to=-1, replicate_to=-1, timeout=0.0):
        self._bucket = bucket
        self._req = (_dur_arg(persist_to), _dur_arg(replicate_to))
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise E.ArgumentError("timeout must be a number of seconds >= 0, got %r"
                                  % (timeout,))
        self._timeout = timeout
        self._old = None
        self._old_timeout = None

    def __enter__(self):
        b = self._bucket
        if self._req[0] or self._req[1]:
            b._need_couchbase("durability (persist_to/replicate_to)")
        self._old, b._dur = b._dur, (self._req if any(self._req) else None)
        if self._timeout:
            c = b._live()
            self._old_timeout = lib.cbffi_client_get_timeout(c, _DUR_TIMEOUT)
            lib.cbffi_client_set_timeout(c, _DUR_TIMEOUT, int(self._timeout * 1e6))
        return b

    def __exit__(self, *exc):
        b = self._bucket
        b._dur = self._old
        if self._old_timeout is not None and b._c is not None:
            lib.cbffi_client_set_timeout(b._c, _DUR_TIMEOUT, self._old_timeout)
        return False
