"""couchbase:// against the mock cluster: bootstrap, routing, retries, failover,
and the Couchbase-only operations (lock, replica reads, observe, durability)."""
import threading
import time

import pytest

from couchbase_ffi.bucket import Bucket
from couchbase_ffi import exceptions as E, FMT_BYTES
from couchbase_ffi.mock import MockCluster, BucketSpec
from couchbase_ffi.result import ObserveInfo, OBS_PERSISTED, OBS_FOUND


def make_cluster(**kw):
    kw.setdefault("nodes", 4)
    kw.setdefault("buckets", [BucketSpec("default", "couchbase", password="secret", replicas=2),
                              BucketSpec("cache", "memcached", password="")])
    return MockCluster(**kw).start()


@pytest.fixture(scope="module")
def cluster():
    c = make_cluster()
    c.set_delays(persist=0.0, replicate=0.0)
    yield c
    c.stop()


@pytest.fixture
def fresh():
    """A cluster for tests that break it."""
    c = make_cluster()
    c.set_delays(persist=0.0, replicate=0.0)
    yield c
    c.stop()


def open_bucket(cluster, name="default", password="secret", **opts):
    return Bucket(cluster.connstr(name, **opts), password=password)


@pytest.fixture
def cb(cluster):
    cluster.clear_faults()
    b = open_bucket(cluster)
    yield b
    b.close()


def port_of(b, server_index):
    return int(b.server_nodes[server_index].rsplit(":", 1)[1])


# ---- bootstrap ---------------------------------------------------------------------------

def test_bootstrap_sees_every_node_and_the_replicas(cb, cluster):
    assert sorted(port_of(cb, i) for i in range(4)) == sorted(cluster.kv_ports)
    assert cb.configured_replica_count == 2
    assert cb.bucket == "default"


def test_bootstrap_from_any_listed_host_when_the_first_is_down(fresh):
    fresh.kill_node(0)
    b = Bucket(fresh.connstr("default"), password="secret")
    mb = fresh.bucket("default")
    key = next(k for k in ("seed-%d" % i for i in range(100)) if mb.active_node(k) != 0)
    b.upsert(key, 1)
    assert b.get(key).value == 1
    b.close()


def test_wrong_password_is_an_auth_error(cluster):
    with pytest.raises(E.AuthError):
        open_bucket(cluster, password="wrong")


def test_unknown_bucket_is_bucket_not_found(cluster):
    with pytest.raises(E.BucketNotFoundError):
        Bucket(cluster.connstr("nosuch"), username="Administrator", password="password")


def test_admin_user_with_rbac_credentials(cluster):
    b = Bucket(cluster.connstr("default"), username="Administrator", password="password")
    b.upsert("rbac", "x")
    assert b.get("rbac").value == "x"
    b.close()


def test_credentials_in_the_connection_string(cluster):
    b = Bucket(cluster.connstr("default", username="Administrator", password="password"))
    assert b.upsert("cs-cred", 1).success
    b.close()


def test_no_node_reachable_is_a_connect_error_within_the_bootstrap_timeout():
    from conftest import free_port
    t0 = time.time()
    with pytest.raises(E.CouchbaseNetworkError):
        Bucket("couchbase://127.0.0.1:%d,127.0.0.1:%d/default" % (free_port(), free_port()))
    assert time.time() - t0 < 5.5


def test_silent_seed_is_skipped_after_the_connect_timeout(fresh):
    # node 0 accepts TCP but never answers: the bootstrap moves on to node 1
    fresh.drop(0)
    t0 = time.time()
    b = Bucket(fresh.connstr("default", connect_timeout="300ms"), password="secret")
    assert time.time() - t0 < 2
    mb = fresh.bucket("default")
    key = next(k for k in ("silent-%d" % i for i in range(100)) if mb.active_node(k) != 0)
    assert b.upsert(key, 2).success
    b.close()


def test_plain_sasl_only_when_forced(cluster):
    b = Bucket(cluster.connstr("default", sasl_mech_force="PLAIN"), password="secret")
    assert b.upsert("plain", 1).success
    b.close()
    with pytest.raises(E.AuthError):
        Bucket(cluster.connstr("default", sasl_mech_force="PLAIN"), password="bad")


