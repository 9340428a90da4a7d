"""The couchbase 2.x exception tree, with the 2.x ``rc`` values.

libcbffi's status codes are the libcouchbase 2.x codes, so ``rc`` means what
it meant in 2.x and ``exc_class(rc)`` picks the class 2.x picked.  The
category classes (``CouchbaseNetworkError``, ``CouchbaseTransientError``...)
are real bases of the named classes, so both ``except NotFoundError`` and
``except CouchbaseDataError`` work, as they did in 2.x.  Codes without a
named class get a class made once from their category bits (2.x did the
same, naming it ``LCB_0x..``).

This module does not need the compiled extension at import time.
"""

# cbffi_errtype bits (cbffi.h); the same bits as libcouchbase's LCB_ERRTYPE_*
ERRTYPE_INPUT = 0x01
ERRTYPE_NETWORK = 0x02
ERRTYPE_FATAL = 0x04
ERRTYPE_TRANSIENT = 0x08
ERRTYPE_DATAOP = 0x10
ERRTYPE_INTERNAL = 0x20


def _lib():
    from couchbase_ffi._lowlevel import ffi, lib
    return ffi, lib


def strerror(rc):
    """libcbffi's description of status code ``rc``."""
    ffi, lib = _lib()
    return ffi.string(lib.cbffi_strerror(rc)).decode("utf-8", "replace")


class CouchbaseError(Exception):
    """Base of every error this package raises.

    Attributes (as in 2.x): ``rc`` (the status code, 0 for errors found in
    Python), ``key``, ``result`` (the failed result), ``all_results`` (the
    MultiResult of a ``*_multi`` call), ``message``, ``inner_cause``,
    ``objextra``, ``csrc_info``; ``categories`` and ``is_*`` from the code.
    """
    rc = 0
    CODE = 0  # 2.x: the class-level code (rc is its instance-level twin)

    def __init__(self, params=None, **kwargs):
        if isinstance(params, CouchbaseError):  # a copy of another one, as in 2.x
            self.__dict__.update(params.__dict__)
            if kwargs:
                self.__dict__.update(kwargs)
            super(CouchbaseError, self).__init__(self.message or "")
            return
        if isinstance(params, str):
            params = {"message": params}
        elif params is None:
            params = {}
        elif not isinstance(params, dict):
            params = {"message": str(params)}
        if kwargs:
            params = dict(params, **kwargs)
        self.rc = params.get("rc", type(self).rc)
        self.key = params.get("key")
        self.result = params.get("result")
        self.all_results = params.get("all_results") or {}
        self.message = params.get("message")
        self.inner_cause = params.get("inner_cause")
        self.objextra = params.get("objextra")
        self.csrc_info = params.get("csrc_info", ())
        super(CouchbaseError, self).__init__(self.message or "")

    @classmethod
    def rc_to_exctype(cls, rc):
        """The exception class for status code ``rc``."""
        return exc_class(rc)

    @classmethod
    def pyexc(cls, message=None, obj=None, inner=None):
        return cls({"message": message, "objextra": obj, "inner_cause": inner})

    @classmethod
    def _can_derive(cls, rc):
        return issubclass(exc_class(rc), cls)

    @property
    def categories(self):
        """The category bits (ERRTYPE_*) of ``rc``."""
        return _lib()[1].cbffi_errflags(self.rc) if self.rc else 0

    @property
    def is_transient(self):
        return bool(self.categories & ERRTYPE_TRANSIENT)

    @property
    def is_fatal(self):
        return bool(self.categories & ERRTYPE_FATAL)

    @property
    def is_network(self):
        return bool(self.categories & ERRTYPE_NETWORK)

    @property
    def is_data(self):
        return bool(self.categories & ERRTYPE_DATAOP)

    def split_results(self):
        """(ok, failed): dicts of key -> result split from ``all_results``."""
        ok, bad = {}, {}
        for k, v in self.all_results.items():
            (ok if v.success else bad)[k] = v
        return ok, bad

    def __str__(self):
        parts = []
        if self.key:
            parts.append("Key=%r" % (self.key,))
        if self.rc:
            parts.append("RC=0x%X[%s]" % (self.rc, _strerror_or_blank(self.rc)))
        if self.message:
            parts.append(str(self.message))
        if self.all_results:
            parts.append("Results=%d" % len(self.all_results))
        if self.inner_cause:
            parts.append("inner_cause=%s" % (self.inner_cause,))
        if self.csrc_info:
            parts.append("C Source=(%s,%s)" % tuple(self.csrc_info[:2]))
        if self.objextra:
            parts.append("OBJ=%r" % (self.objextra,))
        return "<%s>" % ", ".join(parts)


