"""Mutation tokens as a couchbase 2.x user sees them: ``rv._mutinfo`` on the results of
mutations when the connection string asks for them (``fetch_mutation_tokens``), nothing
otherwise, ``Bucket._mutinfo()``, and ``MutationState`` / ``N1QLQuery.consistent_with``
sending the real scan vectors to the mock's query service; on the sync Bucket, Twisted
and asyncio."""
import gc
import json
import platform
import sys
import weakref
import time

import pytest

import asynchelp as H
import couchbase_ffi.subdocument as SD
from couchbase_ffi import exceptions as E
from couchbase_ffi.mock import MockCluster, BucketSpec
from couchbase_ffi.n1ql import N1QLQuery, MutationState, MissingTokenError
from couchbase_ffi.transcoder import FMT_UTF8

pytest.importorskip("twisted")

ALL = ("sync",) + H.FRONTENDS


@pytest.fixture(scope="module")
def cluster():
    c = MockCluster(nodes=3, query_nodes=[0],
                    buckets=[BucketSpec("default", password="secret", replicas=2, vbuckets=64),
                             BucketSpec("cache", "memcached")]).start()
    c.set_delays(persist=0.0, replicate=0.0)
    yield c
    c.stop()


@pytest.fixture(autouse=True)
def _clean(cluster, monkeypatch):
    cluster.query_clear()
    made = H.track_buckets(monkeypatch)
    yield
    H.close_leftovers(made)


def opened(frontend, cluster, bucket="default", **options):
    options.setdefault("fetch_mutation_tokens", "true")
    return (yield from H.connected(frontend, cluster.connstr(bucket, **options),
                                   password="secret"))


def check_token(cluster, key, rv):
    """rv's token is the one the server gave: the key's vbucket, its uuid, its newest seqno."""
    h = cluster.bucket("default")
    vb, uuid, seq, name = rv._mutinfo
    assert name == "default"
    assert vb == h.vbucket_of(key)
    state = h.seqnos(vb)
    assert uuid == state["vbuuid"]
    assert seq == state["high"][h.vbucket_map()[vb][0]]
    return rv._mutinfo


@pytest.mark.parametrize("frontend", ALL)
def test_every_mutation_carries_a_growing_token(cluster, frontend):
    def body():
        b = yield from opened(frontend, cluster)
        key = "mt-all-" + frontend
        seen = []
        for op in (lambda: b.upsert(key, {"a": 1}),
                   lambda: b.replace(key, {"a": 2}),
                   lambda: b.mutate_in(key, SD.upsert("b", 3)),
                   lambda: b.upsert(key, "x", format=FMT_UTF8),
                   lambda: b.append(key, "y"),
                   lambda: b.prepend(key, "w"),
                   lambda: b.remove(key),
                   lambda: b.insert(key, "again"),
                   lambda: b.remove(key),
                   lambda: b.counter(key, initial=10),
                   lambda: b.counter(key, delta=5)):
            rv = yield op()
            seen.append(check_token(cluster, key, rv))
        vbs = set(t[0] for t in seen)
        uuids = set(t[1] for t in seen)
        seqs = [t[2] for t in seen]
        assert len(vbs) == 1 and len(uuids) == 1
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)     # strictly increasing
        # reads and failures have none
        rv = yield b.get(key)
        assert rv._mutinfo is None
        try:
            yield b.insert(key, "exists")
        except E.KeyExistsError as e:
            assert e.result._mutinfo is None
        else:
            raise AssertionError("insert of an existing key succeeded")
        # Bucket._mutinfo(): the newest token per vbucket, without the bucket name
        assert b._mutinfo() == [seen[-1][:3]]
        return True
    assert H.run(frontend, body)


