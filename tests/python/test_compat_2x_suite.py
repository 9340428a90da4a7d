"""Behaviours the couchbase 2.x client's own test suite relies on, checked through
the ``couchbase.*``, ``txcouchbase.*`` and ``acouchbase.*`` names that
install_as_couchbase() provides: the memcached path against the real memcached
of conftest, the Couchbase-only parts against the mock cluster."""
import asyncio
import gc
import json
import os
import platform
import warnings
import weakref

import pytest

import couchbase_ffi

try:
    couchbase_ffi.install_as_couchbase()
except couchbase_ffi.CouchbaseAlreadyImported:  # pragma: no cover
    pytest.skip("another couchbase package is imported", allow_module_level=True)

import couchbase  # noqa: E402
import couchbase.exceptions as E  # noqa: E402
from couchbase.bucket import Bucket  # noqa: E402
from couchbase.connstr import ConnectionString  # noqa: E402
from couchbase.items import Item, ItemSequence, ItemOptionDict  # noqa: E402
from couchbase_ffi.mock import MockCluster, BucketSpec  # noqa: E402

import asynchelp as H  # noqa: E402

PYPY = platform.python_implementation() == "PyPy"
_n = [0]


def key(prefix="k"):
    _n[0] += 1
    return "suite2x:%s:%d:%d" % (prefix, os.getpid(), _n[0])


@pytest.fixture
def mc(memcached):
    b = Bucket(memcached.connstr)
    yield b
    b.close()


@pytest.fixture(scope="module")
def cluster():
    c = MockCluster(nodes=3, buckets=[BucketSpec("default", "couchbase", replicas=2),
                                      BucketSpec("secured", "couchbase", password="s3cret",
                                                 replicas=1)]).start()
    c.set_delays(persist=0.0, replicate=0.0)
    yield c
    c.stop()


@pytest.fixture
def cb(cluster):
    b = Bucket(cluster.http_connstr("default"))
    yield b
    b.close()


# ---- stats() arguments -------------------------------------------------------------------

@pytest.mark.parametrize("bad", [["curr_items", 7], [None], ("", 2.5), {"settings"}, 42,
                                 [b"x", object()]])
def test_stats_refuses_a_group_that_is_not_text(mc, bad):
    with pytest.raises(E.ArgumentError):
        mc.stats(bad)


def test_stats_takes_a_name_or_a_list_or_tuple_of_names(mc):
    general = mc.stats()
    assert "curr_connections" in general
    assert set(mc.stats([""])) == set(general)          # "" is the general group
    assert "curr_connections" in mc.stats(("", b""))   # bytes names too
    assert mc.stats("settings")                          # memcached's "stats settings"


def test_async_stats_refuse_a_bad_group_at_the_call(memcached):
    for fe in H.FRONTENDS:
        def body():
            b = H.bucket_class(fe)(memcached.connstr)
            try:
                with pytest.raises(E.ArgumentError):
                    b.stats(["", 3])
                got = yield b.stats([""])
                return "curr_connections" in got
            finally:
                b.close()
        assert H.run(fe, body), fe


def test_mock_has_the_memory_and_tap_stat_groups(cb):
    mem = cb.stats("memory")
    assert "mem_used" in mem and "ep_tap_count" not in mem
    assert all(isinstance(v, int) for v in mem["mem_used"].values())
    both = cb.stats(["memory", "tap"])
    assert "mem_used" in both and "ep_tap_count" in both
    before = sum(cb.stats("memory")["mem_used"].values())
    cb.upsert(key("mem"), "x" * 5000)
    assert sum(cb.stats("memory")["mem_used"].values()) >= before + 5000


# ---- couchbase._libcouchbase, couchbase.experimental ---------------------------------------

