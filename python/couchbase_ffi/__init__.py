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


def _pylog_handler(**kwargs):
    """The log handler enable_logging() installs: one libcouchbase-style log record
    (``level``, ``subsys``, ``message``...) to the "couchbase" logger."""
    import logging
    level = {0: logging.DEBUG, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING,
             4: logging.ERROR, 5: logging.CRITICAL}.get(kwargs.get("level"), logging.INFO)
    logging.getLogger("couchbase").log(level, "[%s] %s", kwargs.get("subsys", "-"),
                                       kwargs.get("message", ""))


def enable_logging():
    """2.x forwarded libcouchbase's log to the ``logging`` module ("couchbase"
    logger) by installing a handler with ``couchbase._libcouchbase.lcb_logging``;
    the same handler is installed here, but libcbffi does not log, so nothing
    reaches it."""
    from couchbase_ffi import _libcouchbase
    import logging
    logging.getLogger("couchbase")
    _libcouchbase.lcb_logging(_pylog_handler)


def disable_logging():
    """Remove the handler enable_logging() installed (lcb_logging(None))."""
    from couchbase_ffi import _libcouchbase
    _libcouchbase.lcb_logging(None)


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
    ("couchbase.views", "couchbase_ffi.views"),
    ("couchbase.views.iterator", "couchbase_ffi.views.iterator"),
    ("couchbase.views.params", "couchbase_ffi.views.params"),
    ("couchbase._libcouchbase", "couchbase_ffi._libcouchbase"),
    ("couchbase.experimental", "couchbase_ffi.experimental"),
    ("couchbase._pyport", "couchbase_ffi._pyport"),
    ("couchbase.bucketmanager", "couchbase_ffi.bucketmanager"),
    ("couchbase._ixmgmt", "couchbase_ffi._ixmgmt"),
    ("couchbase.admin", "couchbase_ffi.admin"),
    ("couchbase.auth_domain", "couchbase_ffi.admin"),
)

# 2.x's Twisted and asyncio packages: package -> (our front-end, its 2.x submodules,
# which are that front-end).  Imported on first use (they import Twisted / asyncio),
# through _LazyAliases.
_LAZY_PACKAGES = {
    "txcouchbase": ("couchbase_ffi.twisted", ("bucket", "connection")),
    "acouchbase": ("couchbase_ffi.asyncio", ("bucket",)),
}
_LAZY_ALIASES = tuple((pkg + "." + sub, real) for pkg, (real, subs) in _LAZY_PACKAGES.items()
                      for sub in subs)


class _LazyAliases(object):
    """A meta path finder and loader for ``txcouchbase`` and ``acouchbase``: each is
    made an empty package whose submodules (``txcouchbase.bucket``,
    ``txcouchbase.connection``; ``acouchbase.bucket``) are our front-end module,
    put in sys.modules when the package is imported."""

    def find_spec(self, name, path=None, target=None):
        if name not in _LAZY_PACKAGES:
            return None
        import importlib.util
        return importlib.util.spec_from_loader(name, self, is_package=True)

    def create_module(self, spec):
        return None   # the default: a new, empty module

    def exec_module(self, module):
        import importlib
        name = module.__name__
        real, subs = _LAZY_PACKAGES[name]
        impl = importlib.import_module(real)
        module.__doc__ = ("couchbase_ffi's stand-in for the couchbase 2.x package %r: its %s "
                          "are %s (see couchbase_ffi.install_as_couchbase)"
                          % (name, ", ".join(subs), real))
        for sub in subs:
            sys.modules[name + "." + sub] = impl
            setattr(module, sub, impl)


_lazy_finder = _LazyAliases()


def install_as_couchbase():
    """Make ``import couchbase`` and ``couchbase.bucket``, ``.cluster``, ``.exceptions``,
    ``.result`` (``.results``), ``.items``, ``.transcoder``, ``.connstr``,
    ``.user_constants``, ``.connection``, ``.subdocument``, ``.n1ql``, ``.views``
    (``.views.iterator``, ``.views.params``),
    ``._libcouchbase``, ``.experimental``, ``._pyport``, ``.bucketmanager``,
    ``._ixmgmt``, ``.admin`` and ``.auth_domain`` resolve to this package, and 2.x's front-ends ``txcouchbase.bucket`` /
    ``txcouchbase.connection`` (Twisted: couchbase_ffi.twisted) and
    ``acouchbase.bucket`` (asyncio: couchbase_ffi.asyncio) to ours, imported when
    first used; so code written for the couchbase 2.x client runs unchanged (on
    PyPy too).

    Call it before anything imports ``couchbase``; raises
    CouchbaseAlreadyImported (an ImportError) if another one already is.
    Calling it again is harmless.  Returns this package.
    """
    import importlib
    me = sys.modules[__name__]
    for alias, real in _ALIASES + _LAZY_ALIASES + tuple((p, None) for p in _LAZY_PACKAGES):
        existing = sys.modules.get(alias)
        if existing is None or existing is sys.modules.get(real):
            continue
        if real is None and getattr(existing, "__loader__", None) is _lazy_finder:
            continue
        raise CouchbaseAlreadyImported(
            "cannot install couchbase_ffi as %r: another module is already imported "
            "under that name (%s); call install_as_couchbase() before anything imports "
            "couchbase" % (alias, getattr(existing, "__file__", None) or repr(existing)))
    if _lazy_finder not in sys.meta_path:
        sys.meta_path.insert(0, _lazy_finder)
    for alias, real in _ALIASES:
        module = importlib.import_module(real)
        sys.modules[alias] = module
        parent, _, child = alias.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)
    return me
