"""Every operation of the sync Bucket, through the Twisted and the asyncio front-end,
behaves as it does on the sync Bucket: the same results, the same exceptions (class,
rc, key, result, all_results), quiet semantics and bad-input errors.

Each scenario runs once on the sync Bucket and once on the async one (on fresh keys
each time) and the two traces of outcomes must be equal; the scenarios also assert
the values that matter, so the sync side is not trusted blindly.  The list of
operations is taken from the sync Bucket itself: a new public method there fails
test_every_sync_operation_has_a_scenario until it gets a scenario here.
"""
import warnings

import pytest

from conftest import Memcached
import asynchelp as H
from couchbase_ffi import exceptions as E, FMT_BYTES, FMT_UTF8
from couchbase_ffi.bucket import Bucket as SyncBucket
from couchbase_ffi.items import Item, ItemOptionDict, ItemSequence
from couchbase_ffi.result import MultiResult, Result

pytest.importorskip("twisted")


@pytest.fixture(autouse=True)
def _no_leftovers(monkeypatch):
    made = H.track_buckets(monkeypatch)
    yield
    H.close_leftovers(made)

# Not operations on data; each has its own test below.
NOT_OPERATIONS = {"close", "pipeline", "durability", "lcb_version", "add_bucket_creds"}
STABLE_STATS = {"pid", "uptime", "version", "curr_connections", "get_hits", "cmd_set"}


@pytest.fixture(scope="module")
def server():
    """A memcached of this module's own: the flush scenario empties it."""
    m = Memcached().start()
    yield m
    m.stop()


class Trace(object):
    """Records the outcome of each operation, with the run's key prefix taken out."""

    # What an async call may raise at once: bad input, and what the client refuses to send
    AT_CALL = (E.ArgumentError, E.ValueFormatError, E.NotSupportedError, E.TooBigError)

    def __init__(self, prefix, frontend):
        self.prefix = prefix
        self.frontend = frontend
        self.items = []

    def k(self, name):
        return self.prefix + name

    def __call__(self, make, norm=None):
        """``r = yield from t(lambda: b.op(...))``: the result, or the exception.

        On an async Bucket the call must return a future at once (never a result
        computed by waiting), or raise one of AT_CALL."""
        try:
            fut = make()
        except Exception as e:
            if self.frontend != "sync":
                assert isinstance(e, self.AT_CALL), "raised at the call: %r" % (e,)
            self.items.append(("error", self.exc(e)))
            return e
        if self.frontend != "sync":
            assert H.is_future(self.frontend, fut), "returned %r, not a future" % (fut,)
        try:
            value = yield fut
        except Exception as e:
            self.items.append(("error", self.exc(e)))
            return e
        self.items.append(("ok", (norm or self.norm)(value)))
        return value

    def note(self, value):
        self.items.append(("note", self.norm(value)))

    def key(self, k):
        if isinstance(k, str) and k.startswith(self.prefix):
            return "<K>" + k[len(self.prefix):]
        return k

    def norm(self, v):
        if isinstance(v, MultiResult):
            return ("MultiResult", v.all_ok, sorted((self.key(k), self.norm(r))
                                                    for k, r in v.items()))
        if isinstance(v, Result):
            return (type(v).__name__, self.key(v.key), v.rc, v.success,
                    self.norm(getattr(v, "value", None)), getattr(v, "flags", None),
                    bool(getattr(v, "cas", 0)))
        if isinstance(v, dict):
            return sorted((self.norm(k), self.norm(x)) for k, x in v.items())
        if isinstance(v, (list, tuple)):
            return [self.norm(x) for x in v]
        return v

    @staticmethod
    def stats(v):
        """{stat: {server: value}}: the values change, the names and servers do not."""
        return ("stats", sorted(set(v) & STABLE_STATS),
                sorted({s for per in v.values() for s in per}))

    def exc(self, e):
        if not isinstance(e, E.CouchbaseError):
            return (type(e).__name__, str(e))
        return (type(e).__name__, e.rc, self.key(e.key),
                self.norm(e.result) if e.result is not None else None,
                self.norm(e.all_results) if e.all_results else None)


# ---- the scenarios: generator functions of (bucket, trace) ------------------------------