def test_libcouchbase_module_helpers_follow_the_converters():
    import couchbase._libcouchbase as LCB
    assert LCB is couchbase_ffi._libcouchbase

    def enc(v):
        return json.dumps(v)

    def dec(s):
        return json.loads(s)
    old = couchbase.set_json_converters(enc, dec)
    try:
        assert (LCB._get_helper("json_encode"), LCB._get_helper("json_decode")) == (enc, dec)
    finally:
        assert couchbase.set_json_converters(*old) == (enc, dec)
    assert (LCB._get_helper("json_encode"), LCB._get_helper("json_decode")) == old
    p_old = couchbase.set_pickle_converters(enc, dec)
    try:
        assert LCB._get_helper("pickle_decode") is dec
    finally:
        couchbase.set_pickle_converters(*p_old)
    with pytest.raises(KeyError):
        LCB._get_helper("yaml_encode")
    assert LCB.lcb_version() == Bucket.lcb_version()


def test_lcb_logging_handler_and_enable_logging():
    import couchbase._libcouchbase as LCB
    assert LCB.lcb_logging() is None
    fn = lambda **kw: None  # noqa: E731
    try:
        assert LCB.lcb_logging(fn) is None
        assert LCB.lcb_logging() is fn
        couchbase.enable_logging()
        assert LCB.lcb_logging() not in (None, fn)
        couchbase.disable_logging()
        assert LCB.lcb_logging() is None
        with pytest.raises(TypeError):
            LCB.lcb_logging(42)
    finally:
        LCB.lcb_logging(None)


def test_experimental_switch():
    import couchbase.experimental as X
    X.enable()
    X.enabled_or_raise()
    assert X.enabled()


def test_pyport_names_for_2x_code():
    # 2.x programs (and its tests) took their py2/py3 names from couchbase._pyport
    from couchbase._pyport import long, xrange, basestring, ulp
    assert isinstance(2 ** 70, long) and isinstance(True, long)
    assert list(xrange(3)) == [0, 1, 2]
    assert isinstance(u"key", basestring) and not isinstance(b"key", basestring)
    assert ulp.quote("a b/c") == "a%20b/c"


# ---- _privflags and duplicate keys -----------------------------------------------------------

def test_warnexplicit_makes_every_duplicate_key_warning_show(mc):
    import couchbase._libcouchbase as LCB
    k = key("dup")
    mc.upsert(k, 1)
    assert mc._privflags & LCB.PYCBC_CONN_F_CLOSED == 0
    mc._privflags |= LCB.PYCBC_CONN_F_WARNEXPLICIT
    assert mc._privflags & LCB.PYCBC_CONN_F_WARNEXPLICIT
    with warnings.catch_warnings(record=True) as log:
        warnings.resetwarnings()
        for _ in range(3):  # the same line three times: each one warns
            mc.get_multi((k, k))
        mc.counter_multi((k, k), initial=0)
        mc.remove_multi((k, k), quiet=True)
    dups = [w for w in log if w.category is RuntimeWarning and "duplicate" in str(w.message)]
    assert len(dups) == 5
    mc.close()
    assert mc._privflags & LCB.PYCBC_CONN_F_CLOSED


def test_duplicate_keys_warn_through_the_warnings_filters_by_default(mc):
    k = key("dup2")
    mc.upsert(k, 1)
    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("always")
        mc.get_multi([k, k])
    assert any(w.category is RuntimeWarning for w in log)


# ---- ConnectionString and 1.x-style connects ----------------------------------------------

def test_connection_string_from_one_whole_string():
    cs = ConnectionString("couchbase://h1:1,h2/bkt?operation_timeout=2")
    assert (cs.scheme, cs.hosts, cs.bucket) == ("couchbase", ["h1:1", "h2"], "bkt")
    assert cs.get_option("operation_timeout") == "2"
    cs.bucket += "_sasl"
    assert str(cs) == "couchbase://h1:1,h2/bkt_sasl?operation_timeout=2"
    plain = ConnectionString(bucket="b", hosts=["h"])
    assert str(plain) == "couchbase://h/b"
    assert ConnectionString("beer-sample").bucket == "beer-sample"


def test_couchbase_connect_with_a_connection_string(memcached):
    from couchbase import Couchbase
    from couchbase.connection import Connection
    with pytest.warns(DeprecationWarning):
        c = Couchbase.connect(memcached.connstr)
    try:
        assert isinstance(c, Connection) and c.upsert(key("cc"), 1).success
    finally:
        c.close()


