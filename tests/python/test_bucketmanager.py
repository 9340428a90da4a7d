"""Bucket.bucket_manager(): 2.x's BucketManager — N1QL index management against the
mock's query service (its index statements, mock/indexes.py), and the design-document
methods through it.  Checks what reaches the service, what the user gets back, and the
errors 2.x gave (KeyExistsError, NotFoundError, TimeoutError)."""
import time

import pytest

from couchbase_ffi import exceptions as E
from couchbase_ffi.bucket import Bucket
from couchbase_ffi.bucketmanager import BucketManager, N1qlIndex, N1QL_PRIMARY_INDEX
from couchbase_ffi.mock import MockCluster, BucketSpec
from couchbase_ffi.n1ql import N1QLError


@pytest.fixture(scope="module")
def cluster():
    c = MockCluster(nodes=2, buckets=[BucketSpec("default", password="secret"),
                                      BucketSpec("other", password="secret2")]).start()
    yield c
    c.stop()


@pytest.fixture
def mgr(cluster):
    cluster.query_clear()
    b = Bucket(cluster.connstr("default"), password="secret")
    m = b.bucket_manager()
    yield m
    # leave no index behind for the next test
    for ix in m.n1ql_index_list(other_buckets=True):
        if ix.keyspace == "default":
            m.n1ql_index_drop(ix.name, primary=bool(ix.primary))
    cluster.query_index_build_delay(0)
    b.close()


def statements(cluster):
    return [r["statement"] for r in cluster.query_requests(clear=True)]


def test_bucket_manager_is_the_2x_class(mgr):
    assert isinstance(mgr, BucketManager)
    import couchbase_ffi
    couchbase_ffi.install_as_couchbase()
    import couchbase.bucketmanager
    import couchbase._ixmgmt
    assert couchbase.bucketmanager.BucketManager is BucketManager
    assert couchbase._ixmgmt.N1QL_PRIMARY_INDEX == "#primary"


def test_primary_index_create_list_drop(cluster, mgr):
    assert mgr.n1ql_index_list() == []
    cluster.query_requests(clear=True)
    assert mgr.n1ql_index_create_primary() == []
    assert statements(cluster) == ["CREATE PRIMARY INDEX ON `default` USING GSI"]
    ixs = mgr.n1ql_index_list()
    assert [(ix.name, ix.primary, ix.keyspace, ix.state) for ix in ixs] == [
        (N1QL_PRIMARY_INDEX, True, "default", "online")]
    assert isinstance(ixs[0], N1qlIndex) and str(ixs[0]) == "#primary"
    # the listing asks the service for this bucket's indexes only, by parameter
    req = cluster.query_requests(clear=True)[-1]
    assert "system:indexes" in req["statement"] and req["named"] == {"$keyspace": "default"}
    mgr.n1ql_index_drop_primary()
    assert statements(cluster) == ["DROP PRIMARY INDEX ON `default` USING GSI"]
    assert mgr.n1ql_index_list() == []


def test_create_existing_is_key_exists_unless_ignored(cluster, mgr):
    mgr.n1ql_index_create_primary()
    with pytest.raises(E.KeyExistsError) as ei:
        mgr.n1ql_index_create_primary()
    assert "already exists" in str(ei.value)
    assert isinstance(ei.value.inner_cause, N1QLError) and ei.value.inner_cause.n1ql_errcode == 4300
    assert mgr.n1ql_index_create_primary(ignore_exists=True) == []
    mgr.n1ql_index_create("by_city", fields=["city"])
    with pytest.raises(E.KeyExistsError):
        mgr.n1ql_index_create("by_city", fields=["town"])
    mgr.n1ql_index_create("by_city", fields=["town"], ignore_exists=True)
    # the first definition stands
    ix = [i for i in mgr.n1ql_index_list() if i.name == "by_city"][0]
    assert ix.fields == ["city"]


def test_drop_missing_is_not_found_unless_ignored(cluster, mgr):
    with pytest.raises(E.NotFoundError):
        mgr.n1ql_index_drop("nope")
    with pytest.raises(E.NotFoundError):
        mgr.n1ql_index_drop_primary()
    assert mgr.n1ql_index_drop("nope", ignore_missing=True) == []
    assert mgr.n1ql_index_drop_primary(ignore_missing=True) == []