def sc_get(b, t):
    w = yield from t(lambda: b.upsert(t.k("a"), {"x": 1}))
    g = yield from t(lambda: b.get(t.k("a")))
    assert g.value == {"x": 1} and g.cas == w.cas
    e = yield from t(lambda: b.get(t.k("nope")))
    assert isinstance(e, E.NotFoundError) and e.key == t.k("nope")
    q = yield from t(lambda: b.get(t.k("nope"), quiet=True))
    assert not q.success and q.rc == 0x0D
    yield from t(lambda: b.get(t.k("a"), ttl=100))
    raw = yield from t(lambda: b.get(t.k("a"), no_format=True))
    assert raw.value == b'{"x": 1}' or raw.value == b'{"x":1}'
    yield from t(lambda: b.get(t.k("a"), replica=True))
    yield from t(lambda: b.get(""))
    yield from t(lambda: b.get(t.k("x" * 260)))
    yield from t(lambda: b.get(12))


def sc_upsert(b, t):
    w = yield from t(lambda: b.upsert(t.k("a"), "text", format=FMT_UTF8))
    yield from t(lambda: b.upsert(t.k("b"), b"\x00\x01", format=FMT_BYTES, ttl=100))
    e = yield from t(lambda: b.upsert(t.k("a"), "x", cas=w.cas + 12345))
    assert isinstance(e, E.KeyExistsError)
    yield from t(lambda: b.upsert(t.k("a"), "y", cas=w.cas))
    g = yield from t(lambda: b.get(t.k("a")))
    assert g.value == "y"
    yield from t(lambda: b.upsert(t.k("c"), "s", format=FMT_BYTES))
    yield from t(lambda: b.upsert(t.k("c"), 1, ttl=-1))
    yield from t(lambda: b.upsert(t.k("c"), 1, persist_to=1))
    yield from t(lambda: b.upsert(t.k("c"), object()))


def sc_insert(b, t):
    yield from t(lambda: b.insert(t.k("a"), [1, 2]))
    e = yield from t(lambda: b.insert(t.k("a"), [3]))
    assert isinstance(e, E.KeyExistsError)
    g = yield from t(lambda: b.get(t.k("a")))
    assert g.value == [1, 2]


def sc_replace(b, t):
    e = yield from t(lambda: b.replace(t.k("a"), 1))
    assert isinstance(e, E.NotFoundError)
    w = yield from t(lambda: b.upsert(t.k("a"), 1))
    yield from t(lambda: b.replace(t.k("a"), 2, cas=w.cas + 1))
    yield from t(lambda: b.replace(t.k("a"), 3, cas=w.cas))
    g = yield from t(lambda: b.get(t.k("a")))
    assert g.value == 3


def _concat(op):
    def sc(b, t):
        e = yield from t(lambda: getattr(b, op)(t.k("a"), b"x"))
        assert isinstance(e, E.NotStoredError)
        yield from t(lambda: b.upsert(t.k("a"), b"mid", format=FMT_BYTES))
        yield from t(lambda: getattr(b, op)(t.k("a"), b"+"))
        yield from t(lambda: getattr(b, op)(t.k("a"), "u"))
        g = yield from t(lambda: b.get(t.k("a")))
        assert g.value == (b"mid+u" if op == "append" else b"u+mid")
    return sc


def sc_remove(b, t):
    w = yield from t(lambda: b.upsert(t.k("a"), 1))
    yield from t(lambda: b.remove(t.k("a"), cas=w.cas + 1))
    yield from t(lambda: b.remove(t.k("a")))
    e = yield from t(lambda: b.remove(t.k("a")))
    assert isinstance(e, E.NotFoundError)
    q = yield from t(lambda: b.remove(t.k("a"), quiet=True))
    assert q.rc == 0x0D
    yield from t(lambda: b.remove(t.k("a"), cas=-1))


def sc_counter(b, t):
    r = yield from t(lambda: b.counter(t.k("n"), initial=5))
    assert r.value == 5
    r = yield from t(lambda: b.counter(t.k("n"), delta=2))
    assert r.value == 7
    r = yield from t(lambda: b.counter(t.k("n"), delta=-10))
    assert r.value == 0
    e = yield from t(lambda: b.counter(t.k("missing")))
    assert isinstance(e, E.NotFoundError)
    yield from t(lambda: b.upsert(t.k("s"), "abc"))
    yield from t(lambda: b.counter(t.k("s")))
    yield from t(lambda: b.counter(t.k("n"), delta=1.5))
    yield from t(lambda: b.counter(t.k("n"), initial=-1))


def sc_touch(b, t):
    yield from t(lambda: b.upsert(t.k("a"), 1))
    yield from t(lambda: b.touch(t.k("a"), ttl=100))
    e = yield from t(lambda: b.touch(t.k("nope"), ttl=100))
    assert isinstance(e, E.NotFoundError)
    yield from t(lambda: b.touch(t.k("a"), ttl=2 ** 40))


