"""couchbase:// through every front-end (sync, Twisted, asyncio) against the mock
cluster: bootstrap, the Couchbase-only operations, vbuckets moving and nodes dying
while operations are in flight.  Each body runs unchanged on the three: it yields
what an operation returned (a result, a Deferred or a future) and gets the result."""
import pytest

import asynchelp as H
from couchbase_ffi import exceptions as E
from couchbase_ffi.mock import MockCluster, BucketSpec
from couchbase_ffi.result import ObserveInfo, OBS_PERSISTED

pytest.importorskip("twisted")

ALL = ("sync",) + H.FRONTENDS


@pytest.fixture(scope="module")
def cluster():
    c = MockCluster(nodes=4, buckets=[BucketSpec("default", "couchbase", password="secret",
                                                 replicas=2)]).start()
    c.set_delays(persist=0.0, replicate=0.0)
    yield c
    c.stop()


@pytest.fixture
def fresh():
    c = MockCluster(nodes=4, buckets=[BucketSpec("default", "couchbase", password="secret",
                                                 replicas=2)]).start()
    c.set_delays(persist=0.0, replicate=0.0)
    yield c
    c.stop()


@pytest.fixture(autouse=True)
def _no_leftovers(monkeypatch):
    made = H.track_buckets(monkeypatch)
    yield
    H.close_leftovers(made)


def opened(frontend, cluster, **opts):
    return (yield from H.connected(frontend, cluster.connstr("default", **opts),
                                   password="secret"))


outcome = H.outcome


@pytest.mark.parametrize("frontend", ALL)
def test_couchbase_operations(cluster, frontend):
    p = frontend + ":"

    def body():
        b = yield from opened(frontend, cluster)
        assert b.configured_replica_count == 2
        w = yield b.upsert(p + "k", {"v": 1}, persist_to=1, replicate_to=2)
        g = yield b.get(p + "k")
        assert g.value == {"v": 1} and g.cas == w.cas
        r = yield b.get(p + "k", replica=True)
        assert r.value == {"v": 1}
        r = yield b.rget(p + "k", replica_index=1)
        assert r.value == {"v": 1}
        obs = yield b.observe(p + "k")
        assert len(obs.value) == 3 and all(isinstance(i, ObserveInfo) for i in obs.value)
        assert all(i.flags == OBS_PERSISTED and i.cas == w.cas for i in obs.value)
        m = yield b.observe_multi([p + "k", p + "none"])
        assert len(m[p + "k"].value) == 3 and m[p + "none"].value[0].flags == 0x80
        e = yield b.endure(p + "k", persist_to=3, replicate_to=2, cas=w.cas)
        assert e.success
        lk = yield b.lock(p + "k", ttl=10)
        assert lk.value == {"v": 1}
        err = yield from outcome(lambda: b.lock(p + "k", ttl=10))
        assert isinstance(err, E.TemporaryFailError)
        err = yield from outcome(lambda: b.upsert(p + "k", 2))
        assert isinstance(err, E.KeyExistsError)
        yield b.unlock(p + "k", lk.cas)
        err = yield from outcome(lambda: b.upsert(p + "k", 3, replicate_to=3))
        assert isinstance(err, E.ArgumentError)
        mr = yield b.upsert_multi({p + "m%d" % i: i for i in range(30)}, replicate_to=1)
        assert mr.all_ok
        er = yield b.endure_multi(mr, persist_to=1, replicate_to=2)
        assert er.all_ok
        rg = yield b.rget_multi([p + "m1", p + "m2"])
        assert rg[p + "m2"].value == 2
        c = yield b.counter(p + "ctr", initial=7)
        assert c.value == 7
        yield b.remove(p + "k", persist_to=1, replicate_to=1)
        err = yield from outcome(lambda: b.get(p + "k"))
        assert isinstance(err, E.NotFoundError)
        st = yield b.stats()
        assert len(next(iter(st.values()))) == 4
        b.close()
    H.run(frontend, body)


@pytest.mark.parametrize("frontend", H.FRONTENDS)
def test_many_in_flight_while_vbuckets_move(fresh, frontend):
    mb = fresh.bucket("default")
    keys = ["mv:%s:%d" % (frontend, i) for i in range(200)]

    def body():
        buckets = []
        for _ in range(3):
            b = yield from opened(frontend, fresh)
            buckets.append(b)
        yield buckets[0].upsert_multi({k: 0 for k in keys})
        for rnd in range(5):
            futs = [buckets[i % 3].counter(k, delta=1) for i, k in enumerate(keys)]
            # move the vbuckets of a slice of the keys while those are in flight
            fresh.move_vbuckets("default", sorted({mb.vbucket_of(k) for k in keys[rnd::5]}),
                                rnd % 4)
            for f in futs:
                r = yield f
                assert r.value == rnd + 1
        got = yield buckets[1].get_multi(keys)
        assert all(r.value == 5 for r in got.values())
        for b in buckets:
            b.close()
    H.run(frontend, body)


@pytest.mark.parametrize("frontend", H.FRONTENDS)
def test_node_killed_with_operations_pending(fresh, frontend):
    mb = fresh.bucket("default")
    keys = ["kill:%s:%d" % (frontend, i) for i in range(80)]
    dead = 1

    def body():
        b = yield from opened(frontend, fresh, operation_timeout="1s")
        yield b.upsert_multi({k: k for k in keys}, replicate_to=2)
        fresh.drop(dead)           # its replies stop: operations pile up on the wire
        futs = [(k, b.get(k)) for k in keys]
        fresh.kill_node(dead)      # then it dies under them
        lost = 0
        for k, f in futs:
            r = yield from outcome(lambda: f)
            if mb.active_node(k) == dead:
                assert isinstance(r, E.CouchbaseNetworkError), r
                lost += 1
            else:
                assert r.value == k
        assert lost
        fresh.clear_faults()
        fresh.failover(dead)
        for k in keys:
            r = yield b.get(k)
            assert r.value == k
        b.close()
    H.run(frontend, body)


@pytest.mark.parametrize("frontend", H.FRONTENDS)
def test_async_bootstrap_errors(cluster, frontend):
    def body():
        b = H.bucket_class(frontend)(cluster.connstr("default"), password="wrong")
        err = yield from outcome(b.connect)
        assert isinstance(err, E.AuthError)
        b.close()
        b = H.bucket_class(frontend)(cluster.http_connstr("default"), password="secret")
        yield b.connect()
        r = yield b.upsert("async-http", 1)
        assert r.success
        b.close()
    H.run(frontend, body)
