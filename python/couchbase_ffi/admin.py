"""couchbase 2.x's ``couchbase.admin.Admin``: the cluster's management REST API
(buckets and users) on port 8091 (18091 with TLS).

    from couchbase_ffi.admin import Admin
    adm = Admin("Administrator", "password", host="127.0.0.1", port=8091)
    adm.bucket_create("travel", bucket_type="couchbase", replicas=1, ram_quota=256)
    adm.wait_ready("travel", timeout=10)
    adm.user_upsert(AuthDomain.Local, "app", "s3cret", [("bucket_full_access", "travel")])
    adm.bucket_remove("travel")

Management calls are rare and never on the data path, so they go through Python's
own ``http.client`` (and ``ssl``), one connection per Admin, not through libcbffi.
Every call is bounded by ``timeout`` (seconds; default 75, libcouchbase's management
timeout).  Results are HttpResult (``value`` the decoded JSON, or the bytes when the
body is not JSON; ``http_status``; ``url``); a non-2xx answer raises HTTPError (rc
0x3B) with ``http_status`` and ``objextra`` the HttpResult, 401/403 AuthError; no
answer ConnectError / NetworkError / TimeoutError.
"""
import base64
import http.client
import json
import socket
import ssl
import threading
import time
from urllib.parse import quote, urlencode, urlsplit

from couchbase_ffi import exceptions as E
from couchbase_ffi.result import HttpResult
from couchbase_ffi.user_constants import FMT_JSON

__all__ = ["Admin", "AuthDomain", "NotReadyError"]

METHMAP = {"GET": "GET", "PUT": "PUT", "POST": "POST", "DELETE": "DELETE"}
_DEFAULT_TIMEOUT = 75.0


class AuthDomain(object):
    """Where a user is defined (2.x's ``couchbase.auth_domain.AuthDomain``)."""
    Local = 0
    External = 1


class NotReadyError(E.CouchbaseError):
    """Not every node reports the bucket healthy (wait_ready)."""


