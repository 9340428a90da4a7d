"""The mock's cluster management: buckets created, changed and deleted at run time,
and RBAC users, behind the REST port's ns_server endpoints (docs/mock.md,
"Management") and the Python API.

    POST   /pools/default/buckets              create (form: name, bucketType, ramQuotaMB,
                                               replicaNumber, saslPassword, flushEnabled)
    POST   /pools/default/buckets/<name>       change (saslPassword, flushEnabled)
    DELETE /pools/default/buckets/<name>       delete
    GET    /settings/rbac/users[/local]        the users
    GET|PUT|DELETE /settings/rbac/users/local/<id>   one user (PUT form: roles, password, name)

Only administrators may call them (403 otherwise).  Refusals are ns_server's shape:
HTTP 400 with ``{"errors": {field: reason}}``.
"""
import re

from couchbase_ffi.mock.state import COUCHBASE, MEMCACHED, BucketSpec, CouchbaseBucket, \
    MemcachedBucket

_NAME = re.compile(r"^[A-Za-z0-9_.%-]{1,100}$")
_ROLE = re.compile(r"^([a-z_]+)(?:\[([^\]]+)\])?$")
_ADMIN_ROLES = ("admin", "cluster_admin")


class Refused(Exception):
    """A management request the cluster refuses: HTTP ``code`` with ``body``."""

    def __init__(self, code, body):
        Exception.__init__(self, body)
        self.code = code
        self.body = body


def _bad(field, reason):
    return Refused(400, {"errors": {field: reason}})


