"""Sub-document operations (couchbase.subdocument, Bucket.lookup_in / mutate_in /
retrieve_in) with the couchbase 2.x semantics, against the mock cluster, through
every front-end (sync, Twisted, asyncio): each body yields what an operation
returned and gets its result."""
import pytest

import asynchelp as H
import couchbase_ffi.subdocument as SD
from couchbase_ffi import exceptions as E
from couchbase_ffi.transcoder import FMT_UTF8
from couchbase_ffi.mock import MockCluster, BucketSpec

pytest.importorskip("twisted")

ALL = ("sync",) + H.FRONTENDS


@pytest.fixture(scope="module")
def cluster():
    c = MockCluster(nodes=3, buckets=[BucketSpec("default", "couchbase", password="secret",
                                                 replicas=1, vbuckets=64)]).start()
    c.set_delays(persist=0.0, replicate=0.0)
    yield c
    c.stop()


@pytest.fixture(autouse=True)
def _no_leftovers(monkeypatch):
    made = H.track_buckets(monkeypatch)
    yield
    H.close_leftovers(made)


def opened(frontend, cluster):
    return (yield from H.connected(frontend, cluster.connstr("default"), password="secret"))


outcome = H.outcome


@pytest.mark.parametrize("frontend", ALL)
def test_lookups(cluster, frontend):
    k = frontend + ":look"

    def body():
        b = yield from opened(frontend, cluster)
        w = yield b.upsert(k, {"name": "Ada", "tags": ["x", "y"], "n": {"m": 1}})
        rv = yield b.lookup_in(k, SD.get("name"), SD.exists("n.m"), SD.get_count("tags"),
                               SD.get("tags[-1]"), SD.get("n"))
        assert rv.success and rv.rc == 0 and rv.cas == w.cas and rv.key == k
        assert rv[0] == "Ada" and rv["name"] == "Ada"
        assert rv.exists(1) and rv.exists("n.m") and "n.m" in rv
        assert rv[2] == 2 and rv[3] == "y" and rv["n"] == {"m": 1}
        assert list(rv) == ["Ada", None, 2, "y", {"m": 1}]
        assert rv.get(0) == (0, "Ada") and rv.command_count == rv.result_count == 5
        # a missing path: not an error of the call
        rv = yield b.retrieve_in(k, "name", "nope")
        assert not rv.success and rv.rc == E.SubdocMultipleErrors.CODE and rv.access_ok
        assert rv.get(1) == (E.SubdocPathNotFoundError.CODE, None)
        assert rv.get("nope", "dflt") == (E.SubdocPathNotFoundError.CODE, "dflt")
        assert not rv.exists("nope")
        with pytest.raises(E.SubdocPathNotFoundError):
            rv["nope"]
        it = iter(rv)
        assert next(it) == "Ada"
        with pytest.raises(E.SubdocPathNotFoundError):
            next(it)
        # other path errors are raised
        err = yield from outcome(lambda: b.retrieve_in(k, "name[0]"))
        assert isinstance(err, E.SubdocPathMismatchError) and err.key == k
        err = yield from outcome(lambda: b.retrieve_in(k, "a..b"))
        assert isinstance(err, E.SubdocPathInvalidError)
        # the document itself
        err = yield from outcome(lambda: b.lookup_in(k + "-none", SD.get("a")))
        assert isinstance(err, E.NotFoundError)
        assert not err.all_results[k + "-none"].access_ok
        rv = yield b.lookup_in(k + "-none", SD.get("a"), quiet=True)
        assert not rv.success and rv.rc == E.NotFoundError.CODE
        yield b.upsert(k + "-raw", "plain text", format=FMT_UTF8)
        err = yield from outcome(lambda: b.lookup_in(k + "-raw", SD.exists("a")))
        assert isinstance(err, E.DocumentNotJsonError)
        b.close()
    H.run(frontend, body)