def test_secondary_index_with_fields_and_condition(cluster, mgr):
    cluster.query_requests(clear=True)
    mgr.n1ql_index_create("ix_age", fields=["age", "LOWER(name)"], condition="type = 'user'")
    assert statements(cluster) == [
        "CREATE INDEX `ix_age` ON `default`(age, LOWER(name)) WHERE type = 'user' USING GSI"]
    ix = mgr.n1ql_index_list()[0]
    assert (ix.name, ix.primary, ix.fields, ix.condition, ix.state) == (
        "ix_age", None, ["age", "LOWER(name)"], "type = 'user'", "online")
    mgr.n1ql_index_drop("ix_age")
    assert statements(cluster)[-1] == "DROP INDEX `default`.`ix_age` USING GSI"


def test_list_orders_primary_first_and_separates_buckets(cluster, mgr):
    other = Bucket(cluster.connstr("other"), password="secret2").bucket_manager()
    try:
        other.n1ql_index_create("zz_other", fields=["x"])
        mgr.n1ql_index_create("b_ix", fields=["b"])
        mgr.n1ql_index_create("a_ix", fields=["a"])
        mgr.n1ql_index_create_primary()
        assert [ix.name for ix in mgr.n1ql_index_list()] == ["#primary", "a_ix", "b_ix"]
        everything = [(ix.keyspace, ix.name) for ix in mgr.n1ql_index_list(other_buckets=True)]
        assert ("other", "zz_other") in everything and ("default", "a_ix") in everything
        assert [ix.name for ix in other.n1ql_index_list()] == ["zz_other"]
    finally:
        other.n1ql_index_drop("zz_other", ignore_missing=True)


def test_deferred_build_and_watch(cluster, mgr):
    cluster.query_index_build_delay(0.3)
    mgr.n1ql_index_create("d1", fields=["f1"], defer=True)
    mgr.n1ql_index_create("d2", fields=["f2"], defer=True)
    mgr.n1ql_index_create("ready", fields=["f3"])
    assert statements(cluster)[0].endswith('USING GSI WITH {"defer_build": true}')
    states = dict((ix.name, ix.state) for ix in mgr.n1ql_index_list())
    assert states == {"d1": "deferred", "d2": "deferred", "ready": "online"}
    built = mgr.n1ql_index_build_deferred()
    assert sorted(ix.name for ix in built) == ["d1", "d2"]
    assert "BUILD INDEX ON `default`(`d1`, `d2`) USING GSI" in statements(cluster)
    assert dict((ix.name, ix.state) for ix in mgr.n1ql_index_list())["d1"] == "building"
    t0 = time.monotonic()
    done = mgr.n1ql_index_watch(built, timeout=10, interval=0.05)
    assert time.monotonic() - t0 < 5
    assert [(ix.name, ix.state) for ix in done] == [("d1", "online"), ("d2", "online")]
    # nothing deferred is left: building again builds nothing
    assert mgr.n1ql_index_build_deferred() == []


def test_watch_times_out_and_reports_missing(cluster, mgr):
    mgr.n1ql_index_create("slow", fields=["s"], defer=True)
    t0 = time.monotonic()
    with pytest.raises(E.TimeoutError) as ei:
        mgr.n1ql_index_watch(["slow"], timeout=0.3, interval=0.05)
    assert 0.25 < time.monotonic() - t0 < 3
    assert "slow" in str(ei.value)
    with pytest.raises(E.NotFoundError):
        mgr.n1ql_index_watch(["slow", "never_made"], timeout=1, interval=0.05)
    # names and the primary by watch_primary
    mgr.n1ql_index_create_primary()
    mgr.n1ql_index_create("fast", fields=["q"])
    got = mgr.n1ql_index_watch(["fast"], timeout=1, interval=0.05, watch_primary=True)
    assert [ix.name for ix in got] == ["fast", "#primary"]


def test_drop_what_the_list_returns(cluster, mgr):
    """2.x's own suite clears a bucket with ``for ix in list(): drop(ix)``: primary,
    named primary and secondary indexes alike."""
    mgr.n1ql_index_create_primary()
    mgr.n1ql_index_create("namedPrimary", primary=True)
    mgr.n1ql_index_create("ix2", fields=("fld1", "fld2"))
    assert len(mgr.n1ql_index_list()) == 3
    cluster.query_requests(clear=True)
    for ix in mgr.n1ql_index_list():
        mgr.n1ql_index_drop(ix)
    assert mgr.n1ql_index_list() == []
    assert [s for s in statements(cluster) if s.startswith("DROP")] == [
        "DROP PRIMARY INDEX ON `default` USING GSI",
        "DROP INDEX `default`.`namedPrimary` USING GSI",
        "DROP INDEX `default`.`ix2` USING GSI"]


