"""couchbase-ffi: a Couchbase and memcached client for Python, fastest on PyPy.

The couchbase 2.x API over libcbffi through cffi::

    from couchbase_ffi.bucket import Bucket
    b = Bucket("memcached://127.0.0.1:11211")

``install_as_couchbase()`` makes ``import couchbase`` (and its 2.x modules)
resolve to this package.  ``couchbase_ffi.mock`` (a cluster simulator) does
not need the compiled extension: if it is not built, this package still
imports, without the names below.
"""
import sys

try:
    from couchbase_ffi._lowlevel import ffi as _ffi  # noqa: F401  (is the extension built?)
except ImportError as _e:  # the mock still works without it
    _import_error = _e
else:
    from couchbase_ffi.transcoder import (  # noqa: F401
        FMT_JSON, FMT_PICKLE, FMT_BYTES, FMT_UTF8, FMT_AUTO, FMT_LEGACY_MASK, FMT_COMMON_MASK,
        FMT_MASK, Transcoder, set_json_converters, set_pickle_converters)
    from couchbase_ffi.bucket import Bucket, LOCKMODE_NONE, LOCKMODE_EXC, LOCKMODE_WAIT  # noqa
    from couchbase_ffi.result import Result, ValueResult, OperationResult, MultiResult  # noqa
    from couchbase_ffi.result import (  # noqa: F401
        OBS_FOUND, OBS_PERSISTED, OBS_NOTFOUND, OBS_LOGICALLY_DELETED, OBS_MASK)
    from couchbase_ffi.items import Item, ItemOptionDict, ItemSequence  # noqa: F401
    from couchbase_ffi.exceptions import CouchbaseError  # noqa: F401
    from couchbase_ffi import exceptions  # noqa: F401

__version__ = "2.5.0+ffi.0.1.0"  # the couchbase 2.x API level, then this package's version


def _to_json(*args):
    """2.x's helper: JSON-encode with the converter set_json_converters() installed."""
    from couchbase_ffi import transcoder
    return transcoder._json_encode(*args)


def _from_json(*args):
    """2.x's helper: JSON-decode with the converter set_json_converters() installed."""
    from couchbase_ffi import transcoder
    return transcoder._json_decode(*args)


def enable_logging():
    """2.x forwarded libcouchbase's log to the ``logging`` module ("couchbase"
    logger); libcbffi does not log, so this only makes sure the logger exists."""
    import logging
    logging.getLogger("couchbase")


def disable_logging():
    """See enable_logging()."""


class Couchbase(object):
    """1.x's entry point, deprecated in 2.x: ``Couchbase.connect(bucket=..., host=...)``."""

    @classmethod
    def connect(cls, bucket=None, **kwargs):
        from couchbase_ffi.bucket import _depr
        from couchbase_ffi.connection import Connection
        _depr("Couchbase.connect()", "Bucket()")
        if bucket is not None:
            kwargs["bucket"] = bucket
        return Connection(**kwargs)


class CouchbaseAlreadyImported(ImportError):
    """``install_as_couchbase()`` found another ``couchbase`` already imported."""


# couchbase 2.x module -> the module of this package that stands in for it
_ALIASES = (
    ("couchbase", "couchbase_ffi"),
    ("couchbase.bucket", "couchbase_ffi.bucket"),
    ("couchbase.cluster", "couchbase_ffi.cluster"),
    ("couchbase.exceptions", "couchbase_ffi.exceptions"),
    ("couchbase.result", "couchbase_ffi.result"),
    ("couchbase.results", "couchbase_ffi.result"),
    ("couchbase.items", "couchbase_ffi.items"),
    ("couchbase.transcoder", "couchbase_ffi.transcoder"),
    ("couchbase.connstr", "couchbase_ffi.connstr"),
    ("couchbase.user_constants", "couchbase_ffi.user_constants"),
    ("couchbase.connection", "couchbase_ffi.connection"),
    ("couchbase.subdocument", "couchbase_ffi.subdocument"),
    ("couchbase.n1ql", "couchbase_ffi.n1ql"),
)


def install_as_couchbase():
    """Make ``import couchbase`` and ``couchbase.bucket``, ``.cluster``, ``.exceptions``,
    ``.result`` (``.results``), ``.items``, ``.transcoder``, ``.connstr``,
    ``.user_constants``, ``.connection``, ``.subdocument`` and ``.n1ql`` resolve to this package, so code
    written for the couchbase 2.x client runs unchanged (on PyPy too).

    Call it before anything imports ``couchbase``; raises
    CouchbaseAlreadyImported (an ImportError) if another one already is.
    Calling it again is harmless.  Returns this package.
    """
    import importlib
    me = sys.modules[__name__]
    for alias, real in _ALIASES:
        existing = sys.modules.get(alias)
        if existing is not None and existing is not sys.modules.get(real):
            raise CouchbaseAlreadyImported(
                "cannot install couchbase_ffi as %r: another module is already imported "
                "under that name (%s); call install_as_couchbase() before anything imports "
                "couchbase" % (alias, getattr(existing, "__file__", None) or repr(existing)))
    for alias, real in _ALIASES:
        module = importlib.import_module(real)
        sys.modules[alias] = module
        parent, _, child = alias.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)
    return me