class Admin(object):
    """An administrative connection to a Couchbase cluster's REST API.

    ``Admin(username, password, host="localhost", port=8091, timeout=75,
    connection_string=None, truststorepath=None)``: ``connection_string``
    (``http://host:port`` or ``couchbase[s]://host``) wins over host and port;
    couchbases:// (or ``ssl=on``) uses https on 18091 with the CA file of
    ``truststorepath`` / ``certpath`` (or the system's).  The credentials are
    checked at once: AuthError if refused, ConnectError if nothing answers."""

    def __init__(self, username, password, host="localhost", port=8091, **kwargs):
        self.username = username or ""
        self.password = password or ""
        self.timeout = float(kwargs.pop("timeout", _DEFAULT_TIMEOUT))
        if self.timeout <= 0:
            raise E.ArgumentError.pyexc("timeout must be > 0", self.timeout)
        connstr = kwargs.pop("connection_string", None)
        cafile = kwargs.pop("truststorepath", None) or kwargs.pop("certpath", None)
        kwargs.pop("bucket", None)       # 2.x accepted (and ignored) these
        kwargs.pop("ipv6", None)
        if kwargs:
            raise E.ArgumentError.pyexc("unknown Admin arguments", sorted(kwargs))
        tls = False
        if connstr:
            host, port, tls, opt_ca = _parse_connstr(connstr)
            cafile = cafile or opt_ca
        if not isinstance(host, str) or not host:
            raise E.ArgumentError.pyexc("a host name is required", host)
        try:
            port = int(port)
        except (TypeError, ValueError):
            raise E.ArgumentError.pyexc("bad port", port)
        if not 0 < port < 65536:
            raise E.ArgumentError.pyexc("bad port", port)
        self.host, self.port, self.tls = host, port, tls
        self._ctx = None
        if tls:
            try:
                self._ctx = ssl.create_default_context(cafile=cafile)
            except (OSError, ssl.SSLError) as e:
                raise E.SSLError.pyexc("cannot load the CA file %r: %s" % (cafile, e), cafile)
        self._conn = None
        self._auth = "Basic " + base64.b64encode(
            ("%s:%s" % (self.username, self.password)).encode("utf-8")).decode("ascii")
        self.http_request("/pools")      # checks the address and the credentials

    # ---- the transport -----------------------------------------------------------------
    def _connection(self):
        if self._conn is None:
            if self.tls:
                self._conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                         context=self._ctx)
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def _exchange(self, method, path, body, headers):
        """(status, body bytes) of one request, within ``timeout`` in all: a watchdog
        shuts the socket down at the deadline, so a server that answers a byte at a
        time is cut off too.  A kept-alive connection the server has closed meanwhile
        is reopened once (idempotent methods only)."""
        deadline = time.monotonic() + self.timeout
        for attempt in (0, 1):
            conn = self._connection()
            expired = []

            def expire(conn=conn, expired=expired):
                expired.append(True)
                sock = conn.sock
                if sock is not None:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            watchdog = threading.Timer(max(deadline - time.monotonic(), 0.0), expire)
            watchdog.daemon = True
            watchdog.start()
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                if expired:
                    raise socket.timeout()
                if resp.will_close:
                    self.close()
                return resp.status, data
            except Exception as e:      # one mapping for every way it can fail
                self.close()
                if expired or isinstance(e, socket.timeout):
                    raise E.TimeoutError.pyexc("%s %s: no answer within %ss"
                                               % (method, path, self.timeout), path)
                if isinstance(e, (http.client.RemoteDisconnected, BrokenPipeError,
                                  ConnectionResetError)):
                    if attempt == 0 and method in ("GET", "DELETE", "PUT"):
                        continue
                    raise E.NetworkError.pyexc("%s %s: the connection was closed (%s)"
                                               % (method, path, e), path)
                if isinstance(e, ssl.SSLCertVerificationError):
                    raise E.SSLCertificateError.pyexc("%s:%d: %s" % (self.host, self.port, e),
                                                      path)
                if isinstance(e, ssl.SSLError):
                    raise E.SSLError.pyexc("%s:%d: %s" % (self.host, self.port, e), path)
                if isinstance(e, socket.gaierror):
                    raise E.UnknownHostError.pyexc("%s:%d: %s" % (self.host, self.port, e), path)
                if isinstance(e, ConnectionRefusedError):
                    raise E.ConnectError.pyexc("%s:%d: %s" % (self.host, self.port, e), path)
                if isinstance(e, (OSError, http.client.HTTPException)):
                    raise E.NetworkError.pyexc("%s %s: %s" % (method, path, e), path)
                raise
            finally:
                watchdog.cancel()

    def close(self):
        """Close the connection (the next call opens another)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def http_request(self, path, method="GET", content=None, content_type="application/json",
                     response_format=FMT_JSON):
        """One request to the management API; an HttpResult.  ``content`` (str or
        bytes) is the body of a PUT or POST; ``response_format`` FMT_JSON decodes
        the body as JSON (kept as bytes if it is not), anything else keeps bytes;
        a path without its leading "/" gets one (``url`` stays as given).
        ArgumentError for another method or a path that is not a string."""
        if method not in METHMAP:
            raise E.ArgumentError.pyexc("Unknown HTTP Method", method)
        if not isinstance(path, str) or not path or any(c in path for c in " \r\n\t#"):
            raise E.ArgumentError.pyexc("the path is a non-empty string without spaces or '#'",
                                        path)
        url = path
        if not path.startswith("/"):
            path = "/" + path        # 2.x took "pools/" as well as "/pools/"
        if isinstance(content, str):
            content = content.encode("utf-8")
        headers = {"Authorization": self._auth, "Accept": "application/json"}
        if content is not None:
            headers["Content-Type"] = content_type
        status, data = self._exchange(method, path, content, headers)
        value = data
        if response_format == FMT_JSON and data:
            try:
                value = json.loads(data.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                value = data
        res = HttpResult(key=url, rc=0, value=value, http_status=status, url=url)
        if 200 <= status < 300:
            return res
        res.rc = 0x02 if status in (401, 403) else 0x3B
        detail = value if not isinstance(value, bytes) else value[:200].decode("utf-8", "replace")
        cls = E.AuthError if res.rc == 0x02 else E.HTTPError
        exc = cls({"rc": res.rc, "message": "%s %s: HTTP %d: %s" % (method, path, status, detail),
                   "objextra": res, "key": url})
        exc.http_status = status
        try:
            raise exc
        finally:
            del exc     # no frame -> exception -> traceback -> frame cycle keeping self

    @staticmethod
    def _mk_formstr(d):
        return urlencode([(k, str(v)) for k, v in d.items()])

    # ---- buckets -------------------------------------------------------------------------
    def bucket_create(self, name, bucket_type="couchbase", bucket_password="", replicas=0,
                      ram_quota=1024, flush_enabled=False):
        """Create bucket ``name`` (``bucket_type`` "couchbase", "memcached" or
        "ephemeral"); HTTPError if the cluster refuses (the reasons in
        ``objextra.value``).  The bucket takes a moment to be usable: wait_ready."""
        params = {"name": name, "bucketType": bucket_type, "authType": "sasl",
                  "saslPassword": bucket_password or "", "flushEnabled": int(bool(flush_enabled)),
                  "ramQuotaMB": ram_quota}
        if bucket_type in ("couchbase", "membase", "ephemeral"):
            params["replicaNumber"] = replicas
        return self.http_request("/pools/default/buckets", method="POST",
                                 content=self._mk_formstr(params),
                                 content_type="application/x-www-form-urlencoded")

    def bucket_remove(self, name):
        """Delete bucket ``name`` and its data; HTTPError (404) if there is none."""
        return self.http_request("/pools/default/buckets/" + _segment(name), method="DELETE")

    bucket_delete = bucket_remove

    class BucketInfo(object):
        """One bucket as the bucket list describes it; ``raw_json`` is that object."""

        def __init__(self, raw_json):
            self.raw_json = raw_json

        def name(self):
            return self.raw_json.get("name")

        def __str__(self):
            return "Bucket named {}".format(self.name())

    def buckets_list(self):
        """The buckets (Admin.BucketInfo)."""
        return [Admin.BucketInfo(b) for b in self.http_request("/pools/default/buckets").value]

    def bucket_info(self, name):
        """The bucket's description (HttpResult; ``value`` the server's JSON), for
        bucket_update; HTTPError (404) if there is none."""
        return self.http_request("/pools/default/buckets/" + _segment(name))

    def wait_ready(self, name, timeout=5.0, sleep_interval=0.2):
        """Wait until every node reports bucket ``name`` healthy; past ``timeout``
        seconds the last error (NotReadyError, HTTPError...) is raised."""
        end = time.monotonic() + timeout
        while True:
            try:
                info = self.bucket_info(name).value
                nodes = info.get("nodes") if isinstance(info, dict) else None
                if not nodes:
                    raise NotReadyError.pyexc("no node serves the bucket yet", name)
                for node in nodes:
                    if node.get("status") != "healthy":
                        raise NotReadyError.pyexc("Not all nodes are healthy", name)
                return
            except E.CouchbaseError:
                if time.monotonic() + sleep_interval > end:
                    raise
                time.sleep(sleep_interval)

    def bucket_update(self, name, current, bucket_password=None, replicas=None, ram_quota=None,
                      flush_enabled=None):
        """Change bucket settings; ``current`` is bucket_info(name).  Settings left
        None keep their current value."""
        cur = current.value if isinstance(current, HttpResult) else current
        params = {"authType": cur.get("authType", "sasl")}
        if "saslPassword" in cur:
            params["saslPassword"] = cur["saslPassword"]
        if bucket_password is not None:
            params["authType"] = "sasl"
            params["saslPassword"] = bucket_password
        params["replicaNumber"] = replicas if replicas is not None else cur.get("replicaNumber", 0)
        if ram_quota:
            params["ramQuotaMB"] = ram_quota
        else:
            params["ramQuotaMB"] = int(cur.get("quota", {}).get("ram", 0) / 1024 / 1024)
        if flush_enabled is not None:
            params["flushEnabled"] = int(bool(flush_enabled))
        if "proxyPort" in cur:
            params["proxyPort"] = cur["proxyPort"]
        return self.http_request("/pools/default/buckets/" + _segment(name), method="POST",
                                 content=self._mk_formstr(params),
                                 content_type="application/x-www-form-urlencoded")

    # ---- users (RBAC) ---------------------------------------------------------------------
    @staticmethod
    def _get_management_path(auth_domain, userid=None):
        if auth_domain == AuthDomain.Local:
            domain = "local"
        elif auth_domain == AuthDomain.External:
            domain = "external"
        else:
            raise E.ArgumentError.pyexc("Unknown Authentication Domain", auth_domain)
        path = "/settings/rbac/users/" + domain
        if userid is not None:
            path += "/" + _segment(userid)
        return path

    def users_get(self, domain):
        """The users of ``domain`` (HttpResult; ``value`` a list of user objects)."""
        return self.http_request(self._get_management_path(domain))

    def user_get(self, domain, userid):
        """One user (HttpResult); HTTPError (404) if there is none."""
        return self.http_request(self._get_management_path(domain, userid))

    def user_upsert(self, domain, userid, password=None, roles=None, name=None):
        """Create or replace a user; ``roles`` a non-empty list of role names
        ("admin") or (role, bucket) pairs (("data_reader", "travel"), bucket "*"
        for all)."""
        if not roles or not isinstance(roles, list):
            raise E.ArgumentError.pyexc("Roles must be a non-empty list", roles)
        if password and domain == AuthDomain.External:
            raise E.ArgumentError.pyexc("External domains must not have passwords", userid)
        parts = []
        for role in roles:
            if isinstance(role, str):
                parts.append(role)
            elif isinstance(role, (tuple, list)) and len(role) == 2:
                parts.append("%s[%s]" % tuple(role))
            else:
                raise E.ArgumentError.pyexc("a role is a name or a (role, bucket) pair", role)
        params = {"roles": ",".join(parts)}
        if password:
            params["password"] = password
        if name:
            params["name"] = name
        return self.http_request(self._get_management_path(domain, userid), method="PUT",
                                 content=self._mk_formstr(params),
                                 content_type="application/x-www-form-urlencoded")

    def user_remove(self, domain, userid):
        """Delete a user; HTTPError (404) if there is none."""
        return self.http_request(self._get_management_path(domain, userid), method="DELETE")

    get_user = user_get
    get_users = users_get
    upsert_user = user_upsert
    remove_user = user_remove

    def __getattr__(self, name):
        # 2.x's Admin was a Bucket of the cluster type: its key-value methods failed with a
        # CouchbaseError, not an AttributeError
        from couchbase_ffi.bucket import Bucket
        if not name.startswith("_") and callable(getattr(Bucket, name, None)):
            def refused(*args, **kwargs):
                raise E.NotSupportedError.pyexc("Admin is a management connection: %s() needs "
                                                "a Bucket" % (name,), name)
            return refused
        raise AttributeError(name)

    def __repr__(self):
        return "<couchbase_ffi.admin.Admin %s://%s:%d>" % ("https" if self.tls else "http",
                                                           self.host, self.port)


def _segment(s):
    if not isinstance(s, str) or not s:
        raise E.ArgumentError.pyexc("a name is a non-empty string", s)
    return quote(s, safe="")


def _parse_connstr(connstr):
    """(host, port, tls, cafile) of the first host of a connection string."""
    from couchbase_ffi.connstr import ConnectionString
    if not isinstance(connstr, str) or "://" not in connstr:
        raise E.ArgumentError.pyexc("a connection string is scheme://host[:port]", connstr)
    p = ConnectionString.parse(connstr)
    scheme = p.scheme.lower()
    if scheme not in ("http", "https", "couchbase", "couchbases"):
        raise E.ArgumentError.pyexc("Admin takes http://, couchbase:// or couchbases://",
                                    connstr)
    tls = scheme in ("couchbases", "https") or p.get_option("ssl") in ("on", "no_verify")
    host = p.hosts[0] if p.hosts else ""
    port = None
    if host.startswith("[") and "]" in host:          # [IPv6]:port
        end = host.index("]")
        host, rest = host[1:end], host[end + 1:]
        port = rest[1:] if rest.startswith(":") else None
    elif host.count(":") == 1:
        host, port = host.split(":")
    if port is not None:
        port, _, kind = port.partition("=")
        # on couchbase:// a port is a KV port unless marked =http / =https
        if scheme.startswith("couchbase") and kind.lower() not in ("http", "https"):
            port = None
    if not port:
        port = 18091 if tls else 8091
    cafile = p.get_option("truststorepath") or p.get_option("certpath")
    return host, port, tls, cafile
