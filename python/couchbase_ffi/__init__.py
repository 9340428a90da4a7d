"""couchbase-ffi: a Couchbase and memcached client for Python, fastest on PyPy.

The couchbase 2.x API over libcbffi through cffi.  ``couchbase_ffi.mock``
(a cluster simulator) does not need the compiled extension.
"""
import sys

try:
    from couchbase_ffi.transcoder import (FMT_JSON, FMT_PICKLE, FMT_BYTES, FMT_UTF8, FMT_AUTO,  # noqa
                                          FMT_LEGACY_MASK, FMT_COMMON_MASK, Transcoder,
                                          set_json_converters, set_pickle_converters)
    from couchbase_ffi.bucket import Bucket, LOCKMODE_NONE, LOCKMODE_EXC, LOCKMODE_WAIT  # noqa
    from couchbase_ffi.result import Result, ValueResult, OperationResult, MultiResult  # noqa
    from couchbase_ffi.items import Item, ItemOptionDict, ItemSequence  # noqa
    from couchbase_ffi import exceptions  # noqa
except ImportError as _e:  # the extension is not built: the mock still works
    _import_error = _e


class CouchbaseAlreadyImported(ImportError):
    """Another ``couchbase`` package is imported already."""


_ALIASES = {
    "couchbase": "couchbase_ffi",
    "couchbase.bucket": "couchbase_ffi.bucket",
    "couchbase.exceptions": "couchbase_ffi.exceptions",
    "couchbase.result": "couchbase_ffi.result",
    "couchbase.transcoder": "couchbase_ffi.transcoder",
    "couchbase.items": "couchbase_ffi.items",
}


def install_as_couchbase():
    """Make ``import couchbase`` (and its 2.x submodules) resolve to this package."""
    import importlib
    existing = sys.modules.get("couchbase")
    me = sys.modules[__name__]
    if existing is not None and existing is not me:
        raise CouchbaseAlreadyImported(
            "another 'couchbase' module is already imported (%r); call "
            "install_as_couchbase() before anything imports couchbase" %
            (getattr(existing, "__file__", existing),))
    for alias, real in _ALIASES.items():
        sys.modules[alias] = importlib.import_module(real)
    return me
