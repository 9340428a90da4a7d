"""couchbase 2.x semantics of the Couchbase-only operations (lock, observe,
endure, replica reads, durability) and of couchbase:// buckets, against the
mock cluster, through the ``couchbase.*`` names (install_as_couchbase())."""
import re

import pytest

import couchbase_ffi

try:
    couchbase_ffi.install_as_couchbase()
except couchbase_ffi.CouchbaseAlreadyImported:  # pragma: no cover
    pytest.skip("another couchbase package is imported", allow_module_level=True)

import couchbase.exceptions as E  # noqa: E402
from couchbase.bucket import Bucket  # noqa: E402
from couchbase.result import ValueResult, OperationResult, ObserveInfo, MultiResult  # noqa
from couchbase.user_constants import OBS_MASK, OBS_FOUND, OBS_PERSISTED  # noqa: E402
from couchbase.cluster import (Cluster, PasswordAuthenticator, ClassicAuthenticator,  # noqa
                               Authenticator, MixedAuthError)

from couchbase_ffi.mock import MockCluster, BucketSpec  # noqa: E402

REPLICAS = 2


@pytest.fixture(scope="module")
def cluster():
    c = MockCluster(nodes=3, buckets=[BucketSpec("default", "couchbase", password="secret",
                                                 replicas=REPLICAS),
                                      BucketSpec("cache", "memcached", password="")]).start()
    c.set_delays(persist=0.0, replicate=0.0)
    yield c
    c.stop()


@pytest.fixture
def cb(cluster):
    b = Bucket(cluster.connstr("default"), password="secret")
    yield b
    b.close()


_n = [0]


def key(prefix="k"):
    _n[0] += 1
    return "cbcompat:%s:%d" % (prefix, _n[0])


def kv_dict(n=4, prefix="kv"):
    return {key(prefix): "value_%d" % i for i in range(n)}


# ---- lock_t ------------------------------------------------------------------------------

def test_simple_lock(cb):
    k, v = key("lock"), "locked_value"
    cb.upsert(k, v)
    rv = cb.lock(k, ttl=5)
    assert type(rv) is ValueResult and rv.success and rv.value == v and rv.cas
    with pytest.raises(E.KeyExistsError):
        cb.upsert(k, v)
    with pytest.raises(E.TemporaryFailError) as ei:
        cb.lock(k, ttl=5)
    assert isinstance(ei.value, E.CouchbaseTransientError)  # retry loops catch this
    with pytest.raises(E.TemporaryFailError):
        cb.unlock(k, cas=0xdeadbeef)
    ur = cb.unlock(k, rv.cas)
    assert type(ur) is OperationResult and ur.success
    with pytest.raises(E.TemporaryFailError):
        cb.unlock(k, 1234)  # not locked any more
    assert cb.upsert(k, v).success


def test_lock_cas_unlocks_through_a_mutation(cb):
    k = key("lockcas")
    cb.upsert(k, "v")
    rv = cb.lock(k, ttl=5)
    assert cb.upsert(k, rv.value.upper(), cas=rv.cas).success
    assert cb.get(k).value == "V" and cb.upsert(k, "again").success


def test_lock_needs_ttl_and_unlock_needs_cas(cb):
    with pytest.raises(E.ArgumentError):
        cb.lock("foo")
    with pytest.raises(E.ArgumentError):
        cb.lock_multi(("foo", "bar"))
    with pytest.raises(E.ArgumentError):
        cb.lock("foo", ttl="string")
    with pytest.raises(E.ArgumentError):
        cb.unlock_multi(("foo", "bar"))
    with pytest.raises(E.ArgumentError):
        cb.unlock_multi({"foo": 0, "bar": 0})
    with pytest.raises(E.ArgumentError):
        cb.unlock("foo", 0)


def test_lock_multi_and_unlock_multi_forms(cb):
    kvs = kv_dict(prefix="lockm")
    cb.upsert_multi(kvs)
    rvs = cb.lock_multi(kvs.keys(), ttl=5)
    assert rvs.all_ok and len(rvs) == len(kvs)
    assert {k: v.value for k, v in rvs.items()} == kvs
    assert cb.unlock_multi(rvs).all_ok  # the MultiResult of lock_multi
    k = key("unlockm")
    cb.upsert(k, "lock_value")
    rv = cb.lock(k, ttl=5)
    rvs = cb.unlock_multi({k: rv.cas})
    assert rvs.all_ok and rvs[k].success
    rv = cb.lock(k, ttl=5)
    assert cb.unlock_multi({k: rv}).all_ok  # key -> the lock's result
    rv = cb.lock(k, ttl=5)
    assert cb.unlock_multi([rv]).all_ok  # a sequence of results
    with pytest.warns(RuntimeWarning):
        try:
            cb.lock_multi((k, k), ttl=5)
        except E.TemporaryFailError:
            pass


def test_duplicate_results_in_unlock_multi_warn(cb):
    k = key("dupunlock")
    rv = cb.upsert(k, "value")
    with pytest.warns(RuntimeWarning):
        try:
            cb.unlock_multi((rv, rv))
        except (E.NotFoundError, E.TemporaryFailError):
            pass