def test_bad_arguments_raise_before_sending(cluster, mgr):
    cluster.query_requests(clear=True)
    with pytest.raises(ValueError):
        mgr.n1ql_index_create("noflds")
    with pytest.raises(TypeError):
        mgr.n1ql_index_create("", primary=True, fields=["a"])
    with pytest.raises(ValueError):
        mgr.n1ql_index_create("", fields=["a"])
    with pytest.raises(ValueError):
        mgr.n1ql_index_create("", primary=True, condition="a > 1")
    with pytest.raises(TypeError):
        mgr.n1ql_index_create("x", fields=["a"], colour="blue")
    with pytest.raises(E.ArgumentError):
        mgr.n1ql_index_create("bad`name", fields=["a"])
    with pytest.raises(E.ArgumentError):
        mgr.n1ql_index_watch(["x"], timeout=-1)
    assert cluster.query_requests() == []


def test_other_query_errors_pass_through(cluster, mgr):
    cluster.query_register("CREATE INDEX `boom` ON `default`(a) USING GSI",
                           errors=[{"code": 5000, "msg": "GSI CreateIndex() - cause: "
                                                         "indexer out of memory"}])
    with pytest.raises(N1QLError) as ei:
        mgr.n1ql_index_create("boom", fields=["a"])
    assert ei.value.n1ql_errcode == 5000
    assert not isinstance(ei.value, (E.KeyExistsError, E.NotFoundError))


def test_design_documents_through_the_manager(cluster, mgr):
    ddoc = {"views": {"all": {"map": "function (doc, meta) { emit(meta.id, null); }"}}}
    mgr.design_create("mgrdoc", ddoc, use_devmode=False)
    got = mgr.design_get("mgrdoc", use_devmode=False)
    assert got.value["views"] == ddoc["views"]
    mgr.design_delete("mgrdoc", use_devmode=False)
    with pytest.raises(E.HTTPError):
        mgr.design_get("mgrdoc", use_devmode=False)


def test_async_buckets_refuse(cluster):
    pytest.importorskip("twisted")
    from couchbase_ffi.asyncio import Bucket as ABucket
    b = ABucket(cluster.connstr("default"), password="secret")
    try:
        with pytest.raises(E.NotSupportedError):
            b.bucket_manager()
    finally:
        b.close()


def test_memcached_bucket_has_no_manager(memcached):
    b = Bucket(memcached.connstr)
    with pytest.raises(E.NotSupportedError) as ei:
        b.bucket_manager()
    assert "memcached://" in str(ei.value)
    b.close()


def test_mock_index_statements_as_users_write_them(cluster, mgr):
    """Hand-written index N1QL (not the manager's spelling) reaches the same definitions."""
    b = mgr._cb

    def q(statement, *args):
        from couchbase_ffi.n1ql import N1QLQuery
        return list(b.n1ql_query(N1QLQuery(statement, *args)))
    q("create index ix_p on default((a + b), c) where (x > 1 and y in ['u', 'v']) "
      "with {'defer_build': true}")
    q("CREATE PRIMARY INDEX `named_primary` ON `default`")
    ixs = dict((ix.name, ix) for ix in mgr.n1ql_index_list())
    assert ixs["ix_p"].fields == ["(a + b)", "c"]
    assert ixs["ix_p"].condition == "(x > 1 and y in ['u', 'v'])"
    assert ixs["ix_p"].state == "deferred"
    assert ixs["named_primary"].primary is True
    with pytest.raises(N1QLError) as ei:      # not deferred: nothing to build
        q("BUILD INDEX ON default(named_primary)")
    assert ei.value.n1ql_errcode == 5000
    q("BUILD INDEX ON `default`(`ix_p`)")
    rows = q("SELECT i.* FROM system:indexes i WHERE keyspace_id = 'default'")
    assert sorted(r["name"] for r in rows) == ["ix_p", "named_primary"]
    assert q("SELECT x.* FROM system:indexes AS x WHERE keyspace_id = $1", "nope") == []
    with pytest.raises(N1QLError) as ei:
        q("CREATE INDEX broken ON `default`(a WHERE x")
    assert ei.value.n1ql_errcode == 3000
    with pytest.raises(N1QLError) as ei:
        q("CREATE PRIMARY INDEX ON `no_such_bucket`")
    assert ei.value.n1ql_errcode == 12003
    assert len(cluster.query_indexes("default")) == 2
    q("DROP INDEX default.named_primary")
    assert [ix["name"] for ix in cluster.query_indexes("default")] == ["ix_p"]