@pytest.mark.parametrize("frontend", ALL)
def test_multi_forms_carry_tokens(cluster, frontend):
    def body():
        b = yield from opened(frontend, cluster)
        keys = ["mt-multi-%s-%d" % (frontend, i) for i in range(12)]
        for call in (lambda: b.upsert_multi(dict((k, {"i": 1}) for k in keys)),
                     lambda: b.replace_multi(dict((k, {"i": 2}) for k in keys)),
                     lambda: b.upsert_multi(dict((k, "s") for k in keys), format=FMT_UTF8),
                     lambda: b.append_multi(dict((k, "t") for k in keys)),
                     lambda: b.prepend_multi(dict((k, "r") for k in keys)),
                     lambda: b.remove_multi(keys),
                     lambda: b.insert_multi(dict((k, 1) for k in keys)),
                     lambda: b.counter_multi(keys, delta=2)):
            mres = yield call()
            assert sorted(mres) == sorted(keys)
            for k, rv in mres.items():
                check_token(cluster, k, rv)
        # a MultiResult goes into a MutationState whole
        ms = MutationState(mres)
        sv = json.loads(ms.encode())["default"]
        assert sorted(sv) == sorted(set(str(mres[k]._mutinfo[0]) for k in keys))
        return True
    assert H.run(frontend, body)


def test_pipeline_and_durability_carry_tokens(cluster):
    from couchbase_ffi.bucket import Bucket
    b = Bucket(cluster.connstr("default", fetch_mutation_tokens="1"), password="secret")
    with b.pipeline() as p:
        b.upsert("mt-p1", 1)
        b.upsert_multi({"mt-p2": 2, "mt-p3": 3})
        b.get("mt-p1")
    one, multi, got = p.results
    check_token(cluster, "mt-p1", one)
    for k, rv in multi.items():
        check_token(cluster, k, rv)
    assert got._mutinfo is None
    rv = b.upsert("mt-dur", 1, persist_to=1, replicate_to=1)
    check_token(cluster, "mt-dur", rv)
    rv = b.remove("mt-dur", persist_to=1)
    check_token(cluster, "mt-dur", rv)


def test_replicas_reach_the_same_seqno(cluster):
    from couchbase_ffi.bucket import Bucket
    b = Bucket(cluster.connstr("default", fetch_mutation_tokens="true"), password="secret")
    h = cluster.bucket("default")
    rv = None
    for i in range(5):
        rv = b.upsert("mt-rep", i)
    vb, uuid, seq, _ = rv._mutinfo
    chain = [n for n in h.vbucket_map()[vb] if n >= 0]
    assert len(chain) == 3
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        state = h.seqnos(vb)
        if all(state["high"][n] == seq for n in chain):
            break
        time.sleep(0.01)
    assert all(state["high"][n] == seq for n in chain), state
    assert state["vbuuid"] == uuid


@pytest.mark.parametrize("frontend", ALL)
def test_without_the_option_there_are_no_tokens(cluster, frontend):
    def body():
        for opts in ({"fetch_mutation_tokens": "false"}, {"fetch_mutation_tokens": "0"}):
            b = yield from opened(frontend, cluster, **opts)
            rv = yield b.upsert("mt-off", 1)
            assert rv.success and rv._mutinfo is None
            mres = yield b.upsert_multi({"mt-off1": 1, "mt-off2": 2})
            assert all(r._mutinfo is None for r in mres.values())
            assert b._mutinfo() == []
            with pytest.raises(MissingTokenError):
                MutationState(rv)
            assert MutationState().add_results(rv, quiet=True) is False
            with pytest.raises(MissingTokenError):
                MutationState().add_all(b)
            assert MutationState().add_all(b, quiet=True) is False
        # 3.x's name for the option works too
        b = yield from opened(frontend, cluster, fetch_mutation_tokens="0",
                              enable_mutation_tokens="true")
        rv = yield b.upsert("mt-on", 1)
        check_token(cluster, "mt-on", rv)
        return True
    assert H.run(frontend, body)