def _unsupported(call):
    def sc(b, t):
        e = yield from t(lambda: call(b, t))
        assert isinstance(e, E.NotSupportedError)
        yield from t(lambda: b.upsert(t.k("a"), 1))   # refused before anything was sent
    return sc


def sc_stats(b, t):
    s = yield from t(lambda: b.stats(), t.stats)
    assert s["pid"] and list(s["pid"]) == b.server_nodes
    s = yield from t(lambda: b.stats(["settings"]), t.stats)
    assert "maxconns" in s
    yield from t(lambda: b.stats("settings"), t.stats)


def sc_flush(b, t):
    yield from t(lambda: b.upsert(t.k("a"), 1))
    r = yield from t(lambda: b.flush())
    assert r.success
    yield from t(lambda: b.get(t.k("a")))


def sc_get_multi(b, t):
    ks = [t.k(x) for x in "abc"]
    yield from t(lambda: b.upsert_multi({ks[0]: 1, ks[1]: "two", ks[2]: [3]}))
    m = yield from t(lambda: b.get_multi(ks))
    assert [m[k].value for k in ks] == [1, "two", [3]] and m.all_ok
    e = yield from t(lambda: b.get_multi(ks + [t.k("nope")]))
    assert isinstance(e, E.NotFoundError) and len(e.all_results) == 4
    m = yield from t(lambda: b.get_multi(ks + [t.k("nope")], quiet=True))
    assert not m.all_ok and m[ks[0]].value == 1
    yield from t(lambda: b.get_multi(ks, ttl=50))
    yield from t(lambda: b.get_multi(ks, no_format=True))
    e = yield from t(lambda: b.get_multi([]))
    assert isinstance(e, E.ArgumentError)   # 2.x refused an empty key list
    yield from t(lambda: b.get_multi(t.k("a")))
    yield from t(lambda: b.get_multi([ks[0], ""]))


def _store_multi(op, expect_fail):
    def sc(b, t):
        ks = [t.k(x) for x in "ab"]
        yield from t(lambda: b.upsert(ks[0], "old"))
        m = yield from t(lambda: getattr(b, op)({ks[0]: "v0", ks[1]: "v1"}))
        assert isinstance(m, expect_fail) if expect_fail else m.all_ok
        yield from t(lambda: getattr(b, op)({ks[1]: b"raw"}, format=FMT_BYTES))
        yield from t(lambda: b.get_multi(ks, quiet=True))
        yield from t(lambda: getattr(b, op)({"": 1}))
        yield from t(lambda: getattr(b, op)({ks[0]: 1}, ttl="soon"))
        # refused by the client for its size after the first key was scheduled
        e = yield from t(lambda: getattr(b, op)({ks[0]: b"first", ks[1]: b"x" * (21 << 20)},
                                                 format=FMT_BYTES))
        assert isinstance(e, E.TooBigError), e
        yield from t(lambda: b.get_multi(ks, quiet=True))
    return sc


def _concat_multi(op):
    def sc(b, t):
        ks = [t.k(x) for x in "ab"]
        yield from t(lambda: b.upsert(ks[0], b"x", format=FMT_BYTES))
        e = yield from t(lambda: getattr(b, op)({ks[0]: b"1", ks[1]: b"2"}))
        assert isinstance(e, E.NotStoredError) and e.all_results[ks[0]].success
        yield from t(lambda: getattr(b, op)({ks[0]: "s"}))
        g = yield from t(lambda: b.get(ks[0]))
        assert g.value == (b"x1s" if op == "append_multi" else b"s1x")
    return sc


def sc_remove_multi(b, t):
    ks = [t.k(x) for x in "abc"]
    m = yield from t(lambda: b.upsert_multi(dict.fromkeys(ks, 1)))
    yield from t(lambda: b.remove_multi({ks[0]: m[ks[0]].cas + 7}))
    yield from t(lambda: b.remove_multi({ks[0]: m[ks[0]]}))
    e = yield from t(lambda: b.remove_multi(ks))
    assert isinstance(e, E.NotFoundError)
    yield from t(lambda: b.remove_multi(ks, quiet=True))


