"""The couchbase 2.x ``Cluster`` and authenticators (Couchbase Server 5.0+ RBAC)::

    from couchbase_ffi.cluster import Cluster, PasswordAuthenticator
    cluster = Cluster("couchbase://10.0.0.1,10.0.0.2")
    cluster.authenticate(PasswordAuthenticator("app", "s3cret"))
    bucket = cluster.open_bucket("travel")

A Cluster only holds the connection string and the credentials; each
``open_bucket`` is an independent :class:`~couchbase_ffi.bucket.Bucket`.
"""
from couchbase_ffi import exceptions as E
from couchbase_ffi.bucket import Bucket


class PasswordAuthenticator(object):
    """One RBAC user for every bucket."""

    def __init__(self, username, password):
        self.username = username
        self.password = password

    def credentials(self, bucket):
        return self.username, self.password


class ClassicAuthenticator(object):
    """Pre-5.0 credentials: the bucket name is the user, with a password per bucket
    (``buckets={"name": "password"}``); buckets not listed use an empty password."""

    def __init__(self, cluster_username=None, cluster_password=None, buckets=None):
        self.cluster_username = cluster_username
        self.cluster_password = cluster_password
        self.buckets = dict(buckets or {})

    def credentials(self, bucket):
        return bucket, self.buckets.get(bucket, "")


class Cluster(object):
    """Where the cluster is (a connection string without a bucket) and how to log in."""

    def __init__(self, connection_string="couchbase://localhost", bucket_class=Bucket):
        if not isinstance(connection_string, str):
            raise E.ArgumentError("a connection string (str) is required, got %r"
                                  % (connection_string,))
        self.connstr = connection_string
        self.bucket_class = bucket_class
        self.authenticator = None
        self._buckets = []

    def authenticate(self, authenticator=None, username=None, password=None):
        """Use ``authenticator``, or a PasswordAuthenticator(username, password)."""
        if authenticator is None:
            if username is None:
                raise E.ArgumentError("authenticate() needs an authenticator or a username")
            authenticator = PasswordAuthenticator(username, password or "")
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
        ConnectError as for Bucket)."""
        if not isinstance(bucket_name, str) or not bucket_name:
            raise E.ArgumentError("open_bucket() needs a bucket name, got %r" % (bucket_name,))
        if self.authenticator is not None and "password" not in kwargs:
            user, password = self.authenticator.credentials(bucket_name)
            kwargs.setdefault("username", user)
            kwargs["password"] = password
        b = self.bucket_class(self._bucket_connstr(bucket_name), **kwargs)
        self._buckets.append(b)
        return b