def test_results_of_couchbase_operations(cb):
    k = key("results")
    cb.upsert(k, "value")
    rv = cb.lock(k, ttl=10)
    assert type(rv) is ValueResult and rv.value == "value" and isinstance(rv.flags, int)
    assert type(cb.unlock(k, rv.cas)) is OperationResult
    assert type(cb.endure(k, persist_to=1, replicate_to=1)) is OperationResult
    assert type(cb.observe(k)) is ValueResult
    assert type(cb.rget(k)) is ValueResult


# ---- observe_t ---------------------------------------------------------------------------

def test_single_observe(cb):
    k = key("observe")
    cb.upsert(k, "value")
    rv = cb.observe(k)
    grv = cb.get(k)
    assert rv.success and isinstance(rv.value, list) and rv.value
    found_master = False
    for oi in rv.value:
        assert isinstance(oi, ObserveInfo)
        assert oi.flags == oi.flags & OBS_MASK
        if oi.from_master:
            found_master = True
            assert oi.flags & OBS_FOUND == OBS_FOUND and oi.cas == grv.cas
        assert re.match(r"ObserveInfo<Status=\[OBS_\w+ \(0x[0-9A-F]+\)\], Master=(True|False), "
                        r"CAS=0x[0-9A-F]+>$", repr(oi)), repr(oi)
    assert found_master and len(rv.value) == 1 + REPLICAS


def test_multi_observe_and_master_only(cb):
    kexist, kmissing = key("obs-exist"), key("obs-missing")
    w = cb.upsert(kexist, "value")
    cb.remove(kmissing, quiet=True)
    mres = cb.observe_multi((kexist, kmissing))
    assert isinstance(mres, MultiResult) and mres.all_ok and len(mres) == 2
    for v in (mres[kexist].value, mres[kmissing].value):
        assert isinstance(v, list) and len(v)
        assert all(isinstance(oi, ObserveInfo) for oi in v)
    master = cb.observe(kexist, master_only=True)
    assert len(master.value) == 1 and master.value[0].from_master
    assert master.value[0].cas == w.cas


# ---- endure_t, durability ----------------------------------------------------------------

def test_durability_arguments(cb):
    with pytest.raises(E.ArgumentError):
        cb.upsert("foo", "bar", persist_to=99, replicate_to=99)
    with pytest.raises(E.ArgumentError):
        cb.endure("foo", persist_to="1")
    with pytest.raises(E.ArgumentError) as ei:  # more replicas than the bucket has
        cb.upsert(key("dur"), "v", replicate_to=REPLICAS + 1)
    assert ei.value.rc == 0x21  # LCB_DURABILITY_ETOOMANY: ArgumentError in 2.x


def test_endure_and_durability_context(cb):
    k = key("endure")
    w = cb.upsert(k, "v")
    rv = cb.endure(k, persist_to=-1, replicate_to=-1, cas=w.cas)
    assert rv.success
    with cb.durability(persist_to=-1, replicate_to=-1, timeout=2.0):
        assert cb.upsert(k, "blah blah").success
        assert cb.remove(k).success
    assert cb.upsert(k, "v", persist_to=1, replicate_to=REPLICAS).success
    mr = cb.upsert_multi(kv_dict(prefix="endm"))
    assert cb.endure_multi(mr, persist_to=1, replicate_to=1).all_ok  # a MultiResult
    assert cb.endure_multi(list(mr.values()), persist_to=1, replicate_to=0).all_ok
    assert cb.endure_multi(list(mr), persist_to=0, replicate_to=1).all_ok


def test_endure_timeout_when_never_persisted(cluster, cb):
    k = key("endure-slow")
    cluster.set_delays(persist=float("inf"))
    try:
        cb.upsert(k, "v")
        with pytest.raises(E.TimeoutError) as ei:
            cb.endure(k, persist_to=1, replicate_to=0, timeout=0.2)
        assert isinstance(ei.value, E.CouchbaseTransientError)
    finally:
        cluster.set_delays(persist=0.0)


# ---- rget_t --------------------------------------------------------------------------------

def test_replica_reads(cb):
    k = key("rget")
    with pytest.raises(E.NotFoundError):
        cb.rget(k)
    for ix in range(REPLICAS):
        with pytest.raises(E.NotFoundError):
            cb.rget(k, replica_index=ix)
    assert not cb.rget(k, quiet=True).success
    w = cb.upsert(k, 99)
    cb.endure(k, persist_to=0, replicate_to=REPLICAS, cas=w.cas)
    assert cb.get(k, replica=True).value == 99
    assert cb.rget(k).value == 99
    for ix in range(REPLICAS):
        assert cb.rget(k, replica_index=ix).value == 99
    with pytest.raises(E.ArgumentError):
        cb.rget(k, replica_index="first")
    got = cb.rget_multi([k])
    assert got.all_ok and got[k].value == 99


# ---- couchbase:// buckets ----------------------------------------------------------------