@pytest.mark.parametrize("mech", ["SCRAM-SHA1", "SCRAM-SHA256", "SCRAM-SHA512"])
def test_every_scram_mechanism(cluster, mech):
    b = Bucket(cluster.connstr("default", sasl_mech_force=mech), password="secret")
    assert b.upsert("scram-" + mech, mech).success
    b.close()


def test_bad_connection_strings_are_typed_errors():
    for bad in ("couchbase://[::1/default", "couchbase://h/default?operation_timeout=abc",
                "couchbase://h/default?bootstrap_on=carrier-pigeon"):
        with pytest.raises((E.InvalidError, E.ArgumentError)):
            Bucket(bad)


# ---- routing and the ordinary operations ---------------------------------------------------

def test_keys_go_to_their_vbucket_owner(cb, cluster):
    mb = cluster.bucket("default")
    for i in range(40):
        key = "route-%d" % i
        vb, srv = cb._vbmap(key)
        assert vb == mb.vbucket_of(key)
        assert port_of(cb, srv) == cluster.kv_ports[mb.active_node(key)]
        cb.upsert(key, i)
        value, _, _ = mb.get_doc(key)
        assert value == str(i).encode()


def test_every_single_key_operation(cb):
    w = cb.upsert("op:k", {"v": 1})
    g = cb.get("op:k")
    assert g.value == {"v": 1} and g.cas == w.cas
    with pytest.raises(E.KeyExistsError):
        cb.insert("op:k", 2)
    with pytest.raises(E.KeyExistsError):
        cb.replace("op:k", 3, cas=w.cas + 1)
    r = cb.replace("op:k", b"x", cas=w.cas, format=FMT_BYTES)
    assert r.cas != w.cas
    cb.append("op:k", b"y")
    cb.prepend("op:k", b"w")
    assert cb.get("op:k").value == b"wxy"
    assert cb.counter("op:ctr", initial=5).value == 5
    assert cb.counter("op:ctr", delta=-7).value == 0
    with pytest.raises(E.NotFoundError):
        cb.counter("op:nope")
    assert cb.touch("op:k", ttl=100).success
    assert cb.get("op:k", ttl=200).value == b"wxy"
    cb.remove("op:k")
    with pytest.raises(E.NotFoundError):
        cb.get("op:k")
    assert not cb.get("op:k", quiet=True).success
    with pytest.raises(E.NotStoredError):
        cb.append("op:k", b"z")


def test_multi_operations_across_nodes(cb):
    kv = {"multi:%d" % i: i for i in range(200)}
    assert cb.upsert_multi(kv).all_ok
    got = cb.get_multi(list(kv) + ["multi:none"], quiet=True)
    assert {k: r.value for k, r in got.items() if r.success} == kv
    assert not got.all_ok
    assert cb.counter_multi(["multi:c1", "multi:c2"], initial=1).all_ok
    assert cb.touch_multi(list(kv)[:10], ttl=50).all_ok
    assert cb.remove_multi(list(kv)[:100]).all_ok
    assert len([r for r in cb.get_multi(list(kv), quiet=True).values() if r.success]) == 100


def test_stats_from_every_node(cb, cluster):
    st = cb.stats()
    some = next(iter(st.values()))
    assert len(some) == 4


# ---- Couchbase-only operations -----------------------------------------------------------

def test_lock_contention_between_two_clients(cluster):
    a, b = open_bucket(cluster), open_bucket(cluster)
    a.upsert("lock:k", "v")
    lk = a.lock("lock:k", ttl=10)
    assert lk.value == "v"
    with pytest.raises(E.TemporaryFailError):
        b.lock("lock:k", ttl=10)
    with pytest.raises(E.KeyExistsError):
        b.upsert("lock:k", "other")
    with pytest.raises(E.TemporaryFailError):
        b.unlock("lock:k", lk.cas + 1)
    assert a.unlock("lock:k", lk.cas).success
    lk2 = b.lock("lock:k", ttl=10)
    assert b.upsert("lock:k", "mine", cas=lk2.cas).success   # the lock CAS unlocks
    assert a.get("lock:k").value == "mine"
    a.close()
    b.close()


