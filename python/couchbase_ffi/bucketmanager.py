"""couchbase 2.x's ``BucketManager`` (``Bucket.bucket_manager()``): design documents
and N1QL indexes of one Bucket.

    mgr = bucket.bucket_manager()
    mgr.n1ql_index_create_primary(ignore_exists=True)
    mgr.n1ql_index_create("by_city", fields=["city"], defer=True)
    mgr.n1ql_index_watch(mgr.n1ql_index_build_deferred(), timeout=30)
    mgr.design_create("people", {"views": {...}}, use_devmode=False)

The design-document methods are the Bucket's own (``couchbase_ffi._design``); the
index methods run N1QL statements through the query service (``couchbase_ffi._ixmgmt``
lists them).  Synchronous Buckets only, on couchbase://.
"""
from couchbase_ffi import _ixmgmt
from couchbase_ffi import exceptions as E
from couchbase_ffi._ixmgmt import N1QL_PRIMARY_INDEX, N1qlIndex

__all__ = ["BucketManager", "N1qlIndex", "N1QL_PRIMARY_INDEX"]


class BucketManager(object):
    """Maintenance calls of one Bucket (2.x: ``couchbase.bucketmanager``)."""

    def __init__(self, cb):
        self._cb = cb

    # ---- design documents --------------------------------------------------------------
    def design_create(self, name, ddoc, use_devmode=True, syncwait=0):
        """Store design document ``name`` (see Bucket.design_create)."""
        return self._cb.design_create(name, ddoc, use_devmode, syncwait)

    def design_get(self, name, use_devmode=True):
        """The design document ``name`` as an HttpResult; HTTPError (404) if missing."""
        return self._cb.design_get(name, use_devmode)

    def design_publish(self, name, syncwait=0):
        """Copy ``dev_<name>`` to production ``<name>`` and delete the dev copy."""
        return self._cb.design_publish(name, syncwait)

    def design_delete(self, name, use_devmode=True, syncwait=0):
        """Delete design document ``name``; HTTPError (404) if missing."""
        return self._cb.design_delete(name, use_devmode, syncwait)

    # ---- N1QL indexes ------------------------------------------------------------------
    def _index(self, ix, primary=False):
        if isinstance(ix, N1qlIndex):
            return N1qlIndex(ix)
        info = N1qlIndex()
        info.keyspace = self._cb.bucket
        info.primary = primary
        if ix:
            info.name = ix
        elif primary:
            info.name = N1QL_PRIMARY_INDEX
        else:
            raise ValueError("Missing name for non-primary index")
        return info

    def n1ql_index_create(self, ix, **kwargs):
        """Create index ``ix`` on this bucket: ``fields`` (a list of N1QL expressions,
        required unless ``primary``), ``condition`` (a WHERE expression), ``primary``,
        ``defer`` (create it "deferred": build with n1ql_index_build_deferred) and
        ``ignore_exists``.  KeyExistsError if it exists (without ignore_exists).
        Returns the statement's rows (an empty list)."""
        defer = kwargs.pop("defer", False)
        ignore_exists = kwargs.pop("ignore_exists", False)
        primary = kwargs.pop("primary", False)
        fields = kwargs.pop("fields", None) or []
        cond = kwargs.pop("condition", None)
        if kwargs:
            raise TypeError("Unknown keyword arguments", kwargs)
        info = self._index(ix, primary)
        if primary and fields:
            raise TypeError("Cannot create primary index with explicit fields")
        if not primary and not fields:
            raise ValueError("Fields required for non-primary index")
        if isinstance(fields, str):
            fields = [fields]
        if not all(isinstance(f, str) and f.strip() for f in fields):
            raise E.ArgumentError.pyexc("index fields are non-empty strings", fields)
        if cond:
            if primary:
                raise ValueError("cannot specify condition for primary index")
            info.condition = cond
        if fields:
            info.fields = list(fields)
        return _ixmgmt.create(self._cb, info, defer=defer, ignore_exists=ignore_exists)

    def n1ql_index_create_primary(self, defer=False, ignore_exists=False):
        """Create the bucket's primary index (``n1ql_index_create('', primary=True)``)."""
        return self.n1ql_index_create("", defer=defer, primary=True,
                                      ignore_exists=ignore_exists)

    def n1ql_index_drop(self, ix, primary=False, **kwargs):
        """Drop index ``ix`` (``primary=True``: the primary index; ``ix`` may then be
        empty).  NotFoundError if there is none, unless ``ignore_missing``."""
        ignore_missing = kwargs.pop("ignore_missing", False)
        if kwargs:
            raise TypeError("Unknown keyword arguments", kwargs)
        return _ixmgmt.drop(self._cb, self._index(ix, primary), ignore_missing=ignore_missing)

    def n1ql_index_drop_primary(self, **kwargs):
        """Drop the primary index (``n1ql_index_drop('', primary=True, **kwargs)``)."""
        return self.n1ql_index_drop("", primary=True, **kwargs)

    def n1ql_index_list(self, other_buckets=False):
        """The indexes (N1qlIndex) of this bucket, primary first, then by name; of
        every bucket with ``other_buckets``."""
        return _ixmgmt.list_indexes(self._cb, None if other_buckets else self._cb.bucket)

    def n1ql_index_build_deferred(self, other_buckets=False):
        """Start building every deferred index of this bucket (of every bucket with
        ``other_buckets``); returns them (N1qlIndex), for n1ql_index_watch."""
        return _ixmgmt.build_deferred(self._cb, None if other_buckets else self._cb.bucket)

    def n1ql_index_watch(self, indexes, timeout=30, interval=1, watch_primary=False):
        """Wait until every index of ``indexes`` (N1qlIndex objects or names of this
        bucket's indexes) is online, polling every ``interval`` seconds; returns them.
        ``watch_primary``: the primary index too.  TimeoutError after ``timeout``
        seconds; NotFoundError if one of them does not exist."""
        ixs = [N1qlIndex.from_any(x, self._cb.bucket) for x in indexes]
        if watch_primary:
            ixs.append(N1qlIndex.from_any(N1QL_PRIMARY_INDEX, self._cb.bucket))
        return _ixmgmt.watch(self._cb, ixs, float(timeout), float(interval))

    # 2.x's other names
    create_n1ql_index = n1ql_index_create
    create_n1ql_primary_index = n1ql_index_create_primary
    list_n1ql_indexes = n1ql_index_list
    drop_n1ql_index = n1ql_index_drop
    drop_n1ql_primary_index = n1ql_index_drop_primary
    build_n1ql_deferred_indexes = n1ql_index_build_deferred
    watch_n1ql_indexes = n1ql_index_watch