# ---- Items -----------------------------------------------------------------------------------

def test_an_item_never_initialised_is_refused(mc):
    class Half(Item):
        def __init__(self):
            pass   # Item.__init__ not called

    it = Half()
    it.key = key("half")
    with pytest.raises(E.ArgumentError):
        mc.upsert_multi(ItemSequence([it]))
    with pytest.raises(E.ArgumentError):
        mc.get_multi(ItemSequence([it]))
    assert not mc.get(it.key, quiet=True).success   # nothing was sent


def test_an_item_value_property_does_not_hide_its_own_value(mc):
    class Shadowed(Item):
        @property
        def value(self):
            return "shadow"

        @value.setter
        def value(self, v):
            Item.value.__set__(self, v)

    it = Shadowed(key("shadow"), "real")
    assert mc.upsert_multi(ItemSequence([it])).all_ok
    assert mc.get(it.key).value == "real"
    with pytest.raises(E.ArgumentError):
        mc.upsert_multi(ItemSequence(["not an item"]))


# ---- query in a pipeline, _cntl codes, extra credentials -----------------------------------

def test_a_query_inside_a_pipeline_is_a_pipeline_error(mc):
    with pytest.raises(E.NotSupportedError):
        mc.query("design", "view")
    with pytest.raises(E.PipelineError):
        with mc.pipeline():
            mc.query("design", "view")
    with pytest.raises(E.PipelineError):
        with mc.pipeline():
            mc.n1ql_query("SELECT 1")
    assert mc.upsert(key("after"), 1).success   # the pipeline was left


def test_read_only_cntls(mc):
    rv = mc._cntl(0x1F, value_type="string")
    assert isinstance(rv, str) and rv == Bucket.lcb_version()[0]
    assert mc._cntl(0x15, value_type="int") == 0
    for op in (0x15, 0x1F):
        with pytest.raises(E.ArgumentError):
            mc._cntl(op, 1)
    with pytest.raises(E.NotSupportedError):
        mc._cntl(0xF000)


def test_add_bucket_creds(mc):
    mc.add_bucket_creds("other", "pw")
    for bucket, password in (("", "pw"), ("other", ""), (None, "pw")):
        with pytest.raises(ValueError):
            mc.add_bucket_creds(bucket, password)


# ---- config_cache ----------------------------------------------------------------------------

def test_config_cache_file_is_written_after_bootstrap(memcached, cluster, tmp_path):
    path = tmp_path / "cfg"
    b = Bucket(memcached.connstr + "?config_cache=" + str(path))
    try:
        doc = json.loads(path.read_text())
        assert doc["nodes"] == b.server_nodes and doc["bucketType"] == "memcached"
        assert b._cntl(0x15) == 0     # written, never read back
    finally:
        b.close()
    path2 = tmp_path / "cfg2"
    c = Bucket(cluster.http_connstr("default") + "?config_cache=" + str(path2))
    try:
        doc = json.loads(path2.read_text())
        assert doc["name"] == "default" and doc["numReplicas"] == 2
        assert doc["bucketType"] == "membase" and len(doc["nodes"]) == 3
        assert doc["rev"] >= 0
        c2 = Bucket(cluster.http_connstr("default") + "?config_cache=" + str(path2))
        assert c2.upsert(key("cfg"), 1).success
        c2.close()
    finally:
        c.close()
    # a path that cannot be written does not stop the Bucket
    b = Bucket(memcached.connstr + "?config_cache=" + str(tmp_path / "no" / "such" / "dir"))
    assert b.upsert(key("cfg"), 1).success
    b.close()


# ---- argument errors come before "memcached cannot do it" ---------------------------------