def test_bucket_properties_on_couchbase(cb, cluster):
    assert cb.bucket == "default"
    assert len(cb.server_nodes) == 3 and all(isinstance(n, str) for n in cb.server_nodes)
    assert cb.configured_replica_count == REPLICAS
    vb, ix = cb._vbmap("hello")
    assert int(vb) >= 0 and int(ix) >= 0
    assert "bucket=default" in repr(cb)
    st = cb.stats()
    some = next(iter(st.values()))
    assert isinstance(st, dict) and isinstance(some, dict) and len(some) == 3


def test_empty_keys_on_couchbase_operations(cb):
    calls = (lambda: cb.lock("", ttl=5), lambda: cb.unlock("", 1234), lambda: cb.observe(""),
             lambda: cb.unlock_multi({"": 1234}), lambda: cb.observe_multi([""]),
             lambda: cb.endure(""), lambda: cb.rget(""))
    for call in calls:
        with pytest.raises(E.ArgumentError):
            call()
    with pytest.raises(E.ArgumentError):
        cb.observe_multi("")  # one key, not a collection


def test_errors_on_couchbase(cb):
    k = key("errs")
    cb.remove(k, quiet=True)
    try:
        cb.get(k)
    except E.CouchbaseDataError as e:  # 2.x code catches the category
        assert isinstance(e, E.NotFoundError) and e.all_results[k].rc == 0x0D
    w = cb.insert(k, "v")
    with pytest.raises(E.KeyExistsError):
        cb.insert(k, "v")
    with pytest.raises(E.KeyExistsError):
        cb.replace(k, "v", cas=w.cas + 1)
    with pytest.raises(E.NotStoredError):
        cb.append(key("missing-append"), "x")


def test_memcached_bucket_refuses_couchbase_operations(cluster):
    b = Bucket(cluster.connstr("cache"))
    assert b.upsert("mc", 1).success and b.configured_replica_count == 0
    for call in (lambda: b.lock("mc", ttl=5), lambda: b.observe("mc"),
                 lambda: b.get("mc", replica=True), lambda: b.endure("mc")):
        with pytest.raises(E.NotSupportedError):
            call()
    b.close()


def test_wrong_credentials_and_unknown_bucket(cluster):
    with pytest.raises(E.AuthError) as ei:
        Bucket(cluster.connstr("default"), password="bad_pass")
    assert isinstance(ei.value, E.CouchbaseFatalError)
    with pytest.raises(E.BucketNotFoundError):
        Bucket(cluster.connstr("this_bucket_does_not_exist"), username="Administrator",
               password="password")


# ---- cluster (connstr_t, the 2.x Cluster) --------------------------------------------------

def test_cluster_and_authenticators(cluster):
    hosts = cluster.connstr("default").rsplit("/", 1)[0]
    with pytest.raises(ValueError):
        Cluster(cluster.connstr("default"))  # a bucket in the connection string
    with pytest.raises(ValueError):
        Cluster(hosts + "?username=x")
    cl = Cluster(hosts)
    with pytest.raises(ValueError):
        cl.authenticate(username="", password="x")
    with pytest.raises(ValueError):
        cl.authenticate(username="x", password="")
    cl.authenticate(PasswordAuthenticator("Administrator", "password"))
    b = cl.open_bucket("default")
    assert b.upsert(key("cluster"), 1).success
    with pytest.raises(MixedAuthError):
        cl.open_bucket("default", password="secret")
    classic = ClassicAuthenticator(cluster_username="admin", cluster_password="pw",
                                   buckets={"default": "secret"})
    assert classic.get_credentials() == ("admin", "pw")
    assert classic.get_credentials("default") == (None, "secret")
    assert classic.get_credentials("other") == (None, None)
    cl.authenticate(classic)
    assert cl.open_bucket("default").get(key("cluster-missing"), quiet=True).rc == 0x0D

    class MyAuth(Authenticator):  # a 2.x-style authenticator
        def get_credentials(self, bucket=None):
            return "Administrator", "password"
    cl.authenticate(MyAuth())
    opened = cl.open_bucket("default")
    assert opened.upsert(key("myauth"), 1).success
    from couchbase.n1ql import N1QLError
    with pytest.raises(N1QLError):    # cluster-level N1QL runs through an open bucket
        cl.n1ql_query("SELECT 1").execute()


def test_1x_entry_points_bootstrap_over_http(cluster):
    import couchbase
    from couchbase.connection import Connection
    with pytest.warns(DeprecationWarning):
        c = couchbase.Couchbase.connect(bucket="default", host="127.0.0.1",
                                        port=cluster.rest_port, password="secret")
    assert isinstance(c, Bucket) and c.bucket == "default"
    assert c.upsert(key("1x"), 1).success
    c.close()
    with pytest.warns(DeprecationWarning):
        c = Connection(bucket="default", host=[("127.0.0.1", cluster.rest_port)],
                       password="secret")
    assert c.get(key("1x-missing"), quiet=True).rc == 0x0D
    c.close()