def sc_counter_multi(b, t):
    ks = [t.k(x) for x in "ab"]
    m = yield from t(lambda: b.counter_multi(ks, initial=10))
    assert [m[k].value for k in ks] == [10, 10]
    m = yield from t(lambda: b.counter_multi(ks, delta=5))
    assert [m[k].value for k in ks] == [15, 15]
    yield from t(lambda: b.counter_multi(ks + [t.k("nope")]))
    yield from t(lambda: b.counter_multi(ks, delta="1"))


def sc_touch_multi(b, t):
    ks = [t.k(x) for x in "ab"]
    yield from t(lambda: b.upsert_multi(dict.fromkeys(ks, 1)))
    yield from t(lambda: b.touch_multi(ks, ttl=100))
    yield from t(lambda: b.touch_multi({ks[0]: 10, ks[1]: 20}))
    yield from t(lambda: b.touch_multi(ks + [t.k("nope")]))
    yield from t(lambda: b.touch_multi({ks[0]: -5}))


def _items(op):
    def sc(b, t):
        ks = [t.k(x) for x in "ab"]
        if op != "insert_items":
            yield from t(lambda: b.upsert_multi({ks[0]: "v", ks[1]: "w"}, format=FMT_UTF8))
        items = [Item(k, "new-" + k[-1]) for k in ks]
        if op in ("append_items", "prepend_items"):
            coll = ItemOptionDict()
            for it in items:
                coll.add(it, fragment="!", format=FMT_UTF8)
            items[0].value = "v"
            items[1].value = "w"
        elif op == "get_items":
            coll = ItemSequence(items + [Item(t.k("nope"))])
        elif op == "remove_items":
            coll = ItemSequence(items)
        else:
            coll = ItemOptionDict()
            coll.add(items[0], ttl=100, format=FMT_UTF8)
            coll.add(items[1], ignore_cas=True)
        yield from t(lambda: getattr(b, op)(coll, **({"quiet": True} if op == "get_items"
                                                      else {})))
        t.note(items)
        yield from t(lambda: b.get_multi(ks, quiet=True))
    return sc


def _alias(call):
    def sc(b, t):
        yield from t(lambda: b.upsert_multi({t.k("a"): 5, t.k("b"): 6}))
        yield from t(lambda: call(b, t))
        yield from t(lambda: b.get_multi([t.k("a"), t.k("b"), t.k("c")], quiet=True))
    return sc


SCENARIOS = {
    "get": sc_get, "upsert": sc_upsert, "insert": sc_insert, "replace": sc_replace,
    "append": _concat("append"), "prepend": _concat("prepend"), "remove": sc_remove,
    "counter": sc_counter, "touch": sc_touch, "stats": sc_stats, "flush": sc_flush,
    "lock": _unsupported(lambda b, t: b.lock(t.k("a"), ttl=5)),
    "unlock": _unsupported(lambda b, t: b.unlock(t.k("a"), 1)),
    "endure": _unsupported(lambda b, t: b.endure(t.k("a"))),
    "observe": _unsupported(lambda b, t: b.observe(t.k("a"))),
    "rget": _unsupported(lambda b, t: b.rget(t.k("a"))),
    "lock_multi": _unsupported(lambda b, t: b.lock_multi([t.k("a")], ttl=5)),
    "unlock_multi": _unsupported(lambda b, t: b.unlock_multi({t.k("a"): 1})),
    "endure_multi": _unsupported(lambda b, t: b.endure_multi([t.k("a")])),
    "observe_multi": _unsupported(lambda b, t: b.observe_multi([t.k("a")])),
    "rget_multi": _unsupported(lambda b, t: b.rget_multi([t.k("a")])),
    # sub-documents on a memcached bucket (couchbase://: test_subdoc.py, every front-end)
    "lookup_in": _unsupported(lambda b, t: b.lookup_in(t.k("a"), ("sd", "get", 0))),
    "retrieve_in": _unsupported(lambda b, t: b.retrieve_in(t.k("a"), "p")),
    "mutate_in": _unsupported(lambda b, t: b.mutate_in(t.k("a"), ("sd", "upsert", 0, 1))),
    # memcached:// has no query service (N1QL itself: test_n1ql.py, every front-end)
    "n1ql_query": _unsupported(lambda b, t: b.n1ql_query("SELECT 1")),
    # nor a view service (views themselves: test_views.py, every front-end)
    "query": _unsupported(lambda b, t: b.query("d", "v")),
    "bucket_manager": _unsupported(lambda b, t: b.bucket_manager()),
    "design_create": _unsupported(lambda b, t: b.design_create("d", {"views": {}})),
    "design_get": _unsupported(lambda b, t: b.design_get("d")),
    "design_publish": _unsupported(lambda b, t: b.design_publish("d")),
    "design_delete": _unsupported(lambda b, t: b.design_delete("d")),
    "get_multi": sc_get_multi,
    "upsert_multi": _store_multi("upsert_multi", None),
    "insert_multi": _store_multi("insert_multi", E.KeyExistsError),
    "replace_multi": _store_multi("replace_multi", E.NotFoundError),
    "append_multi": _concat_multi("append_multi"),
    "prepend_multi": _concat_multi("prepend_multi"),
    "remove_multi": sc_remove_multi, "counter_multi": sc_counter_multi,
    "touch_multi": sc_touch_multi,
    "get_items": _items("get_items"), "upsert_items": _items("upsert_items"),
    "insert_items": _items("insert_items"), "replace_items": _items("replace_items"),
    "remove_items": _items("remove_items"), "append_items": _items("append_items"),
    "prepend_items": _items("prepend_items"),
    "incr": _alias(lambda b, t: b.incr(t.k("a"), amount=3)),
    "decr": _alias(lambda b, t: b.decr(t.k("b"), amount=2)),
    "incr_multi": _alias(lambda b, t: b.incr_multi([t.k("a"), t.k("b")], amount=3)),
    "decr_multi": _alias(lambda b, t: b.decr_multi([t.k("a"), t.k("b")])),
    "set": _alias(lambda b, t: b.set(t.k("c"), "x")),
    "add": _alias(lambda b, t: b.add(t.k("a"), "x")),
    "delete": _alias(lambda b, t: b.delete(t.k("a"))),
    "set_multi": _alias(lambda b, t: b.set_multi({t.k("a"): 1, t.k("c"): 2})),
    "add_multi": _alias(lambda b, t: b.add_multi({t.k("a"): 1, t.k("c"): 2})),
    "delete_multi": _alias(lambda b, t: b.delete_multi([t.k("a"), t.k("b")])),
}


