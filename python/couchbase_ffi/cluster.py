"""The couchbase 2.x ``Cluster`` and authenticators (Couchbase Server 5.0+ RBAC)::

    from couchbase_ffi.cluster import Cluster, PasswordAuthenticator
    cluster = Cluster("couchbase://10.0.0.1,10.0.0.2")
    cluster.authenticate(PasswordAuthenticator("app", "s3cret"))
    bucket = cluster.open_bucket("travel")

A Cluster holds the connection string and the credentials; each
``open_bucket`` is an independent :class:`~couchbase_ffi.bucket.Bucket`.
``n1ql_query`` runs a cross-bucket N1QL query through an open bucket; the
cluster manager (``couchbase.admin``) is not part of this client: it raises
NotSupportedError.
"""
import weakref

from couchbase_ffi import exceptions as E
from couchbase_ffi.bucket import Bucket
from couchbase_ffi.connstr import ConnectionString


class MixedAuthError(E.CouchbaseError):
    """Old-style (per-bucket password) and new-style (RBAC) credentials mixed."""


class NoBucketError(E.CouchbaseError):
    """The operation needs at least one open bucket."""


class Authenticator(object):
    """Base of the authenticators: ``get_credentials(bucket=None)`` gives
    ``(username, password)`` for a bucket, or for the cluster when ``bucket``
    is None."""

    def get_credentials(self, bucket=None):
        raise NotImplementedError()

    def credentials(self, bucket):
        """(username, password) for ``bucket`` (this package's older name)."""
        return self.get_credentials(bucket)


class PasswordAuthenticator(Authenticator):
    """One RBAC user for every bucket (and for cluster management)."""

    def __init__(self, username, password):
        self.username = username
        self.password = password

    def get_credentials(self, *unused):
        return self.username, self.password


class ClassicAuthenticator(Authenticator):
    """Pre-5.0 credentials: a password per bucket (``buckets={"name": "password"}``),
    the bucket name being the user; ``cluster_username``/``cluster_password``
    are for management only."""

    def __init__(self, cluster_username=None, cluster_password=None, buckets=None):
        self.username = cluster_username
        self.password = cluster_password
        self.buckets = buckets if buckets else {}

    @property
    def cluster_username(self):
        return self.username

    @property
    def cluster_password(self):
        return self.password

    def get_credentials(self, bucket=None):
        if not bucket:
            return self.username, self.password
        return None, self.buckets.get(bucket)


class Cluster(object):
    """Where the cluster is (a connection string without a bucket) and how to log in."""

    def __init__(self, connection_string="couchbase://localhost", bucket_class=Bucket):
        if isinstance(connection_string, ConnectionString):
            connection_string = connection_string.encode()
        if not isinstance(connection_string, str):
            raise E.ArgumentError("a connection string (str) is required, got %r"
                                  % (connection_string,))
        self.connstr = connection_string
        self.bucket_class = bucket_class
        self.authenticator = None
        self._buckets = {}
        parsed = ConnectionString.parse(connection_string)
        if parsed.bucket:
            raise ValueError("Cannot pass bucket to connection string: " + parsed.bucket)
        if "username" in parsed.options:
            raise ValueError("username must be specified in the authenticator, "
                             "not the connection string")

    def authenticate(self, authenticator=None, username=None, password=None):
        """Use ``authenticator``, or a PasswordAuthenticator(username, password)
        (both required: ValueError if either is empty)."""
        if authenticator is None:
            if not username:
                raise ValueError("username must not be empty.")
            if not password:
                raise ValueError("password must not be empty.")
            authenticator = PasswordAuthenticator(username, password)
        self.authenticator = authenticator

    def _bucket_connstr(self, name):
        base, sep, query = self.connstr.partition("?")
        scheme, ssep, rest = base.partition("://")
        if not ssep:
            scheme, rest = "couchbase", base
        hosts = rest.split("/", 1)[0]
        return "%s://%s/%s%s%s" % (scheme, hosts, name, sep, query)

    def open_bucket(self, bucket_name, **kwargs):
        """A connected Bucket for ``bucket_name`` (AuthError, BucketNotFoundError,
        ConnectError as for Bucket).  With a PasswordAuthenticator a ``password``
        argument is MixedAuthError."""
        if not isinstance(bucket_name, str) or not bucket_name:
            raise E.ArgumentError("open_bucket() needs a bucket name, got %r" % (bucket_name,))
        username, password = None, None
        if self.authenticator is not None:
            get = getattr(self.authenticator, "get_credentials", None)
            if get is None:  # an object with only this package's older method
                get = self.authenticator.credentials
            username, password = get(bucket_name)
        if username and "username" not in kwargs:
            kwargs["username"] = username
        if "password" in kwargs:
            if isinstance(self.authenticator, PasswordAuthenticator):
                raise MixedAuthError("Cannot override PasswordAuthenticators password")
        else:
            kwargs["password"] = password
        b = self.bucket_class(self._bucket_connstr(bucket_name), **kwargs)
        if isinstance(self.authenticator, ClassicAuthenticator):
            # cross-bucket N1QL (Cluster.n1ql_query) sends them as "creds"
            b._n1ql_creds = [{"user": n, "pass": p}
                             for n, p in sorted(self.authenticator.buckets.items()) if p]
        self._buckets[bucket_name] = weakref.ref(b)
        return b

    def n1ql_query(self, query, *args, **kwargs):
        """A cross-bucket N1QL query (``N1QLQuery.cross_bucket``) through the first
        bucket still open; NoBucketError if none is.  With a ClassicAuthenticator the
        bucket passwords go along as the request's ``creds``."""
        from couchbase_ffi.n1ql import cluster_n1ql_query
        return cluster_n1ql_query(self, query, *args, **kwargs)

    def cluster_manager(self):
        """An Admin (couchbase_ffi.admin) for this cluster's management REST API, with
        the authenticator's cluster credentials: the first host of the connection
        string, on 8091 (18091 with TLS) unless it gives a REST port
        (``http://h:port`` or ``couchbase://h:port=http``)."""
        from couchbase_ffi.admin import Admin
        auth = self.authenticator
        if auth is None:
            raise E.ArgumentError("authenticate() first: the cluster manager needs "
                                  "the cluster's credentials")
        if isinstance(auth, ClassicAuthenticator):
            user, password = auth.cluster_username, auth.cluster_password
        else:
            user, password = auth.get_credentials()
        return Admin(user, password, connection_string=self.connstr)