def _strerror_or_blank(rc):
    try:
        return strerror(rc)
    except ImportError:
        return ""


# ---- categories (bases) ------------------------------------------------------------
class InternalSDKError(CouchbaseError):
    """A bug in this library, not in your code."""


class CouchbaseInternalError(InternalSDKError):
    """An internal error inside the client."""


class CouchbaseNetworkError(CouchbaseError):
    """The network or a server failed (likely the environment's fault)."""


class CouchbaseInputError(CouchbaseError):
    """The caller's input was wrong (likely your fault)."""


class CouchbaseTransientError(CouchbaseError):
    """Temporary: retrying later may succeed."""


class CouchbaseFatalError(CouchbaseError):
    """The client needs reconfiguring (credentials, bucket...)."""


class CouchbaseDataError(CouchbaseError):
    """A negative reply about the data itself (missing, exists, not a number...)."""


# ---- errors found in Python, before anything is sent ---------------------------------
class ArgumentError(CouchbaseInputError):
    """An argument is invalid (checked before anything is sent; your fault)."""


class ValueFormatError(CouchbaseInputError):
    """A key or value cannot be encoded, or a stored value cannot be decoded."""


class ObjectThreadError(CouchbaseError):
    """Two threads used one Bucket at once under LOCKMODE_EXC (your fault)."""


class PipelineError(CouchbaseError):
    """An operation that is not allowed inside a pipeline (your fault)."""


class HTTPError(CouchbaseError):
    """An HTTP (views, N1QL, management) request failed."""


class ViewEngineError(CouchbaseError):
    """An error reported inline by the view engine."""


# ---- errors carrying a status code (2.x names, rc, categories) -----------------------
class AuthError(CouchbaseFatalError, CouchbaseInputError):
    """Wrong credentials, or no access to the bucket (your configuration)."""
    rc = 0x02


class DeltaBadvalError(CouchbaseInputError, CouchbaseDataError):
    """counter() on a value that is not a number (your data)."""
    rc = 0x03


class TooBigError(CouchbaseInputError, CouchbaseDataError):
    """The value is larger than the server accepts (your data)."""
    rc = 0x04


class BusyError(CouchbaseTransientError):
    """The server is too busy; back off and retry (the environment)."""
    rc = 0x05


class InternalError(CouchbaseInternalError):
    """Internal error inside the library (a bug)."""
    rc = 0x06


class InvalidError(CouchbaseInputError):
    """Invalid arguments, e.g. a malformed connection string (your fault)."""
    rc = 0x07


class NoMemoryError(CouchbaseTransientError):
    """The server ran out of memory (the environment)."""
    rc = 0x08


class RangeError(CouchbaseInputError, CouchbaseDataError):
    """An invalid range (your fault)."""
    rc = 0x09


class LibcouchbaseError(CouchbaseError):
    """A generic error."""
    rc = 0x0A


class TemporaryFailError(CouchbaseTransientError):
    """The server failed temporarily (or the key is locked); retrying may work."""
    rc = 0x0B


class KeyExistsError(CouchbaseDataError):
    """The key exists already, or its CAS differs from the one given."""
    rc = 0x0C


class NotFoundError(CouchbaseDataError):
    """The key does not exist."""
    rc = 0x0D


class DlopenFailedError(CouchbaseInputError, CouchbaseFatalError):
    """Failed to open a shared object."""
    rc = 0x0E


class DlsymFailedError(CouchbaseInputError, CouchbaseFatalError):
    """Failed to find a symbol in a shared object."""
    rc = 0x0F


class NetworkError(CouchbaseNetworkError):
    """The connection failed while the operation was in flight (the environment)."""
    rc = 0x10


