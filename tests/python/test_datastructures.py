"""The couchbase 2.x data-structure API (map_*, list_*, set_*, queue_*) over sub-documents,
against the mock cluster, on the sync Bucket, Twisted and asyncio: what each returns,
create=, cas/ttl pass-through, and the 2.x exceptions (NotFoundError, IndexError,
QueueEmpty, KeyExistsError)."""
import pytest

import asynchelp as H
from couchbase_ffi import exceptions as E
from couchbase_ffi.items import Item
from couchbase_ffi.mock import MockCluster, BucketSpec

pytest.importorskip("twisted")

ALL = ("sync",) + H.FRONTENDS


@pytest.fixture(scope="module")
def cluster():
    c = MockCluster(nodes=2, buckets=[BucketSpec("default", password="secret", replicas=1,
                                                 vbuckets=64),
                                      BucketSpec("cache", "memcached")]).start()
    c.set_delays(persist=0.0, replicate=0.0)
    yield c
    c.stop()


@pytest.fixture(autouse=True)
def _no_leftovers(monkeypatch):
    made = H.track_buckets(monkeypatch)
    yield
    H.close_leftovers(made)


def opened(frontend, cluster, bucket="default", **kw):
    return (yield from H.connected(frontend, cluster.connstr(bucket), password="secret", **kw))


def raises(exc, fut_or_call):
    """Yield-able check: the operation fails with ``exc``; returns the exception."""
    try:
        yield fut_or_call()
    except exc as e:
        return e
    raise AssertionError("no %s" % exc.__name__)


def fresh(b, key):
    yield b.remove(key, quiet=True)


@pytest.mark.parametrize("frontend", ALL)
def test_map(cluster, frontend):
    def body():
        b = yield from opened(frontend, cluster)
        key = "ds-map-" + frontend
        yield from fresh(b, key)
        yield from raises(E.NotFoundError, lambda: b.map_add(key, "k1", "v1"))
        rv = yield b.map_add(key, "k1", "v1", create=True)
        assert isinstance(rv, Item) and rv.success and rv.cas != 0 and rv.key == key
        rv = yield b.map_add(key, "k2", {"nested": [1, 2]})
        assert (yield b.map_get(key, "k2")).value == {"nested": [1, 2]}
        got = yield b.map_get(key, "k1")
        assert got.value == "v1" and got.cas == rv.cas
        assert (yield b.map_size(key)) == 2
        yield from raises(IndexError, lambda: b.map_get(key, "nope"))
        yield from raises(IndexError, lambda: b.map_remove(key, "nope"))
        rv = yield b.map_remove(key, "k1")
        assert rv.success and rv.cas != got.cas
        assert (yield b.map_size(key)) == 1
        assert (yield b.get(key)).value == {"k2": {"nested": [1, 2]}}
        # cas passes through to mutate_in
        yield from raises(E.KeyExistsError, lambda: b.map_add(key, "k3", 3, cas=got.cas))
        rv = yield b.map_add(key, "k3", 3, cas=rv.cas)
        assert rv.success
        yield from raises(E.NotFoundError, lambda: b.map_get("ds-map-missing", "k"))
        yield from raises(E.NotFoundError, lambda: b.map_size("ds-map-missing"))
        return True
    assert H.run(frontend, body)


@pytest.mark.parametrize("frontend", ALL)
def test_list(cluster, frontend):
    def body():
        b = yield from opened(frontend, cluster)
        key = "ds-list-" + frontend
        yield from fresh(b, key)
        yield from raises(E.NotFoundError, lambda: b.list_append(key, "hello"))
        rv = yield b.list_append(key, "hello", create=True)
        assert rv.success and rv.cas != 0
        assert (yield b.list_get(key, 0)).value == "hello"
        yield b.list_prepend(key, "before")
        assert (yield b.list_get(key, 0)).value == "before"
        assert (yield b.list_get(key, -1)).value == "hello"
        assert (yield b.list_size(key)) == 2
        yield b.list_append(key, "world")
        assert (yield b.get(key)).value == ["before", "hello", "world"]
        rv = yield b.list_set(key, 1, "after")
        assert rv.success
        assert (yield b.get(key)).value == ["before", "after", "world"]
        rv = yield b.list_remove(key, 0)
        assert rv.success
        assert (yield b.get(key)).value == ["after", "world"]
        yield from raises(IndexError, lambda: b.list_get(key, 5))
        yield from raises(IndexError, lambda: b.list_set(key, 5, "x"))
        yield from raises(IndexError, lambda: b.list_remove(key, 5))
        # list_prepend creates too
        key2 = key + "-p"
        yield from fresh(b, key2)
        yield b.list_prepend(key2, 1, create=True)
        assert (yield b.get(key2)).value == [1]
        return True
    assert H.run(frontend, body)


