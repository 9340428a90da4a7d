"""N1QL index management for BucketManager (couchbase 2.x's ``couchbase._ixmgmt``).

Every call is one or more N1QL statements through ``Bucket.n1ql_query``:

    list    SELECT idx.* FROM system:indexes AS idx [WHERE keyspace_id = $keyspace]
            ORDER BY is_primary DESC, name ASC
    create  CREATE [PRIMARY] INDEX `name` ON `bucket`[(fields)] [WHERE condition]
            USING GSI [WITH {"defer_build": true}]
    drop    DROP PRIMARY INDEX ON `bucket` USING GSI | DROP INDEX `bucket`.`name` USING GSI
    build   the deferred indexes of the list, then BUILD INDEX ON `bucket`(`a`, ...) USING GSI
    watch   the list, polled until every index asked for is "online"

An index that exists already is KeyExistsError (unless ``ignore_exists``), one that
does not is NotFoundError (unless ``ignore_missing``), as 2.x reported them;
any other failure is the N1QLError the query service gave.
"""
import time

from couchbase_ffi import exceptions as E

N1QL_PRIMARY_INDEX = "#primary"

# the query service's codes for "the index exists" and "no such index"
_EXISTS_CODES = (4300,)
_MISSING_CODES = (12004, 12016)


def _field(raw_key):
    def fget(self):
        return self.raw.get(raw_key, None)

    def fset(self, value):
        self.raw[raw_key] = value

    def fdel(self):
        self.raw.pop(raw_key, None)
    return property(fget, fset, fdel)


class N1qlIndex(object):
    """One index as ``system:indexes`` describes it; ``raw`` is that row."""

    def __init__(self, raw=None):
        if isinstance(raw, N1qlIndex):
            raw = raw.raw
        self.raw = dict(raw) if raw else {}

    name = _field("name")
    primary = _field("is_primary")
    keyspace = _field("keyspace_id")
    state = _field("state")
    condition = _field("condition")
    fields = _field("index_key")

    @classmethod
    def from_any(cls, obj, bucket):
        """A new N1qlIndex from an N1qlIndex or an index name (empty: the primary)."""
        if isinstance(obj, cls):
            return cls(obj.raw)
        return cls({"namespace_id": "default", "keyspace_id": bucket,
                    "name": obj or N1QL_PRIMARY_INDEX, "using": "gsi"})

    def __eq__(self, other):
        return isinstance(other, N1qlIndex) and self.raw == other.raw

    def __ne__(self, other):
        return not self == other

    __hash__ = None

    def __repr__(self):
        return "Index<name=%s, primary=%s, raw=%r>" % (self.name, self.primary, self.raw)

    def __str__(self):
        return str(self.name)


def ident(name, what="name"):
    """``name`` as a backquoted N1QL identifier."""
    if not isinstance(name, str) or not name:
        raise E.ArgumentError.pyexc("an index %s is a non-empty string" % what, name)
    if "`" in name:
        raise E.ArgumentError.pyexc("an index %s may not contain a backquote" % what, name)
    return "`%s`" % name


def _classify(exc):
    """KeyExistsError / NotFoundError for the query service's index errors, else None."""
    code = getattr(exc, "n1ql_errcode", None)
    msg = str((getattr(exc, "objextra", None) or {}).get("msg", "")).lower()
    if code in _EXISTS_CODES or "already exist" in msg:
        return E.KeyExistsError
    if code in _MISSING_CODES or ("index" in msg and ("not found" in msg
                                                      or "does not exist" in msg)):
        return E.NotFoundError
    return None


def run(bucket, statement, ignore_exists=False, ignore_missing=False, **params):
    """Run one statement; its rows.  Index errors become KeyExistsError / NotFoundError
    (or nothing, when ignored)."""
    from couchbase_ffi.n1ql import N1QLError, N1QLQuery
    q = N1QLQuery(statement, **params)
    try:
        return list(bucket.n1ql_query(q))
    except N1QLError as exc:
        cls = _classify(exc)
        if cls is E.KeyExistsError and ignore_exists:
            return []
        if cls is E.NotFoundError and ignore_missing:
            return []
        if cls is None:
            raise
        err = getattr(exc, "objextra", None) or {}
        raise cls.pyexc("%s (%s)" % (err.get("msg", exc), statement), err, exc)


def list_indexes(bucket, keyspace=None):
    statement = "SELECT idx.* FROM system:indexes AS idx"
    params = {}
    if keyspace is not None:
        statement += " WHERE keyspace_id = $keyspace"
        params["keyspace"] = keyspace
    statement += " ORDER BY is_primary DESC, name ASC"
    return [N1qlIndex(r) for r in run(bucket, statement, **params)]


def create(bucket, info, defer=False, ignore_exists=False):
    ks = ident(info.keyspace, "keyspace")
    if info.primary:
        statement = "CREATE PRIMARY INDEX "
        if info.name and info.name != N1QL_PRIMARY_INDEX:
            statement += ident(info.name) + " "
        statement += "ON " + ks
    else:
        statement = "CREATE INDEX %s ON %s(%s)" % (ident(info.name), ks, ", ".join(info.fields))
        if info.condition:
            statement += " WHERE " + info.condition
    statement += " USING GSI"
    if defer:
        statement += ' WITH {"defer_build": true}'
    return run(bucket, statement, ignore_exists=ignore_exists)


def drop(bucket, info, ignore_missing=False):
    ks = ident(info.keyspace, "keyspace")
    if info.primary and (not info.name or info.name == N1QL_PRIMARY_INDEX):
        statement = "DROP PRIMARY INDEX ON %s USING GSI" % ks
    else:
        statement = "DROP INDEX %s.%s USING GSI" % (ks, ident(info.name))
    return run(bucket, statement, ignore_missing=ignore_missing)


def build_deferred(bucket, keyspace=None):
    """Start building every deferred index (of ``keyspace``, or of every bucket);
    returns them, to pass to watch."""
    pending = [ix for ix in list_indexes(bucket, keyspace)
               if ix.state in ("deferred", "pending")]
    by_ks = {}
    for ix in pending:
        by_ks.setdefault(ix.keyspace, []).append(ix)
    for ks, ixs in by_ks.items():
        run(bucket, "BUILD INDEX ON %s(%s) USING GSI" % (
            ident(ks, "keyspace"), ", ".join(ident(ix.name) for ix in ixs)))
    return pending


def watch(bucket, indexes, timeout, interval):
    """Poll the list until every index of ``indexes`` is online: those indexes.
    NotFoundError if one of them is not there; TimeoutError past ``timeout``."""
    if timeout < 0 or interval <= 0:
        raise E.ArgumentError.pyexc("timeout must be >= 0 and interval > 0",
                                    (timeout, interval))
    wanted = [(ix.keyspace, ix.name) for ix in indexes]
    deadline = time.monotonic() + timeout
    while True:
        seen = dict(((ix.keyspace, ix.name), ix)
                    for ix in list_indexes(bucket, None))
        for want in wanted:
            if want not in seen:
                raise E.NotFoundError.pyexc("index %s on %s does not exist" % (want[1], want[0]),
                                            want[1])
        if all(seen[w].state == "online" for w in wanted):
            return [seen[w] for w in wanted]
        left = deadline - time.monotonic()
        if left <= 0:
            waiting = [w[1] for w in wanted if seen[w].state != "online"]
            raise E.TimeoutError.pyexc("indexes not online within %ss: %s"
                                       % (timeout, ", ".join(waiting)), waiting)
        time.sleep(min(interval, left))