@pytest.mark.parametrize("frontend", ALL)
def test_mutations(cluster, frontend):
    k = frontend + ":mut"

    def body():
        b = yield from opened(frontend, cluster)
        w = yield b.upsert(k, {"arr": [1], "s": "x"})
        rv = yield b.mutate_in(k, SD.upsert("new", ["hello"]), SD.insert("ins", {}),
                               SD.replace("s", "y"), SD.upsert("a.b.c", 1, create_parents=True),
                               SD.array_append("arr", 2, 3), SD.array_prepend("arr", 0),
                               SD.array_insert("arr[1]", "i"), SD.array_addunique("arr", 9),
                               SD.counter("ctr", 10), SD.counter("ctr", -3))
        assert rv.success and rv.cas and rv.cas != w.cas
        assert rv[8] == 10 and rv[9] == 7 and rv[0] is None
        g = yield b.get(k)
        assert g.cas == rv.cas
        assert g.value == {"arr": [0, "i", 1, 2, 3, 9], "s": "y", "new": ["hello"], "ins": {},
                           "a": {"b": {"c": 1}}, "ctr": 7}
        rv = yield b.mutate_in(k, SD.remove("ins"), SD.remove("arr[0]"))
        g = yield b.get(k)
        assert "ins" not in g.value and g.value["arr"][0] == "i"
        # errors: the first failing spec's, and nothing is changed
        for specs, cls in (((SD.upsert("x.y.z", 1),), E.SubdocPathNotFoundError),
                           ((SD.upsert("ok", 1), SD.insert("s", 2)), E.SubdocPathExistsError),
                           ((SD.upsert("arr.k", 1),), E.SubdocPathMismatchError),
                           ((SD.upsert("arr[0]", 1),), E.SubdocPathInvalidError),
                           ((SD.replace("nope", 1),), E.SubdocPathNotFoundError),
                           ((SD.array_addunique("arr", 9),), E.SubdocPathExistsError),
                           ((SD.counter("s", 1),), E.SubdocPathMismatchError),
                           ((SD.counter("ctr", "blah"),), E.SubdocBadDeltaError)):
            err = yield from outcome(lambda: b.mutate_in(k, *specs))
            assert isinstance(err, cls), (specs, err)
            assert err.key == k
        g2 = yield b.get(k)
        assert g2.cas == g.cas and "ok" not in g2.value
        # CAS
        err = yield from outcome(lambda: b.mutate_in(k, SD.upsert("c", 1), cas=g.cas + 1))
        assert isinstance(err, E.KeyExistsError)
        rv = yield b.mutate_in(k, SD.upsert("c", 1), cas=g.cas)
        assert rv.cas != g.cas
        # the document: missing, upsert_doc, insert_doc
        err = yield from outcome(lambda: b.mutate_in(k + "-new", SD.upsert("a", 1)))
        assert isinstance(err, E.NotFoundError)
        yield b.mutate_in(k + "-new", SD.upsert("a.b", 1), SD.array_append("l", "x"),
                          upsert_doc=True)
        g = yield b.get(k + "-new")
        assert g.value == {"a": {"b": 1}, "l": ["x"]}
        err = yield from outcome(lambda: b.mutate_in(k + "-new", SD.upsert("a", 1),
                                                     insert_doc=True))
        assert isinstance(err, E.KeyExistsError)
        yield b.remove(k + "-new")
        yield b.mutate_in(k + "-new", SD.upsert("z", 0), insert_doc=True, ttl=100)
        g = yield b.get(k + "-new")
        assert g.value == {"z": 0}
        # durability, with the counter's value kept
        rv = yield b.mutate_in(k, SD.counter("ctr", 1), persist_to=1, replicate_to=1)
        assert rv[0] == 8 and rv.cas
        b.close()
    H.run(frontend, body)


@pytest.mark.parametrize("frontend", ALL)
def test_refused_before_sending(cluster, frontend):
    def body():
        b = yield from opened(frontend, cluster)
        bad = [((lambda: b.lookup_in("k", SD.upsert("a", 1))), E.ArgumentError),
               ((lambda: b.mutate_in("k", SD.get("a"))), E.ArgumentError),
               ((lambda: b.lookup_in("k")), E.ArgumentError),
               ((lambda: b.lookup_in("k", ("junk",))), E.ArgumentError),
               ((lambda: b.retrieve_in("k", "")), E.SubdocEmptyPathError),
               ((lambda: b.mutate_in("k", SD.upsert("", {}))), E.SubdocEmptyPathError),
               ((lambda: b.lookup_in("k", *[SD.get("a")] * 17)), E.InvalidError),
               ((lambda: b.mutate_in("k", SD.upsert("a", 1), upsert_doc=True, insert_doc=True)),
                E.ArgumentError),
               ((lambda: b.mutate_in("k", SD.upsert("a", 1), ttl=-1)), E.ArgumentError),
               ((lambda: b.mutate_in("k", SD.upsert("a", 1), bogus=1)), E.ArgumentError),
               ((lambda: b.mutate_in("k", SD.upsert("a", 1), replicate_to=2)), E.ArgumentError),
               ((lambda: b.lookup_in("", SD.get("a"))), E.ArgumentError),
               ((lambda: b.mutate_in("k", SD.upsert("a", object()))), E.ValueFormatError)]
        for call, cls in bad:
            with pytest.raises(cls):
                call()        # raised at once, in every front-end
        b.close()
        yield from ()
    H.run(frontend, body)


def test_spec_constructors_are_2x_tuples():
    assert SD.get("a") == (SD.LCB_SDCMD_GET, "a", 0)
    assert SD.upsert("a", 1, create_parents=True) == (SD.LCB_SDCMD_DICT_UPSERT, "a",
                                                       SD.SDSPEC_F_MKDIR_P, 1)
    assert SD.array_append("a", 1, 2)[3] == SD.MultiValue(1, 2)
    assert SD.get_count("a")[0] == SD.LCB_SDCMD_GET_COUNT
    assert repr(SD.remove("p")) == "Spec<REMOVE, 'p', 0>"
    with pytest.raises(ValueError):
        SD.counter("c", 0)
    with pytest.raises(E.NotSupportedError):
        SD.get("a", xattr=True)
    with pytest.raises(E.NotSupportedError):
        SD.upsert("a", 1, xattr=True)


def test_memcached_buckets_refuse(memcached):
    from couchbase_ffi.bucket import Bucket
    b = Bucket(memcached.connstr)
    try:
        for call in (lambda: b.lookup_in("k", SD.get("a")), lambda: b.retrieve_in("k", "a"),
                     lambda: b.mutate_in("k", SD.upsert("a", 1))):
            with pytest.raises(E.NotSupportedError):
                call()
    finally:
        b.close()


def test_installed_as_couchbase():
    import subprocess
    import sys
    code = ("import couchbase_ffi; couchbase_ffi.install_as_couchbase(); "
            "import couchbase.subdocument as SD; from couchbase.result import SubdocResult; "
            "import couchbase_ffi.subdocument as S; assert SD is S and SubdocResult is S.SubdocResult")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