@pytest.mark.parametrize("frontend", ALL)
def test_set(cluster, frontend):
    def body():
        b = yield from opened(frontend, cluster)
        key = "ds-set-" + frontend
        yield from fresh(b, key)
        yield from raises(E.NotFoundError, lambda: b.set_add(key, 123))
        rv = yield b.set_add(key, 123, create=True)
        assert rv.success and rv.cas
        assert (yield b.set_add(key, 123)) is None          # already there: 2.x's None
        yield b.set_add(key, "abc")
        assert (yield b.set_size(key)) == 2
        assert (yield b.set_contains(key, 123)) is True
        assert (yield b.set_contains(key, 999)) is False
        rv = yield b.set_remove(key, 123)
        assert rv.success
        assert (yield b.set_remove(key, 123)) is None       # not there
        assert (yield b.set_contains(key, 123)) is False
        assert (yield b.set_size(key)) == 1
        yield from raises(E.NotFoundError, lambda: b.set_contains("ds-set-missing", 1))
        return True
    assert H.run(frontend, body)


@pytest.mark.parametrize("frontend", ALL)
def test_queue(cluster, frontend):
    def body():
        b = yield from opened(frontend, cluster)
        key = "ds-queue-" + frontend
        yield from fresh(b, key)
        yield from raises(E.NotFoundError, lambda: b.queue_push(key, 1))
        rv = yield b.queue_push(key, 1, create=True)
        assert rv.success
        yield b.queue_push(key, 2)
        yield b.queue_push(key, {"three": 3})
        assert (yield b.queue_size(key)) == 3
        assert (yield b.queue_pop(key)).value == 1
        assert (yield b.queue_pop(key)).value == 2
        assert (yield b.queue_pop(key)).value == {"three": 3}
        assert (yield b.queue_size(key)) == 0
        yield from raises(E.QueueEmpty, lambda: b.queue_pop(key))
        yield from raises(E.NotFoundError, lambda: b.queue_pop("ds-queue-missing"))
        return True
    assert H.run(frontend, body)


@pytest.mark.parametrize("frontend", ALL)
def test_ttl_and_create_on_an_existing_document(cluster, frontend):
    def body():
        b = yield from opened(frontend, cluster)
        key = "ds-ttl-" + frontend
        yield from fresh(b, key)
        yield b.upsert(key, {"old": 1})
        rv = yield b.map_add(key, "new", 2, create=True)    # exists: create changes nothing
        assert rv.success
        assert (yield b.get(key)).value == {"old": 1, "new": 2}
        yield b.map_add(key, "t", 1, ttl=100)
        assert (yield b.map_get(key, "t")).value == 1
        return True
    assert H.run(frontend, body)


def test_queue_pop_retries_when_another_consumer_was_first(cluster):
    """queue_pop reads the last item and removes it with that CAS: a change in between
    makes it try again, so no item is handed out twice."""
    from couchbase_ffi.bucket import Bucket
    b = Bucket(cluster.connstr("default"), password="secret")
    other = Bucket(cluster.connstr("default"), password="secret")
    key = "ds-race"
    b.remove(key, quiet=True)
    for i in range(3):
        b.queue_push(key, i, create=True)
    real_lookup = b.lookup_in
    raced = []

    def lookup_then_interfere(*args, **kwargs):
        rv = real_lookup(*args, **kwargs)
        if not raced:
            raced.append(other.queue_pop(key).value)    # a second consumer takes it first
        return rv
    b.lookup_in = lookup_then_interfere
    got = b.queue_pop(key)
    assert raced == [0] and got.value == 1
    del b.lookup_in
    assert b.queue_pop(key).value == 2
    with pytest.raises(E.QueueEmpty):
        b.queue_pop(key)


def test_memcached_and_pipeline_refuse(cluster, memcached):
    from couchbase_ffi.bucket import Bucket
    mc = Bucket(memcached.connstr)
    with pytest.raises(E.NotSupportedError):
        mc.map_add("k", "a", 1, create=True)
    b = Bucket(cluster.connstr("default"), password="secret")
    with pytest.raises(E.PipelineError):
        with b.pipeline():
            b.list_append("ds-pipe", 1, create=True)
    with pytest.raises(E.ArgumentError):
        b.list_get("ds-pipe", "0")


def test_mutations_carry_tokens(cluster):
    from couchbase_ffi.bucket import Bucket
    b = Bucket(cluster.connstr("default", fetch_mutation_tokens="true"), password="secret")
    b.remove("ds-tok", quiet=True)
    rv = b.list_append("ds-tok", 1, create=True)
    vb, uuid, seq, name = rv._mutinfo
    assert vb == cluster.bucket("default").vbucket_of("ds-tok") and seq and name == "default"
    assert b.list_get("ds-tok", 0)._mutinfo is None
