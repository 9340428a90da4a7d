"""The couchbase 2.x exception tree, with the 2.x ``rc`` values.

libcbffi's status codes are the libcouchbase 2.x codes, so ``rc`` means what
it meant in 2.x.  Category classes (``CouchbaseNetworkError``, ...) are bases,
so ``except CouchbaseTransientError`` works as in 2.x.
"""


class CouchbaseError(Exception):
    """Base of every error this package raises.

    Attributes: ``rc`` (status code), ``key``, ``result`` (the failed
    result), ``all_results`` (a MultiResult for ``*_multi`` calls),
    ``objextra``, ``message``.
    """
    rc = 0

    def __init__(self, params=None, **kwargs):
        if isinstance(params, str):
            params = {"message": params}
        elif not isinstance(params, dict):
            params = {"message": str(params) if params is not None else ""}
        params.update(kwargs)
        self.message = params.get("message", "")
        self.rc = params.get("rc", type(self).rc)
        self.key = params.get("key")
        self.result = params.get("result")
        self.all_results = params.get("all_results")
        self.objextra = params.get("objextra")
        self.inner_cause = params.get("inner_cause")
        super(CouchbaseError, self).__init__(self.message)

    @classmethod
    def rc_to_exctype(cls, rc):
        return exc_class(rc)

    def split_results(self):
        """(ok, failed) dicts of key -> result from ``all_results``."""
        ok, bad = {}, {}
        for k, v in (self.all_results or {}).items():
            (ok if v.success else bad)[k] = v
        return ok, bad

    def __str__(self):
        parts = ["<RC=0x%X" % self.rc]
        if self.message:
            parts.append(", " + self.message)
        if self.key is not None:
            parts.append(", Key=%r" % (self.key,))
        return "".join(parts) + ">"


class CouchbaseInputError(CouchbaseError):
    """The caller's input was wrong (likely your fault)."""


class CouchbaseNetworkError(CouchbaseError):
    """The network or a server failed (likely the environment's fault)."""


class CouchbaseTransientError(CouchbaseError):
    """Temporary: retrying later may succeed."""


class CouchbaseFatalError(CouchbaseError):
    """The client needs reconfiguring (credentials, bucket...)."""


class CouchbaseDataError(CouchbaseError):
    """An outcome about the data itself (missing, exists...)."""


class CouchbaseInternalError(CouchbaseError):
    """A bug in this library."""


class ArgumentError(CouchbaseInputError):
    """Invalid argument (client-side check, before anything is sent)."""
    rc = 0x07


class ValueFormatError(CouchbaseInputError):
    """The value cannot be encoded in the requested format."""
    rc = 0x07


class AuthError(CouchbaseFatalError, CouchbaseInputError):
    rc = 0x02


class DeltaBadvalError(CouchbaseInputError, CouchbaseDataError):
    rc = 0x03


class TooBigError(CouchbaseInputError, CouchbaseDataError):
    rc = 0x04


class BusyError(CouchbaseTransientError, CouchbaseNetworkError):
    rc = 0x05


class InternalError(CouchbaseInternalError):
    rc = 0x06


class InvalidError(CouchbaseInputError):
    rc = 0x07


class NoMemoryError(CouchbaseTransientError):
    rc = 0x08


class RangeError(CouchbaseInputError, CouchbaseDataError):
    rc = 0x09


class LibcouchbaseError(CouchbaseError):
    rc = 0x0A


class TemporaryFailError(CouchbaseTransientError):
    rc = 0x0B


class KeyExistsError(CouchbaseDataError):
    rc = 0x0C


class NotFoundError(CouchbaseDataError):
    rc = 0x0D


class NetworkError(CouchbaseNetworkError):
    rc = 0x10


class NotMyVbucketError(CouchbaseNetworkError, CouchbaseTransientError):
    rc = 0x11


class NotStoredError(CouchbaseDataError):
    rc = 0x12


class NotSupportedError(CouchbaseError):
    """The operation is not supported here (e.g. lock on memcached)."""
    rc = 0x13


class UnknownCommandError(CouchbaseError):
    rc = 0x14


class UnknownHostError(CouchbaseNetworkError, CouchbaseInputError):
    rc = 0x15


class ProtocolError(CouchbaseNetworkError):
    rc = 0x16


class TimeoutError(CouchbaseNetworkError, CouchbaseTransientError):
    rc = 0x17


class ConnectError(CouchbaseNetworkError):
    rc = 0x18


class BucketNotFoundError(CouchbaseInputError, CouchbaseFatalError):
    rc = 0x19


class ClientNoMemoryError(CouchbaseFatalError):
    rc = 0x1A


class ClientTemporaryFailError(CouchbaseTransientError):
    rc = 0x1B


class BadHandleError(CouchbaseInputError):
    rc = 0x1C


class HostFormatError(CouchbaseInputError):
    rc = 0x1F


class DurabilityTooManyError(ArgumentError):
    rc = 0x21


class NoMatchingServerError(CouchbaseTransientError):
    rc = 0x23


class ObjectThreadError(CouchbaseError):
    """Two threads used one Bucket at once under LOCKMODE_EXC."""


class PipelineError(CouchbaseError):
    """Misuse of a pipeline (nested, or an operation that cannot be batched)."""


class ObjectDestroyedError(CouchbaseError):
    """The Bucket was closed."""


class ConnectionRefusedError(ConnectError):
    rc = 0x2C


class ConnectionResetError(NetworkError):
    rc = 0x2E


class EmptyKeyError(ArgumentError):
    rc = 0x35


_BY_RC = {}
for _cls in list(globals().values()):
    if isinstance(_cls, type) and issubclass(_cls, CouchbaseError) and _cls.rc:
        _BY_RC.setdefault(_cls.rc, _cls)
_BY_RC[0x07] = InvalidError
_BY_RC[0x35] = EmptyKeyError

_CATEGORY = [  # cbffi_errflags bit -> base class, in order of preference
    (0x02, CouchbaseNetworkError), (0x08, CouchbaseTransientError),
    (0x01, CouchbaseInputError), (0x04, CouchbaseFatalError),
    (0x10, CouchbaseDataError), (0x20, CouchbaseInternalError),
]


def exc_class(rc, flags=0):
    """The exception class for status code ``rc``."""
    cls = _BY_RC.get(rc)
    if cls is not None:
        return cls
    for bit, base in _CATEGORY:
        if flags & bit:
            return base
    return CouchbaseError