def test_lock_expires(cb, cluster):
    cb.upsert("lock:exp", 1)
    cb.lock("lock:exp", ttl=2)
    with pytest.raises(E.KeyExistsError):
        cb.upsert("lock:exp", 2)
    cluster.advance_time(3)
    assert cb.upsert("lock:exp", 3).success


def test_lock_multi_and_unlock_multi(cb):
    cb.upsert_multi({"lm:1": 1, "lm:2": 2})
    locked = cb.lock_multi(["lm:1", "lm:2"], ttl=5)
    assert {k: r.value for k, r in locked.items()} == {"lm:1": 1, "lm:2": 2}
    assert cb.unlock_multi(locked).all_ok
    assert cb.upsert("lm:1", 5).success


def test_replica_reads(cb, cluster):
    w = cb.upsert("rep:k", "value")
    cb.endure("rep:k", persist_to=0, replicate_to=2, cas=w.cas)
    assert cb.rget("rep:k").value == "value"
    assert cb.rget("rep:k", replica_index=0).value == "value"
    assert cb.rget("rep:k", replica_index=1).value == "value"
    assert cb.get("rep:k", replica=True).value == "value"
    with pytest.raises(E.NotFoundError):
        cb.rget("rep:missing")
    assert not cb.rget("rep:missing", quiet=True).success
    m = cb.rget_multi(["rep:k", "rep:missing"], quiet=True)
    assert m["rep:k"].value == "value" and not m["rep:missing"].success
    with pytest.raises(E.ArgumentError):
        cb.rget("rep:k", replica_index="first")


def test_replica_read_comes_from_a_replica_node(cb, cluster):
    mb = cluster.bucket("default")
    cb.upsert("rep:only", "old")
    cb.endure("rep:only", replicate_to=2, persist_to=0)
    # change the active copy only: a replica read must still see the old value
    cluster.set_delays(replicate=float("inf"))
    try:
        cb.upsert("rep:only", "new")
        assert cb.get("rep:only").value == "new"
        assert cb.rget("rep:only").value == "old"
    finally:
        cluster.set_delays(replicate=0.0)
    assert mb.replica_nodes("rep:only")


def test_replica_index_beyond_the_configured_replicas(cb):
    with pytest.raises(E.CouchbaseError):
        cb.rget("x", replica_index=2)


def test_observe_reports_master_and_replicas(cb, cluster):
    w = cb.upsert("obs:k", 1)
    cb.endure("obs:k", persist_to=3, replicate_to=2, cas=w.cas)
    r = cb.observe("obs:k")
    assert len(r.value) == 3
    assert all(isinstance(i, ObserveInfo) for i in r.value)
    assert sum(1 for i in r.value if i.from_master) == 1
    assert all(i.cas == w.cas and i.flags == OBS_PERSISTED for i in r.value)
    assert len(cb.observe("obs:k", master_only=True).value) == 1
    m = cb.observe_multi(["obs:k", "obs:none"])
    assert m["obs:none"].value[0].flags == 0x80


def test_endure_waits_for_persistence(cb, cluster):
    cluster.set_delays(persist=0.3)
    try:
        w = cb.upsert("dur:slow", 1)
        assert cb.observe("dur:slow", master_only=True).value[0].flags == OBS_FOUND
        t0 = time.time()
        assert cb.endure("dur:slow", persist_to=1, replicate_to=0, cas=w.cas).success
        assert time.time() - t0 >= 0.2
        assert cb.observe("dur:slow", master_only=True).value[0].flags == OBS_PERSISTED
    finally:
        cluster.set_delays(persist=0.0)


def test_endure_times_out_when_persistence_never_happens(cb, cluster):
    cluster.set_delays(persist=float("inf"))
    try:
        w = cb.upsert("dur:never", 1)
        t0 = time.time()
        with pytest.raises(E.TimeoutError):
            cb.endure("dur:never", persist_to=1, replicate_to=0, cas=w.cas, timeout=0.3)
        assert time.time() - t0 < 2
    finally:
        cluster.set_delays(persist=0.0)


def test_endure_sees_a_changed_cas(cb):
    w = cb.upsert("dur:changed", 1)
    cb.upsert("dur:changed", 2)
    with pytest.raises(E.KeyExistsError):
        cb.endure("dur:changed", persist_to=1, replicate_to=0, cas=w.cas)