def test_default_is_off():
    """2.x (libcouchbase's fetch_mutation_tokens default): no tokens unless asked."""
    from couchbase_ffi import connstr as C
    assert not C.mutation_tokens_asked("couchbase://h/b")
    assert not C.mutation_tokens_asked("couchbase://h/b?fetch_mutation_tokens=no")
    assert C.mutation_tokens_asked("couchbase://h/b?fetch_mutation_tokens=True")
    assert C.mutation_tokens_asked(C.ConnectionString.parse(
        "couchbase://h/b?enable_mutation_tokens=1"))


def test_memcached_has_no_tokens(cluster, memcached):
    from couchbase_ffi.bucket import Bucket
    b = Bucket(memcached.connstr + "?fetch_mutation_tokens=true")
    rv = b.upsert("mt-mc", 1)
    assert rv.success and rv._mutinfo is None
    assert b.upsert_multi({"mt-mc2": 1})["mt-mc2"]._mutinfo is None
    assert b._mutinfo() == []
    mb = Bucket(cluster.connstr("cache", fetch_mutation_tokens="true"))
    rv = mb.upsert("mt-mcb", 1)
    assert rv.success and rv._mutinfo is None


@pytest.mark.parametrize("frontend", ALL)
def test_consistent_with_sends_the_mutations_scan_vectors(cluster, frontend):
    statement = "SELECT * FROM default WHERE t = $1"
    cluster.query_register(statement, rows=[{"t": 1}])

    def body():
        b = yield from opened(frontend, cluster)
        r1 = yield b.upsert("mt-q1", {"t": 1})
        r2 = yield b.upsert("mt-q1", {"t": 1, "again": True})     # same vbucket, later
        mres = yield b.upsert_multi(dict(("mt-q%d" % i, {"t": 1}) for i in range(2, 8)))
        ms = MutationState()
        ms.add_results(r1, r2)
        ms.add_results(*mres.values())
        q = N1QLQuery(statement, 1)
        q.consistent_with(ms)
        if frontend == "sync":
            rows = list(b.n1ql_query(q))
        elif frontend == "twisted":
            rows = list((yield b.n1qlQueryAll(q)))
        else:
            rows = list((yield b.n1ql_query(q).future))
        assert rows == [{"t": 1}]
        want = {}
        for rv in [r2] + list(mres.values()):
            vb, uuid, seq, _ = rv._mutinfo
            if seq > want.get(str(vb), [0])[0]:
                want[str(vb)] = [seq, str(uuid)]
        return want
    want = H.run(frontend, body)
    req = cluster.query_requests()[-1]
    assert req["scan_consistency"] == "at_plus"
    assert req["scan_vectors"] == {"default": want}
    assert req["args"] == [1]


def test_add_all_takes_the_newest_per_vbucket(cluster):
    from couchbase_ffi.bucket import Bucket
    b = Bucket(cluster.connstr("default", fetch_mutation_tokens="true"), password="secret")
    last = {}
    for i in range(30):
        rv = b.upsert("mt-all-%d" % (i % 7), i)
        last[rv._mutinfo[0]] = rv._mutinfo
    ms = MutationState()
    assert ms.add_all(b) is True
    assert json.loads(ms.encode()) == {"default": dict(
        (str(vb), [t[2], str(t[1])]) for vb, t in last.items())}
    assert sorted(b._mutinfo()) == sorted(t[:3] for t in last.values())


@pytest.mark.skipif(platform.python_implementation() != "CPython",
                    reason="freeing at the last reference is CPython's refcounting")
def test_a_token_bucket_goes_with_its_last_reference(cluster):
    """Asking for tokens does not make a Bucket outlive its users: once the last
    reference is dropped it is gone (and its connections closed) without waiting
    for the garbage collector, as every other Bucket is."""
    from couchbase_ffi.bucket import Bucket
    gc.disable()
    try:
        b = Bucket(cluster.connstr("default", fetch_mutation_tokens="true"), password="secret")
        rv = b.upsert("freed-at-last-ref", {"v": 1})
        assert rv._mutinfo and b._mutinfo()
        assert sys.getrefcount(b) == 2     # the name, and getrefcount's argument
        gone = weakref.ref(b)
        del b
        assert gone() is None
    finally:
        gc.enable()