class NotMyVbucketError(CouchbaseNetworkError, CouchbaseTransientError):
    """The server does not own the key's vbucket (the cluster is changing)."""
    rc = 0x11


class NotStoredError(CouchbaseDataError):
    """The item was not stored (append/prepend to a missing key)."""
    rc = 0x12


class NotSupportedError(CouchbaseError):
    """Not supported here, e.g. lock or durability on a memcached bucket."""
    rc = 0x13


class UnknownCommandError(CouchbaseError):
    """The server does not know the command."""
    rc = 0x14


class UnknownHostError(CouchbaseNetworkError, CouchbaseInputError):
    """A host name could not be resolved."""
    rc = 0x15


class ProtocolError(CouchbaseNetworkError):
    """The server sent malformed data."""
    rc = 0x16


class TimeoutError(CouchbaseNetworkError, CouchbaseTransientError):
    """The operation did not complete within the timeout."""
    rc = 0x17


class ConnectError(CouchbaseNetworkError):
    """Could not connect to the server (the environment)."""
    rc = 0x18


class BucketNotFoundError(CouchbaseFatalError, CouchbaseInputError):
    """The bucket does not exist (your configuration)."""
    rc = 0x19


class ClientNoMemoryError(CouchbaseFatalError):
    """The client ran out of memory."""
    rc = 0x1A


class ClientTemporaryFailError(CouchbaseTransientError):
    """The client is not ready yet (e.g. not bootstrapped); retrying may work."""
    rc = 0x1B


class BadHandleError(CouchbaseInputError):
    """The client handle is closed or unusable."""
    rc = 0x1C


class ObjectDestroyedError(ClientTemporaryFailError):
    """The Bucket was closed (your fault).

    2.x raised ClientTemporaryFailError (rc 0x1B, "not connected") for an
    operation on a closed Bucket, and ObjectDestroyedError for the pending
    operations of a destroyed asynchronous one; this class is both, so either
    ``except`` works.  ``rc`` is 0x1B."""


# ---- sub-document errors (libcouchbase 2.x codes 0x3F..0x4C; Bucket.lookup_in / mutate_in) ----
class SubdocPathNotFoundError(CouchbaseDataError):
    """Subdocument path does not exist."""
    rc = 0x3F


class SubdocPathMismatchError(CouchbaseDataError):
    """The path conflicts with the document's structure."""
    rc = 0x40


class SubdocPathInvalidError(CouchbaseInputError):
    """Subdocument path is invalid."""
    rc = 0x41


class DocumentTooDeepError(CouchbaseDataError):
    """The document is too deep for subdocument operations."""
    rc = 0x43


class SubdocCantInsertValueError(CouchbaseInputError):
    """The value cannot be inserted."""
    rc = 0x44


class DocumentNotJsonError(CouchbaseDataError):
    """The document is not JSON."""
    rc = 0x45


class SubdocNumberTooBigError(CouchbaseDataError):
    """The existing number is too big."""
    rc = 0x46


class SubdocBadDeltaError(CouchbaseDataError):
    """Bad counter delta."""
    rc = 0x47


class SubdocPathExistsError(CouchbaseDataError):
    """Subdocument path already exists."""
    rc = 0x48


class SubdocMultipleErrors(CouchbaseDataError):
    """One or more sub-commands failed."""
    rc = 0x49


class SubdocValueTooDeepError(CouchbaseInputError):
    """The value would make the document too deep."""
    rc = 0x4A


class SubdocEmptyPathError(CouchbaseInputError):
    """An empty path was given."""
    rc = 0x4C


class QueueEmpty(Exception):
    """A data-structure queue is empty (2.x's couchbase.exceptions.QueueEmpty)."""


class KeyTooLongError(ArgumentError, InvalidError):
    """A key over 250 bytes: refused before sending (an ArgumentError, as for
    an empty key); 2.x sent it and the server answered EINVAL (InvalidError,
    rc 0x07), so it is both."""
    rc = 0x07