def test_persist_to_and_replicate_to_on_mutations(cb, cluster):
    mb = cluster.bucket("default")
    r = cb.upsert("dur:m", "v", persist_to=1, replicate_to=2)
    for node in mb.replica_nodes("dur:m"):
        assert mb.get_doc("dur:m", node=node)[2] == r.cas
    assert cb.insert("dur:i", 1, persist_to=-1, replicate_to=-1).success
    assert cb.replace("dur:i", 2, replicate_to=1).success
    assert cb.append("dur:m", b"w", format=FMT_BYTES, replicate_to=1).success
    assert cb.remove("dur:i", persist_to=1, replicate_to=2).success
    assert all(mb.get_doc("dur:i", node=n) is None for n in range(4))
    assert cb.upsert_multi({"dur:a": 1, "dur:b": 2}, persist_to=1, replicate_to=1).all_ok
    assert cb.remove_multi(["dur:a", "dur:b"], replicate_to=1).all_ok


def test_durability_impossible_is_an_argument_error(cb):
    with pytest.raises(E.ArgumentError):
        cb.upsert("dur:x", 1, replicate_to=3)
    with pytest.raises(E.ArgumentError):
        cb.upsert("dur:x", 1, persist_to=4)
    with pytest.raises(E.ArgumentError):
        cb.endure("dur:x", replicate_to=3)
    with pytest.raises(E.NotFoundError):
        cb.get("dur:x")   # nothing was written


def test_durability_context(cb, cluster):
    with cb.durability(persist_to=1, replicate_to=2, timeout=2.0):
        r = cb.upsert("dur:ctx", 1)
    mb = cluster.bucket("default")
    assert all(mb.get_doc("dur:ctx", node=n)[2] == r.cas for n in mb.replica_nodes("dur:ctx"))
    cluster.set_delays(replicate=float("inf"))
    try:
        with cb.durability(replicate_to=1, timeout=0.3):
            with pytest.raises(E.TimeoutError):
                cb.upsert("dur:ctx2", 1)
    finally:
        cluster.set_delays(replicate=0.0)


def test_endure_multi(cb):
    m = cb.upsert_multi({"em:%d" % i: i for i in range(20)})
    assert cb.endure_multi(m, persist_to=1, replicate_to=2).all_ok
    cb.remove_multi(list(m))
    assert cb.endure_multi(list(m), persist_to=1, replicate_to=1, check_removed=True).all_ok


# ---- retries and faults ---------------------------------------------------------------

def test_temporary_failures_are_retried_until_they_pass(cb, cluster):
    cluster.inject_status("ETMPFAIL", count=3)
    assert cb.upsert("tmp:k", 1).success
    assert cb.get("tmp:k").value == 1


def test_a_temporary_failure_that_lasts_is_reported_at_the_timeout(cluster):
    b = open_bucket(cluster, operation_timeout="300ms")
    cluster.inject_status("ETMPFAIL", count=100000)
    try:
        t0 = time.time()
        with pytest.raises(E.TemporaryFailError):
            b.upsert("tmp:forever", 1)
        assert 0.2 < time.time() - t0 < 1.5
    finally:
        cluster.clear_faults()
        b.close()


def test_not_my_vbucket_without_a_config_is_retried(cb, cluster):
    cluster.inject_status(0x07, count=2)   # NMV carries the config: routed again
    assert cb.upsert("nmv:k", 1).success
    assert cb.get("nmv:k").value == 1


def test_vbuckets_moved_under_load_lose_nothing(fresh):
    b = open_bucket(fresh)
    mb = fresh.bucket("default")
    keys = ["load:%d" % i for i in range(64)]
    for k in keys:
        b.upsert(k, 0)
    stop = threading.Event()
    moved = []

    def mover():
        n = 0
        while not stop.is_set() and n < 30:
            vbs = sorted({mb.vbucket_of(k) for k in keys[n % 8::8]})
            fresh.move_vbuckets("default", vbs, (n % 4))
            moved.append(vbs)
            n += 1
            time.sleep(0.01)

    t = threading.Thread(target=mover)
    t.start()
    rounds = 0
    try:
        while t.is_alive() and rounds < 200:
            for k in keys:
                b.counter(k, delta=1)
            rounds += 1
    finally:
        stop.set()
        t.join()
    assert moved
    got = b.get_multi(keys)
    # every increment landed exactly once: none lost, none doubled by a retry
    assert all(r.value == rounds for r in got.values()), {k: r.value for k, r in got.items()}
    b.close()