@pytest.mark.parametrize("call", [
    lambda b: b.lock("k"),                     # no ttl
    lambda b: b.lock("", ttl=5),
    lambda b: b.lock("k", {"ttl": 5}),
    lambda b: b.lock("k", ttl="string"),
    lambda b: b.lock_multi(("a", "b")),
    lambda b: b.unlock("k", 0),
    lambda b: b.unlock("", 1234),
    lambda b: b.unlock_multi({"a": 0}),
    lambda b: b.observe(""),
    lambda b: b.observe_multi(""),
    lambda b: b.endure("k", persist_to=99),
    lambda b: b.rget("", replica_index=0),
])
def test_bad_arguments_are_argument_errors_on_memcached_too(mc, call):
    with pytest.raises(E.ArgumentError):
        call(mc)


def test_good_arguments_still_get_not_supported_on_memcached(mc):
    for call in (lambda: mc.lock("k", ttl=5), lambda: mc.unlock("k", 1234),
                 lambda: mc.observe("k"), lambda: mc.lock_multi(["a"], ttl=5)):
        with pytest.raises(E.NotSupportedError):
            call()


# ---- the _dur_testhook of 2.x's endure tests ------------------------------------------------

def test_dur_testhook_runs_between_the_mutation_and_the_check(cb, cluster):
    k = key("hook")
    seen = []
    with cb.durability(persist_to=-1, replicate_to=-1, timeout=0.5):
        cb._dur_testhook = seen.append
        rv = cb.upsert(k, "v1")
        assert rv.success and seen == [rv] and rv.cas

        def unpersist(res):
            cluster.unpersist("default", k)
        cb._dur_testhook = unpersist
        with pytest.raises(E.TimeoutError):
            cb.upsert(k, "v2")
        cb._dur_testhook = seen.append
        rm = cb.remove(k)
        assert rm.success and seen[-1] is rm
        cb._dur_testhook = None
        assert cb.upsert(k, "v3").success
    cb._dur_testhook = seen.append
    n = len(seen)
    cb.upsert(k, "plain")          # no durability asked: the hook is not called
    assert len(seen) == n


# ---- the mock's answer to a login as a bucket that does not exist --------------------------

def test_unknown_bucket_over_http_is_bucket_not_found(cluster):
    with pytest.raises(E.BucketNotFoundError):
        Bucket(cluster.http_connstr("this_bucket_does_not_exist"))
    with pytest.raises(E.AuthError):
        Bucket(cluster.http_connstr("secured"), password="wrong")
    b = Bucket(cluster.http_connstr("secured"), password="s3cret")
    assert b.upsert(key("sec"), 1).success
    b.close()


# ---- txcouchbase and acouchbase -------------------------------------------------------------

def test_txcouchbase_and_acouchbase_names():
    pytest.importorskip("twisted")
    import couchbase_ffi.twisted as tw
    import couchbase_ffi.asyncio as aio
    from txcouchbase.bucket import Bucket as TxBucket, RawBucket
    from txcouchbase.connection import Connection as TxConnection
    from acouchbase.bucket import Bucket as AioBucket
    import txcouchbase
    import acouchbase
    assert TxBucket is tw.Bucket and RawBucket is tw.Bucket and AioBucket is aio.Bucket
    assert issubclass(TxConnection, tw.Bucket)
    assert txcouchbase.bucket is tw and acouchbase.bucket is aio
    assert tw.__spec__.name == "couchbase_ffi.twisted"   # the real module is untouched
    for name in ("getMulti", "upsertMulti", "setMulti", "removeMulti", "deleteMulti",
                 "counterMulti", "lockMulti", "unlockMulti", "touchMulti", "observeMulti"):
        assert getattr(TxBucket, name) is getattr(TxBucket, name[:-5] + "_multi"), name
    couchbase_ffi.install_as_couchbase()          # again: harmless
    import sys
    assert sys.modules["txcouchbase.bucket"] is tw