# The data-structure API on a memcached bucket (couchbase://: test_datastructures.py)
_DS_CALLS = {
    "map_add": lambda b, k: b.map_add(k, "m", 1, create=True),
    "map_get": lambda b, k: b.map_get(k, "m"),
    "map_remove": lambda b, k: b.map_remove(k, "m"),
    "map_size": lambda b, k: b.map_size(k),
    "list_append": lambda b, k: b.list_append(k, 1),
    "list_prepend": lambda b, k: b.list_prepend(k, 1),
    "list_set": lambda b, k: b.list_set(k, 0, 1),
    "list_get": lambda b, k: b.list_get(k, 0),
    "list_remove": lambda b, k: b.list_remove(k, 0),
    "list_size": lambda b, k: b.list_size(k),
    "set_add": lambda b, k: b.set_add(k, 1),
    "set_remove": lambda b, k: b.set_remove(k, 1),
    "set_contains": lambda b, k: b.set_contains(k, 1),
    "set_size": lambda b, k: b.set_size(k),
    "queue_push": lambda b, k: b.queue_push(k, 1),
    "queue_pop": lambda b, k: b.queue_pop(k),
    "queue_size": lambda b, k: b.queue_size(k),
}
for _name, _call in _DS_CALLS.items():
    SCENARIOS[_name] = _unsupported(lambda b, t, _c=_call: _c(b, t.k("a")))

# The 2.x APIs beyond key-value access: NotSupportedError everywhere.
from couchbase_ffi.bucket import _UNSUPPORTED  # noqa: E402
for _name in _UNSUPPORTED:
    SCENARIOS[_name] = _unsupported(lambda b, t, _n=_name: getattr(b, _n)(t.k("a")))


def public_operations():
    return sorted(n for n in dir(SyncBucket)
                  if not n.startswith("_") and callable(getattr(SyncBucket, n)))


def run_scenario(frontend, scenario, connstr, prefix):
    trace = Trace(prefix, frontend)

    def body():
        b = H.bucket_class(frontend)(connstr)
        try:
            yield from scenario(b, trace)
        finally:
            b.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        H.run(frontend, body)
    return trace.items


def test_every_sync_operation_has_a_scenario():
    ops = set(public_operations())
    assert ops - NOT_OPERATIONS == set(SCENARIOS), "give new Bucket methods a scenario"
    for fe in H.FRONTENDS:
        cls = H.bucket_class(fe)
        assert all(callable(getattr(cls, name, None)) for name in ops), fe