def test_failover_promotes_replicas_and_operations_continue(fresh):
    b = open_bucket(fresh)
    kv = {"fo:%d" % i: i for i in range(100)}
    assert b.upsert_multi(kv, replicate_to=2).all_ok
    fresh.failover(1)
    got = b.get_multi(list(kv))
    assert {k: r.value for k, r in got.items()} == kv
    assert b.upsert_multi(kv).all_ok
    assert all(port_of(b, i) != fresh.kv_ports[1] for i in range(len(b.server_nodes)))
    b.close()


def test_killed_node_affects_only_its_keys_and_failover_restores_them(fresh):
    b = open_bucket(fresh, operation_timeout="1s")
    mb = fresh.bucket("default")
    keys = ["kill:%d" % i for i in range(80)]
    assert b.upsert_multi({k: k for k in keys}, replicate_to=2).all_ok
    dead = 2
    on_dead = [k for k in keys if mb.active_node(k) == dead]
    others = [k for k in keys if mb.active_node(k) != dead]
    assert on_dead and others
    fresh.kill_node(dead)
    for k in others:
        assert b.get(k).value == k
    t0 = time.time()
    for k in on_dead[:5]:
        with pytest.raises(E.CouchbaseNetworkError):
            b.upsert(k, "x")
    assert time.time() - t0 < 5 * 1.2     # each within its timeout
    fresh.failover(dead)
    for k in on_dead:
        assert b.get(k).value == k
        assert b.upsert(k, "after").success
    b.close()


def test_non_idempotent_operation_is_not_retried_after_its_connection_died(fresh):
    b = open_bucket(fresh, operation_timeout="2s")
    mb = fresh.bucket("default")
    b.upsert("once", 0)
    node = mb.active_node("once")
    fresh.truncate(node, count=1, opcodes=["INCR"])   # executes, then the reply is cut
    with pytest.raises(E.CouchbaseNetworkError):
        b.counter("once", delta=1)
    assert b.get("once").value == 1                   # applied once, never twice
    b.close()


def test_reads_are_retried_after_a_dropped_connection(fresh):
    b = open_bucket(fresh)
    mb = fresh.bucket("default")
    b.upsert("read-retry", "v")
    fresh.truncate(mb.active_node("read-retry"), count=1, opcodes=["GET", "GETQ"])
    assert b.get("read-retry").value == "v"
    b.close()


def test_garbage_from_a_node_fails_its_operations_and_the_client_recovers(fresh):
    b = open_bucket(fresh)
    mb = fresh.bucket("default")
    b.upsert("garbage", 1)
    fresh.garbage(mb.active_node("garbage"), count=1, opcodes=["SET"])
    with pytest.raises(E.CouchbaseNetworkError):
        b.upsert("garbage", 2)
    assert b.upsert("garbage", 3).success
    assert b.get("garbage").value == 3
    b.close()


def test_silent_node_times_out_within_the_operation_timeout(fresh):
    b = open_bucket(fresh, operation_timeout="400ms")
    mb = fresh.bucket("default")
    b.upsert("silent", 1)
    fresh.drop(mb.active_node("silent"))
    t0 = time.time()
    with pytest.raises(E.TimeoutError):
        b.upsert("silent", 2)
    assert time.time() - t0 < 1.5
    fresh.clear_faults()
    assert b.get("silent").value in (1, 2)
    b.close()


# ---- memcached buckets over couchbase:// ---------------------------------------------------

def test_memcached_bucket_uses_ketama(cluster):
    b = Bucket(cluster.connstr("cache"))
    kv = {"mc:%d" % i: i for i in range(50)}
    assert b.upsert_multi(kv).all_ok
    assert {k: r.value for k, r in b.get_multi(list(kv)).items()} == kv
    assert b.configured_replica_count == 0
    with pytest.raises(E.NotSupportedError):
        b.lock("mc:1", ttl=5)
    with pytest.raises(E.NotSupportedError):
        b.upsert("mc:1", 1, persist_to=1)
    b.close()


