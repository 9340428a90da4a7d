"""1.x's ``couchbase.connection.Connection``, deprecated in 2.x (as there):
``Connection(bucket="default", host="localhost", port=None, password=..., ...)``."""
from couchbase_ffi.bucket import Bucket, _depr
from couchbase_ffi.connstr import convert_1x_args
from couchbase_ffi.user_constants import *  # noqa: F401,F403


class Connection(Bucket):
    """A Bucket made from 1.x arguments (``bucket``, ``host``, ``port``): the hosts
    are bootstrapped over http:// as 1.x did.  Deprecated: use Bucket."""

    def __init__(self, bucket="default", **kwargs):
        _depr("couchbase.connection.Connection", "couchbase.bucket.Bucket")
        Bucket.__init__(self, **convert_1x_args(bucket, **kwargs))