@pytest.mark.parametrize("frontend", H.FRONTENDS)
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_operation_behaves_as_sync(server, frontend, name):
    sync = run_scenario("sync", SCENARIOS[name], server.connstr, "s-%s-%s-" % (frontend, name))
    ours = run_scenario(frontend, SCENARIOS[name], server.connstr,
                        "a-%s-%s-" % (frontend, name))
    assert ours == sync
    assert len(ours) >= 2


# Bad input: refused when the call is made (as 2.x txcouchbase did once connected),
# with the sync Bucket's exception, and nothing is scheduled.
BAD_CALLS = [
    ("get('')", lambda b: b.get(""), E.ArgumentError),
    ("get(long key)", lambda b: b.get("k" * 251), E.ArgumentError),
    ("get(int key)", lambda b: b.get(5), E.ValueFormatError),
    ("get(replica)", lambda b: b.get("k", replica=True), E.NotSupportedError),
    ("upsert(bytes fmt, str)", lambda b: b.upsert("k", "s", format=FMT_BYTES),
     E.ValueFormatError),
    ("upsert(unjsonable)", lambda b: b.upsert("k", object()), E.ValueFormatError),
    ("upsert(ttl -1)", lambda b: b.upsert("k", 1, ttl=-1), E.ArgumentError),
    ("upsert(ttl str)", lambda b: b.upsert("k", 1, ttl="1"), E.ArgumentError),
    ("upsert(persist_to)", lambda b: b.upsert("k", 1, persist_to=1), E.NotSupportedError),
    ("replace(cas -1)", lambda b: b.replace("k", 1, cas=-1), E.ArgumentError),
    ("counter(delta float)", lambda b: b.counter("k", delta=0.5), E.ArgumentError),
    ("counter(initial -1)", lambda b: b.counter("k", initial=-1), E.ArgumentError),
    ("touch(ttl 2**33)", lambda b: b.touch("k", ttl=2 ** 33), E.ArgumentError),
    ("lock", lambda b: b.lock("k", ttl=1), E.NotSupportedError),
    ("get_multi(str)", lambda b: b.get_multi("abc"), E.ArgumentError),
    ("get_multi(bad key last)", lambda b: b.get_multi(["a", "b", ""]), E.ArgumentError),
    ("upsert_multi(bad value)", lambda b: b.upsert_multi({"a": 1, "b": "s"},
                                                         format=FMT_BYTES),
     E.ValueFormatError),
    ("remove_multi(bad cas)", lambda b: b.remove_multi({"a": -3}), E.ArgumentError),
    ("counter_multi(delta)", lambda b: b.counter_multi(["a"], delta=2 ** 64),
     E.ArgumentError),
    ("touch_multi(ttl)", lambda b: b.touch_multi({"a": "x"}), E.ArgumentError),
]


@pytest.mark.parametrize("frontend", H.FRONTENDS)
def test_bad_input_raises_at_the_call_like_sync(memcached, frontend):
    from couchbase_ffi._lowlevel import lib
    sync = SyncBucket(memcached.connstr)
    seen = []

    def body():
        b = H.bucket_class(frontend)(memcached.connstr)
        yield b.connect()
        for name, call, cls in BAD_CALLS:
            with pytest.raises(cls) as sync_err:
                call(sync)
            with pytest.raises(cls) as ours:
                call(b)          # raised here, not through the future
            assert type(ours.value) is type(sync_err.value), name
            assert not b._host.pending and lib.cbffi_pending(b._c) == 0, name
            seen.append(name)
        r = yield b.upsert("bad-input-after", 1)   # the Bucket is still fine
        assert r.success
        b.close()
    H.run(frontend, body)
    sync.close()
    assert len(seen) == len(BAD_CALLS)


@pytest.mark.parametrize("frontend", H.FRONTENDS)
def test_pipeline_and_durability_and_closed(memcached, frontend):
    def body():
        b = H.bucket_class(frontend)(memcached.connstr)
        with pytest.raises(E.PipelineError):
            b.pipeline()
        with pytest.raises(E.NotSupportedError):
            with b.durability(persist_to=1):
                pass
        with b.durability(0, 0):
            r = yield b.upsert("dur-none", 1)
        assert r.success
        b.close()
        assert b.closed
        b.close()   # twice is harmless
        with pytest.raises(E.ObjectDestroyedError):
            b.get("dur-none")
        with pytest.raises(E.ObjectDestroyedError):
            b.connect()
        with pytest.raises(E.ObjectDestroyedError):
            b.get_multi(["a"])
    H.run(frontend, body)