# ---- REST bootstrap ------------------------------------------------------------------

def test_http_bootstrap(cluster):
    b = Bucket(cluster.http_connstr("default"), password="secret")
    assert sorted(port_of(b, i) for i in range(4)) == sorted(cluster.kv_ports)
    assert b.upsert("http:k", 1).success and b.get("http:k").value == 1
    assert b.configured_replica_count == 2
    b.close()


def test_http_bootstrap_errors(cluster):
    with pytest.raises(E.AuthError):
        Bucket(cluster.http_connstr("default"), password="wrong")
    with pytest.raises(E.BucketNotFoundError):
        Bucket(cluster.http_connstr("nosuch"), username="Administrator", password="password")


def test_bootstrap_falls_back_from_cccp_to_http(cluster):
    from conftest import free_port
    cs = "couchbase://127.0.0.1:%d,127.0.0.1:%d=http/default" % (free_port(), cluster.rest_port)
    b = Bucket(cs, password="secret")
    assert b.upsert("fallback", 1).success
    b.close()
    b = Bucket(cs + "?bootstrap_on=http", password="secret")
    assert b.get("fallback").value == 1
    b.close()
    with pytest.raises(E.CouchbaseNetworkError):
        Bucket(cs + "?bootstrap_on=cccp", password="secret")


# ---- the 2.x Cluster ------------------------------------------------------------------

def test_cluster_open_bucket_with_rbac_and_classic_credentials(cluster):
    from couchbase_ffi.cluster import Cluster, PasswordAuthenticator, ClassicAuthenticator
    hosts = cluster.connstr("default").rsplit("/", 1)[0]
    cl = Cluster(hosts + "?operation_timeout=2s")
    cl.authenticate(PasswordAuthenticator("Administrator", "password"))
    b = cl.open_bucket("default")
    assert b.bucket == "default" and b.timeout == 2.0
    assert b.upsert("cluster:k", 1).success
    with pytest.raises(E.BucketNotFoundError):
        cl.open_bucket("nosuch")
    cl.authenticate(ClassicAuthenticator(buckets={"default": "secret"}))
    assert cl.open_bucket("default").get("cluster:k").value == 1
    cl.authenticate(username="Administrator", password="wrong")
    with pytest.raises(E.AuthError):
        cl.open_bucket("default")


def test_flush_over_rest_empties_a_couchbase_bucket(fresh):
    b = open_bucket(fresh)
    assert b.upsert_multi({"fl:%d" % i: i for i in range(30)}).all_ok
    assert b.flush().success
    assert not any(r.success for r in b.get_multi(["fl:%d" % i for i in range(30)],
                                                  quiet=True).values())
    b.close()
    m = Bucket(fresh.connstr("cache"))
    m.upsert("fl:m", 1)
    assert m.flush().success
    assert not m.get("fl:m", quiet=True).success
    m.close()


def test_multi_mutations_honour_durability(cb, cluster):
    assert cb.upsert_multi({"md:old": 0}, replicate_to=2).all_ok
    cluster.set_delays(replicate=float("inf"))
    try:
        with cb.durability(timeout=0.3):
            with pytest.raises(E.TimeoutError) as ei:
                cb.upsert_multi({"md:1": 1, "md:2": 2}, replicate_to=1)
            assert set(ei.value.all_results) == {"md:1", "md:2"}
            with pytest.raises(E.TimeoutError):   # the replicas still have it
                cb.remove_multi(["md:old"], replicate_to=1)
    finally:
        cluster.set_delays(replicate=0.0)
    assert cb.upsert_multi({"md:3": 3}, replicate_to=2).all_ok


def test_couchbase_scheme_pointed_at_memcached_says_so(memcached):
    t0 = time.time()
    with pytest.raises(E.NotSupportedError) as ei:
        Bucket("couchbase://127.0.0.1:%d/default" % memcached.port)
    assert "memcached://" in str(ei.value)
    assert time.time() - t0 < 1