def test_txcouchbase_connect_events(cluster):
    pytest.importorskip("twisted")
    from twisted.internet import defer
    from txcouchbase.bucket import Bucket as TxBucket

    def body():
        b = TxBucket(cluster.http_connstr("default"))
        try:
            assert not b.connected
            with pytest.raises(ValueError):
                b.registerDeferred("blah", defer.Deferred())
            d = defer.Deferred()
            b.registerDeferred("connect", d)
            got = yield d
            assert got is None and b.connected
            d2 = defer.Deferred()
            b.registerDeferred("connect", d2)      # already connected: fires too
            assert (yield d2) is None
            res = yield b.setMulti({key("tx"): 1})
            assert res.all_ok
            assert (yield b.defer(b.get(list(res)[0]))).value == 1
        finally:
            b.close()
        assert not b.connected
        return True
    assert H.run("twisted", body)


def test_txcouchbase_dtor_fires_once_the_bucket_is_gone(cluster):
    pytest.importorskip("twisted")
    from twisted.internet import defer
    from txcouchbase.bucket import Bucket as TxBucket

    before = H.loop_registrations("twisted")

    def body():
        b = TxBucket(cluster.http_connstr("default"))
        gone = defer.Deferred()
        b.registerDeferred("_dtor", gone)
        yield b.upsert(key("dtor"), 1)
        ref = weakref.ref(b)
        del b
        assert (yield gone) is None       # no gc.collect() here: the Bucket's own doing
        assert ref() is None
        closed = TxBucket(cluster.http_connstr("default"))
        closed.close()
        late = defer.Deferred()
        closed.registerDeferred("_dtor", late)
        assert (yield late) is None
        return True
    assert H.run("twisted", body)
    assert H.loop_registrations("twisted") == before   # no reader, writer or timer left


def test_txcouchbase_dropped_bucket_fails_its_pending_connect(cluster):
    pytest.importorskip("twisted")
    from twisted.internet import defer
    from txcouchbase.bucket import Bucket as TxBucket

    def body():
        b = TxBucket(cluster.http_connstr("default"))
        gone = defer.Deferred()
        b.registerDeferred("_dtor", gone)   # as 2.x's test harness did
        d = b.connect()
        del b
        with pytest.raises(E.ObjectDestroyedError):
            yield d
        yield gone
        return True
    assert H.run("twisted", body)


def test_txcouchbase_bucket_with_pending_operations_is_kept(cluster):
    pytest.importorskip("twisted")
    from txcouchbase.bucket import Bucket as TxBucket
    k = key("kept")

    def body():
        d = TxBucket(cluster.http_connstr("default")).upsert(k, "v")   # no reference kept
        gc.collect()
        res = yield d
        return res.success
    assert H.run("twisted", body)
    b = Bucket(cluster.http_connstr("default"))
    assert b.get(k).value == "v"
    b.close()


def test_txconnection_1x_arguments(memcached):
    pytest.importorskip("twisted")
    from txcouchbase.connection import Connection as TxConnection

    def body():
        with pytest.warns(DeprecationWarning):
            c = TxConnection(connection_string=memcached.connstr)
        try:
            res = yield c.upsert(key("txc"), 1)
            return res.success
        finally:
            c.close()
    assert H.run("twisted", body)


def test_acouchbase_default_bucket_flow(cluster):
    import couchbase.experimental
    couchbase.experimental.enable()
    from acouchbase.bucket import Bucket as AioBucket
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        b = AioBucket(cluster.http_connstr("default"))   # made outside the loop, as 2.x did

        async def main():
            await (b.connect() or asyncio.sleep(0.01))
            assert b.connected
            await b.upsert("hello", {"key": "v"})
            return (await b.get("hello")).value
        assert loop.run_until_complete(main()) == {"key": "v"}
        b.close()
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def test_asyncio_bucket_nobody_refers_to_is_closed(cluster):
    from acouchbase.bucket import Bucket as AioBucket

    async def main():
        before = H.loop_registrations("asyncio")
        b = AioBucket(cluster.http_connstr("default"))
        await b.upsert(key("aio"), 1)
        assert H.loop_registrations("asyncio") != before
        ref = weakref.ref(b)
        del b
        gc.collect()
        await asyncio.sleep(0)
        return ref() is None, H.loop_registrations("asyncio") == before
    loop = asyncio.new_event_loop()
    try:
        freed, clean = loop.run_until_complete(main())
    finally:
        loop.close()
    assert freed and clean