class Management(object):
    """Buckets and users of one mock cluster (its ClusterState and KV servers)."""

    def __init__(self, state, kv_servers, views=None, default_vbuckets=1024):
        self.state = state
        self.kv_servers = kv_servers       # a callable: the KVServer list
        self.views = views
        self.default_vbuckets = default_vbuckets
        self.roles = {}                    # user -> [(role, bucket or None)]
        self.names = {}                    # user -> display name
        for user, allowed in state.access.items():
            if user in state.buckets:
                continue                   # a bucket's own (classic) user
            if allowed is None:
                self.roles[user] = [("admin", None)]
            else:
                self.roles[user] = [("bucket_full_access", b) for b in sorted(allowed)]

    # -- buckets ------------------------------------------------------------------------------
    def create_bucket(self, name, bucket_type="couchbase", password="", replicas=1,
                      ram_quota=100, flush_enabled=False, vbuckets=None):
        if not isinstance(name, str) or not _NAME.match(name or ""):
            raise _bad("name", "Bucket name can only contain characters in range A-Z, a-z, "
                       "0-9 as well as underscore, period, dash & percent.")
        if name in self.state.buckets:
            raise _bad("name", "Bucket with given name already exists")
        if name in self.state.creds and name not in self.state.buckets:
            raise _bad("name", "A user with this name exists: the bucket's classic user "
                       "would clash with it (the mock keeps one password per name)")
        kind = {"couchbase": COUCHBASE, "membase": COUCHBASE, "ephemeral": COUCHBASE,
                "memcached": MEMCACHED}.get(bucket_type)
        if kind is None:
            raise _bad("bucketType", "invalid bucket type %r" % (bucket_type,))
        try:
            replicas = int(replicas)
            ram_quota = int(float(ram_quota))
        except (TypeError, ValueError):
            raise _bad("replicaNumber", "replicaNumber and ramQuotaMB must be numbers")
        if kind == COUCHBASE and not 0 <= replicas <= 3:
            raise _bad("replicaNumber", "Replica number larger than 3 is not supported.")
        if ram_quota < 100:
            raise _bad("ramQuota", "RAM quota cannot be less than 100 MiB")
        spec = BucketSpec(name, kind, password=password or "", replicas=replicas,
                          vbuckets=vbuckets or self.default_vbuckets)
        spec.flush_enabled = bool(flush_enabled)
        spec.ram_quota = ram_quota
        cls = CouchbaseBucket if kind == COUCHBASE else MemcachedBucket
        self.state.buckets[name] = cls(self.state, spec)
        self.state.creds.add(name, spec.password)
        self.state.access[name] = set([name])
        self.state.bump()
        return {}

    def _bucket(self, name):
        b = self.state.buckets.get(name)
        if b is None:
            raise Refused(404, "Requested resource not found.\r\n")
        return b

    def update_bucket(self, name, password=None, flush_enabled=None, replicas=None,
                      ram_quota=None):
        b = self._bucket(name)
        if replicas is not None and b.type == COUCHBASE and int(replicas) != b.num_replicas:
            raise _bad("replicaNumber", "the mock cannot change a bucket's replica count "
                       "(it would need a rebalance)")
        if ram_quota is not None:
            if int(float(ram_quota)) < 100:
                raise _bad("ramQuota", "RAM quota cannot be less than 100 MiB")
            b.spec.ram_quota = int(float(ram_quota))
        if password is not None:
            b.spec.password = b.password = password
            self.state.creds.add(name, password)
        if flush_enabled is not None:
            b.spec.flush_enabled = bool(int(flush_enabled))
        return {}

    def delete_bucket(self, name):
        b = self._bucket(name)
        del self.state.buckets[name]
        if self.state.access.get(name) == set([name]):
            del self.state.access[name]
            self.state.creds.remove(name)
        for allowed in self.state.access.values():
            if allowed is not None:
                allowed.discard(name)
        if self.views is not None:
            self.views.ddocs.pop(name, None)
        # as the server does: the connections that selected it are dropped
        for kv in self.kv_servers():
            for s in list(kv.sessions):
                if s.bucket is b:
                    s.closed = True
                    s.writer.close()
        self.state.bump()
        return {}

    @staticmethod
    def flush_enabled(b):
        return getattr(b.spec, "flush_enabled", True)

    # -- users --------------------------------------------------------------------------------
    def users(self):
        return [self._user_json(u) for u in sorted(self.roles)]

    def user(self, userid):
        if userid not in self.roles:
            raise Refused(404, '"User was not found."')
        return self._user_json(userid)

    def _user_json(self, userid):
        roles = []
        for role, bucket in self.roles[userid]:
            r = {"role": role}
            if bucket is not None:
                r["bucket_name"] = bucket
            roles.append(r)
        out = {"id": userid, "domain": "local", "roles": roles}
        if self.names.get(userid):
            out["name"] = self.names[userid]
        return out

    def upsert_user(self, userid, roles, password=None, name=None):
        if not isinstance(userid, str) or not _NAME.match(userid or ""):
            raise _bad("id", "the user id is 1 to 100 characters of A-Z a-z 0-9 _ . % -")
        if userid in self.state.buckets:
            raise _bad("id", "a bucket of this name has its own user in the mock")
        parsed = []
        for part in [p.strip() for p in (roles or "").split(",") if p.strip()]:
            m = _ROLE.match(part)
            if m is None:
                raise _bad("roles", "Malformed role %r" % (part,))
            bucket = m.group(2)
            if bucket is not None and bucket != "*" and bucket not in self.state.buckets:
                raise _bad("roles", "Cannot assign roles to user because the following roles "
                           "are unknown, malformed or role parameters are undefined: [%s]"
                           % part)
            parsed.append((m.group(1), bucket))
        if not parsed:
            raise _bad("roles", "roles must be a non-empty list")
        if userid not in self.state.creds and not password:
            raise _bad("password", "Password is required for a new user")
        if password:
            self.state.creds.add(userid, password)
        self.roles[userid] = parsed
        if name is not None:
            self.names[userid] = name
        if any(r in _ADMIN_ROLES for r, _ in parsed):
            self.state.access[userid] = None
        else:
            self.state.access[userid] = set(b for _, b in parsed if b is not None)
        return ""

    def remove_user(self, userid):
        if userid not in self.roles:
            raise Refused(404, '"User was not found."')
        del self.roles[userid]
        self.names.pop(userid, None)
        self.state.access.pop(userid, None)
        self.state.creds.remove(userid)
        return ""

    # -- the REST endpoints --------------------------------------------------------------------
    def route(self, method, path, form):
        """The answer (payload, HTTP status) of a management endpoint, or None if
        ``path`` is none of them.  Raises Refused."""
        if path == ["pools", "default", "buckets"] and method == "POST":
            self.create_bucket(form.get("name"), form.get("bucketType", "couchbase"),
                               form.get("saslPassword", ""), form.get("replicaNumber", 1),
                               form.get("ramQuotaMB", 0), form.get("flushEnabled", "0") == "1")
            return "", 202
        if len(path) == 4 and path[:3] == ["pools", "default", "buckets"]:
            if method == "DELETE":
                return self.delete_bucket(path[3]) or "", 200
            if method == "POST":
                return self.update_bucket(path[3], form.get("saslPassword"),
                                          form.get("flushEnabled"), form.get("replicaNumber"),
                                          form.get("ramQuotaMB")) or "", 200
            return None
        if path[:3] != ["settings", "rbac", "users"]:
            return None
        if len(path) == 3 or (len(path) == 4 and path[3] == "local"):
            if method == "GET":
                return self.users(), 200
            raise Refused(405, {"error": "method not allowed"})
        if len(path) == 5 and path[3] in ("local", "external"):
            if path[3] == "external":
                raise Refused(400, {"errors": {"domain": "the mock has no external users"}})
            if method == "GET":
                return self.user(path[4]), 200
            if method == "PUT":
                return self.upsert_user(path[4], form.get("roles"), form.get("password"),
                                        form.get("name")), 200
            if method == "DELETE":
                return self.remove_user(path[4]), 200
            raise Refused(405, {"error": "method not allowed"})
        return None
