"""What code written for 2.x reaches in ``couchbase._libcouchbase``, 2.x's C
extension module: the flag bits of ``Bucket._privflags``, the converter
helpers (``_get_helper``), the log-handler hook (``lcb_logging``) and
``lcb_version``.  The rest of that module (the C ``Bucket`` base, the raw
result types) has no counterpart here.
"""
from couchbase_ffi import transcoder as _transcoder
from couchbase_ffi.transcoder import (  # noqa: F401
    FMT_JSON, FMT_PICKLE, FMT_BYTES, FMT_UTF8, FMT_AUTO, FMT_MASK, FMT_LEGACY_MASK,
    FMT_COMMON_MASK)
from couchbase_ffi.bucket import (  # noqa: F401
    LOCKMODE_NONE, LOCKMODE_EXC, LOCKMODE_WAIT, PYCBC_CONN_F_WARNEXPLICIT, PYCBC_CONN_F_CLOSED,
    PYCBC_CONN_F_USEITEMRES, PYCBC_CONN_F_ASYNC, PYCBC_CONN_F_ASYNC_DTOR)
from couchbase_ffi.result import (  # noqa: F401
    OBS_FOUND, OBS_PERSISTED, OBS_NOTFOUND, OBS_LOGICALLY_DELETED, OBS_MASK)

# the libcouchbase lcb_cntl codes 2.x code passes to Bucket._cntl()
LCB_CNTL_OP_TIMEOUT = 0x00
LCB_CNTL_VIEW_TIMEOUT = 0x01
LCB_CNTL_DURABILITY_TIMEOUT = 0x0D
LCB_CNTL_DURABILITY_INTERVAL = 0x0E
LCB_CNTL_HTTP_TIMEOUT = 0x0F
LCB_CNTL_CONFIGURATION_TIMEOUT = 0x12
LCB_CNTL_CONFIG_CACHE_LOADED = 0x15
LCB_CNTL_CHANGESET = 0x1F
LCB_CNTL_N1QL_TIMEOUT = 0x3D

_HELPERS = {
    "json_encode": lambda: _transcoder._json_encode,
    "json_decode": lambda: _transcoder._json_decode,
    "pickle_encode": lambda: _transcoder._pickle_encode,
    "pickle_decode": lambda: _transcoder._pickle_decode,
}


def _get_helper(name):
    """The converter currently installed under ``name`` ("json_encode",
    "json_decode", "pickle_encode", "pickle_decode"), as set by
    ``couchbase.set_json_converters`` / ``set_pickle_converters``."""
    try:
        return _HELPERS[name]()
    except KeyError:
        raise KeyError("no such helper: %r" % (name,))


_log_handler = [None]


def lcb_logging(*args):
    """``lcb_logging()`` returns the log handler set (None if none);
    ``lcb_logging(fn)`` sets it (None removes it) and returns the old one.

    2.x passed libcouchbase's log messages to it; libcbffi does not log, so
    the handler is kept but never called."""
    if not args:
        return _log_handler[0]
    if len(args) > 1:
        raise TypeError("lcb_logging() takes at most one argument")
    fn = args[0]
    if fn is not None and not callable(fn):
        raise TypeError("the log handler must be callable or None")
    old, _log_handler[0] = _log_handler[0], fn
    return old


def lcb_version():
    """(version string, version number), as ``Bucket.lcb_version()``."""
    from couchbase_ffi.bucket import Bucket
    return Bucket.lcb_version()