# rc -> class, as 2.x's table (codes 2.x sent to a shared class are listed here)
_BY_RC = {cls.rc: cls for cls in (
    AuthError, DeltaBadvalError, TooBigError, BusyError, InternalError, InvalidError,
    NoMemoryError, RangeError, LibcouchbaseError, TemporaryFailError, KeyExistsError,
    NotFoundError, DlopenFailedError, DlsymFailedError, NetworkError, NotMyVbucketError,
    NotStoredError, NotSupportedError, UnknownCommandError, UnknownHostError,
    ProtocolError, TimeoutError, ConnectError, BucketNotFoundError, ClientNoMemoryError,
    ClientTemporaryFailError, BadHandleError, SubdocPathNotFoundError, SubdocPathMismatchError,
    SubdocPathInvalidError, DocumentTooDeepError, SubdocCantInsertValueError,
    DocumentNotJsonError, SubdocNumberTooBigError, SubdocBadDeltaError, SubdocPathExistsError,
    SubdocMultipleErrors, SubdocValueTooDeepError, SubdocEmptyPathError)}
_BY_RC.update({
    0x1F: InvalidError,     # INVALID_HOST_FORMAT
    0x20: InvalidError,     # INVALID_CHAR
    0x21: ArgumentError,    # DURABILITY_ETOOMANY
    0x22: ArgumentError,    # DUPLICATE_COMMANDS
    0x35: ArgumentError,    # EMPTY_KEY
    0x3B: HTTPError,        # HTTP_ERROR
})
_LCB_ERRNO_MAP = _BY_RC  # the 2.x name of this table


def _set_codes():
    """2.x's class-level ``CODE``: the code each class is raised for (InvalidError:
    0x07; ArgumentError and the classes raised from Python: 0)."""
    for rc, cls in _BY_RC.items():
        if cls is not InvalidError and cls is not ArgumentError:
            cls.CODE = rc
    InvalidError.CODE = 0x07
    HTTPError.CODE = 0x3B


_set_codes()

# Socket-level codes 2.x left unnamed; we also derive them from the class users catch.
_EXTRA_BASE = {0x2C: ConnectError, 0x2D: NetworkError, 0x2E: NetworkError}

_CATEGORY_BASES = (
    (ERRTYPE_NETWORK, CouchbaseNetworkError), (ERRTYPE_INPUT, CouchbaseInputError),
    (ERRTYPE_TRANSIENT, CouchbaseTransientError), (ERRTYPE_FATAL, CouchbaseFatalError),
    (ERRTYPE_DATAOP, CouchbaseDataError), (ERRTYPE_INTERNAL, CouchbaseInternalError),
)


def _make_class(rc, flags):
    bases = [_EXTRA_BASE[rc]] if rc in _EXTRA_BASE else []
    bases += [base for bit, base in _CATEGORY_BASES
              if flags & bit and not any(issubclass(b, base) for b in bases)]
    if not bases:
        return CouchbaseError
    return type("LCB_0x%X" % rc, tuple(bases), {"rc": rc, "__module__": __name__})


def exc_class(rc, flags=None):
    """The exception class for status code ``rc`` (made once per unnamed code,
    from ``flags`` or, when not given, from cbffi_errflags(rc))."""
    cls = _BY_RC.get(rc)
    if cls is None:
        if flags is None:
            flags = _lib()[1].cbffi_errflags(rc)
        cls = _BY_RC[rc] = _make_class(rc, flags)
    return cls


def exc_from_rc(rc, msg=None, obj=None, key=None, result=None, all_results=None,
                message=None):
    """An exception instance for status code ``rc`` (2.x's signature: ``msg``,
    ``obj`` as ``objextra``; the rest by keyword).

    As in 2.x, an error of one operation carries ``all_results``: a
    MultiResult holding its key's result, and the message "Operational Error"
    when there is no better one."""
    message = message if message is not None else msg
    if all_results is None and result is not None:
        from couchbase_ffi.result import MultiResult
        all_results = MultiResult()
        try:
            all_results[key] = result
        except TypeError:  # an unhashable key (a transcoder's): no all_results
            pass
        all_results.all_ok = False
    if message is None and result is not None:
        message = "Operational Error"
    return exc_class(rc)({"rc": rc, "key": key, "result": result, "message": message,
                          "all_results": all_results, "objextra": obj})
