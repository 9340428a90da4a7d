"""Views and design documents through the couchbase 2.x API (sync Bucket, Twisted,
asyncio) against the mock's view service: registered results, the no-JavaScript
built-in subset computed from the KV data, parameters as the service receives them,
errors (missing design document or view, refused parameters, inline engine errors),
client-side parameter checks, timeouts, include_docs, the design-document lifecycle."""
import json
import time

import pytest

import asynchelp as H
from couchbase_ffi import exceptions as E
from couchbase_ffi.mock import MockCluster, BucketSpec
from couchbase_ffi.views.iterator import View, ViewRow, AlreadyQueriedError
from couchbase_ffi.views.params import Query, STALE_OK, STALE_UPDATE_AFTER, UNSPEC

pytest.importorskip("twisted")

ALL = ("sync",) + H.FRONTENDS
IDS_MAP = "function (doc, meta) { emit(meta.id, null); }"
BY_CITY = "function(doc, meta) { if (doc.city) { emit(doc.city, doc.age); } }"


@pytest.fixture(scope="module")
def cluster():
    c = MockCluster(nodes=2, buckets=[BucketSpec("default", password="secret"),
                                      BucketSpec("other")]).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def sync(cluster):
    b = H.bucket_class("sync")(cluster.connstr("default"), password="secret")
    b.upsert_multi({"p:ann": {"city": "Oslo", "age": 31}, "p:bob": {"city": "Bergen", "age": 40},
                    "p:cid": {"city": "Oslo", "age": 22}, "p:dan": {"age": 50},
                    "p:eve": {"city": "Asker", "age": 28}})
    b.design_create("people", {"views": {"ids": {"map": IDS_MAP},
                                         "by_city": {"map": BY_CITY},
                                         "city_sum": {"map": BY_CITY, "reduce": "_sum"},
                                         "city_count": {"map": BY_CITY, "reduce": "_count"},
                                         "js": {"map": "function(d){ if (d.x > 1) emit(d.x) }"}}},
                    use_devmode=False)
    yield b
    b.close()


@pytest.fixture(autouse=True)
def _clean(cluster, monkeypatch):
    cluster.view_clear()
    made = H.track_buckets(monkeypatch)
    yield
    H.close_leftovers(made)


def opened(frontend, cluster):
    return (yield from H.connected(frontend, cluster.connstr("default"), password="secret"))


def run_view(frontend, b, *args, **kwargs):
    if frontend == "sync":
        v = b.query(*args, **kwargs)
        v._done_rows = list(v)
        return v
    if frontend == "twisted":
        return b.queryAll(*args, **kwargs)
    return b.query(*args, **kwargs).future


def rows_of(frontend, v):
    return v._done_rows if frontend == "sync" else list(v)


outcome = H.outcome


# ---- registered results ------------------------------------------------------------------------

@pytest.mark.parametrize("frontend", ALL)
def test_registered_rows_and_meta(cluster, frontend):
    rows = [{"id": "a", "key": ["x", 1], "value": {"n": 1}}, {"id": "b", "key": ["y"], "value": 2}]
    cluster.view_register("beer", "by_name", rows=rows, total_rows=40)

    def body():
        b = yield from opened(frontend, cluster)
        v = yield run_view(frontend, b, "beer", "by_name", limit=2)
        got = rows_of(frontend, v)
        assert got == [ViewRow(["x", 1], {"n": 1}, "a", None), ViewRow(["y"], 2, "b", None)]
        assert v.indexed_rows == 40 and v.rows_returned == 2 and v.errors == []
        return True
    assert H.run(frontend, body)
    req = cluster.view_requests()[-1]
    assert req["method"] == "GET" and req["path"] == "/default/_design/beer/_view/by_name"
    assert req["params"] == {"limit": "2"} and req["user"] == "default" and req["authorized"]


def test_inline_engine_errors(cluster, sync):
    errors = [{"from": "local", "reason": "boom"}]
    cluster.view_register("d", "v", rows=[{"id": "a", "key": 1, "value": None}], errors=errors)
    v = sync.query("d", "v")
    got = []
    with pytest.raises(E.ViewEngineError):
        for r in v:
            got.append(r)
    assert len(got) == 1 and v.errors == errors
    cluster.view_register("d", "v", rows=[], errors=errors)
    with pytest.warns(UserWarning):
        assert list(sync.query("d", "v", on_error="continue")) == []


@pytest.mark.parametrize("frontend", ALL)
def test_registered_http_failure_is_httperror(cluster, frontend):
    cluster.view_register("d", "bad", http_status=400, error="query_parse_error",
                          reason="Invalid value for integer parameter")

    def body():
        b = yield from opened(frontend, cluster)
        e = yield from outcome(lambda: run_view(frontend, b, "d", "bad"))
        assert isinstance(e, E.HTTPError) and e.rc == 0x3B
        assert e.http_status == 400 and e.objextra["error"] == "query_parse_error"
        return True
    assert H.run(frontend, body)


def test_timeout_uses_views_timeout(cluster, sync):
    cluster.view_register("d", "slow", rows=[], delay=float("inf"))
    b = H.bucket_class("sync")(cluster.connstr("default", views_timeout="0.3"), password="secret")
    assert b.views_timeout == pytest.approx(0.3)
    t0 = time.monotonic()
    with pytest.raises(E.TimeoutError):
        list(b.query("d", "slow"))
    assert 0.25 < time.monotonic() - t0 < 5
    b.views_timeout = 75
    assert b.views_timeout == 75.0 and b._cntl(0x01, value_type="timeout") == 75.0
    b.close()


def test_truncated_response_is_network_error(cluster, sync):
    cluster.view_register("d", "cut", rows=[{"id": "a", "key": 1, "value": "x" * 200}],
                          fault="truncate")
    with pytest.raises(E.NetworkError):
        list(sync.query("d", "cut"))


# ---- the built-in subset, from the KV data ------------------------------------------------------

def keys(v):
    return [(r.key, r.docid, r.value) for r in v]


def test_builtin_meta_id_view(sync):
    got = list(sync.query("people", "ids"))
    ids = [r.docid for r in got]
    assert ids == sorted(ids) and {"p:ann", "p:eve"} <= set(ids)
    assert all(r.key == r.docid and r.value is None for r in got)
    v = sync.query("people", "ids", startkey="p:b", endkey="p:d", inclusive_end=False)
    assert [r.docid for r in v] == ["p:bob", "p:cid"]
    assert v.indexed_rows == len(ids)


def test_builtin_field_view_ordering_and_ranges(sync):
    all_rows = keys(sync.query("people", "by_city"))
    assert all_rows == [("Asker", "p:eve", 28), ("Bergen", "p:bob", 40),
                        ("Oslo", "p:ann", 31), ("Oslo", "p:cid", 22)]   # p:dan has no city
    assert keys(sync.query("people", "by_city", key="Oslo")) == all_rows[2:]
    assert keys(sync.query("people", "by_city", descending=True, limit=2)) == \
        [("Oslo", "p:cid", 22), ("Oslo", "p:ann", 31)]
    assert keys(sync.query("people", "by_city", skip=1, limit=2)) == all_rows[1:3]
    assert keys(sync.query("people", "by_city", mapkey_range=["B", "Oslo"])) == all_rows[1:]
    assert keys(sync.query("people", "by_city", descending=True,
                           mapkey_range=["Oslo", "B"])) == all_rows[:0:-1]
    assert keys(sync.query("people", "by_city", keys=["Oslo", "Asker"])) == \
        [all_rows[2], all_rows[3], all_rows[0]]
    q = Query(mapkey_range=["Oslo", "Oslo"], dockey_range=["p:a", "p:b"])
    assert keys(sync.query("people", "by_city", query=q)) == [all_rows[2]]


def test_builtin_view_sees_kv_changes(sync):
    sync.upsert("p:fay", {"city": "Aurland", "age": 3})
    assert ("Aurland", "p:fay", 3) in keys(sync.query("people", "by_city"))
    sync.remove("p:fay")
    assert "p:fay" not in [r.docid for r in sync.query("people", "by_city")]


def test_builtin_reduces(sync):
    assert keys(sync.query("people", "city_sum")) == [(None, None, 121)]
    assert keys(sync.query("people", "city_count", group=True)) == \
        [("Asker", None, 1), ("Bergen", None, 1), ("Oslo", None, 2)]
    assert keys(sync.query("people", "city_sum", reduce=False, limit=1)) == \
        [("Asker", "p:eve", 28)]
    with pytest.raises(E.HTTPError) as ei:     # group on a map-only view: the server says no
        list(sync.query("people", "by_city", group=True))
    assert ei.value.objextra["error"] == "query_parse_error"


def test_javascript_outside_the_subset_is_an_honest_error(sync):
    with pytest.raises(E.HTTPError) as ei:
        list(sync.query("people", "js"))
    assert ei.value.http_status == 500 and "JavaScript" in ei.value.objextra["reason"]


def test_include_docs(sync):
    got = list(sync.query("people", "by_city", include_docs=True, key="Oslo", streaming=1))
    assert [r.doc.value for r in got] == [{"city": "Oslo", "age": 31}, {"city": "Oslo", "age": 22}]
    assert got[0].doc.key == "p:ann" and got[0].doc.cas
    with pytest.raises(E.ArgumentError):
        sync.query("people", "city_sum", include_docs=True, reduce=True)


def test_missing_design_document_and_view(sync):
    with pytest.raises(E.HTTPError) as ei:
        list(sync.query("no_such_ddoc", "v"))
    assert ei.value.http_status == 404 and ei.value.objextra["error"] == "not_found"
    with pytest.raises(E.HTTPError) as ei:
        list(sync.query("people", "no_such_view"))
    assert ei.value.objextra["reason"] == "missing_named_view"


# ---- parameters -------------------------------------------------------------------------------

def test_params_reach_the_server_encoded(cluster, sync):
    cluster.view_register("d", "v", rows=[])
    list(sync.query("d", "v", stale=STALE_OK, startkey=["a", 1], endkey={"z": None},
                    descending=True, group_level=2, reduce=True, inclusive_end=False,
                    startkey_docid="x y", connection_timeout=60000, full_set=1))
    p = cluster.view_requests()[-1]["params"]
    assert p == {"stale": "ok", "startkey": '["a", 1]', "endkey": '{"z": null}',
                 "descending": "true", "group_level": "2", "reduce": "true",
                 "inclusive_end": "false", "startkey_docid": "x y",
                 "connection_timeout": "60000", "full_set": "true"}
    cluster.view_register("dev_d", "v", rows=[])
    list(sync.query("d", "v", stale=False))
    list(sync.query("d", "v", stale=True))
    list(sync.query("d", "v", stale=STALE_UPDATE_AFTER, use_devmode=True))
    reqs = cluster.view_requests()
    assert [r["params"]["stale"] for r in reqs[-3:]] == ["false", "ok", "update_after"]
    assert reqs[-1]["ddoc"] == "dev_d"


def test_long_keys_go_in_a_post_body(cluster, sync):
    cluster.view_register("d", "v", rows=[])
    many = ["key-%04d" % i for i in range(400)]
    list(sync.query("d", "v", keys=many, limit=5))
    r = cluster.view_requests()[-1]
    assert r["method"] == "POST" and r["body"] == {"keys": many}
    assert r["params"] == {"limit": "5"} and r["content_type"] == "application/json"
    list(sync.query("d", "v", keys=["a"]))
    r = cluster.view_requests()[-1]
    assert r["method"] == "GET" and r["params"]["keys"] == '["a"]'
    # and the built-in subset honours POSTed keys too
    got = list(sync.query("people", "ids", keys=["p:eve"] + many))
    assert [x.docid for x in got] == ["p:eve"]


@pytest.mark.parametrize("kw", [dict(limit="ten"), dict(limit=True), dict(skip=[1]),
                                dict(descending="yes"), dict(stale="later"),
                                dict(on_error="ignore"), dict(keys="a"), dict(key=object()),
                                dict(no_such_param=1), dict(group_level=None),
                                dict(mapkey_range="a"), dict(mapkey_range=[1, 2, 3])])
def test_bad_params_are_argument_errors_before_sending(cluster, sync, kw):
    before = len(cluster.view_requests())
    with pytest.raises(E.ArgumentError):
        sync.query("d", "v", **kw)
    assert len(cluster.view_requests()) == before


def test_query_object():
    q = Query(limit=10, stale=False)
    assert q.limit == 10 and q.stale is False and q.encoded == "limit=10&stale=false"
    with pytest.raises(E.ArgumentError):
        Query(startkey="a").update(mapkey_range=["a", "b"])
    q2 = q.update(copy=True, skip=3)
    assert q.skip is UNSPEC and q2.skip == 3
    q.limit = UNSPEC
    assert q.encoded == "stale=false"
    assert Query(passthrough=True, startkey="raw").encoded == "startkey=raw"
    assert "foo=bar" in Query(unrecognized_ok=True, foo="bar").encoded
    assert Query.from_any("a=b").encoded.startswith("a=b")
    with pytest.raises(E.ArgumentError):
        Query.from_any(3)
    with pytest.raises(E.ArgumentError):
        View(None, "d", "v", query=Query(), limit=1)


def test_view_runs_once(cluster, sync):
    cluster.view_register("d", "v", rows=[])
    v = sync.query("d", "v")
    list(v)
    with pytest.raises(AlreadyQueriedError):
        list(v)


def test_access_other_bucket_refused(cluster):
    b = H.bucket_class("sync")(cluster.connstr("other"), password="")
    b.design_create("mine", {"views": {"ids": {"map": IDS_MAP}}})
    assert "dev_mine" in cluster.design_docs("other")
    assert "dev_mine" not in cluster.design_docs("default")
    b.close()


# ---- design documents ---------------------------------------------------------------------------

def test_design_document_lifecycle(cluster, sync):
    ddoc = {"views": {"ids": {"map": IDS_MAP}}}
    res = sync.design_create("life", ddoc, syncwait=5)
    assert res.success and res.http_status == 201
    assert sync.design_get("life").value == ddoc
    assert sync.design_get("dev_life", use_devmode=False).value == ddoc
    with pytest.raises(E.HTTPError):
        sync.design_get("life", use_devmode=False)      # not published yet
    assert [r.docid for r in sync.query("life", "ids", use_devmode=True, limit=1)]
    sync.design_publish("life", syncwait=5)
    assert sync.design_get("life", use_devmode=False).value == ddoc
    with pytest.raises(E.HTTPError) as ei:
        sync.design_get("life")
    assert ei.value.http_status == 404
    assert list(sync.query("life", "ids", limit=1))
    sync.design_delete("life", use_devmode=False, syncwait=5)
    with pytest.raises(E.HTTPError):
        sync.design_delete("life", use_devmode=False)
    methods = [r["method"] for r in cluster.view_requests() if r.get("ddoc") == "life"
               and r.get("view") is None]
    assert "PUT" in methods and "DELETE" in methods


def test_design_create_takes_json_and_refuses_junk(sync):
    sync.design_create("j", json.dumps({"views": {}}))
    assert sync.design_get("j").value == {"views": {}}
    with pytest.raises(E.ValueFormatError):
        sync.design_create("j", "{not json")
    with pytest.raises(E.ArgumentError):
        sync.design_create("j", 42)
    with pytest.raises(E.HTTPError) as ei:     # the service checks the views' shape
        sync.design_create("j", {"views": {"v": {"reduce": "_count"}}})
    assert ei.value.http_status == 400
    sync.design_delete("j")


def test_memcached_bucket_has_no_views(memcached):
    b = H.bucket_class("sync")(memcached.connstr)
    with pytest.raises(E.NotSupportedError):
        b.query("d", "v")
    with pytest.raises(E.NotSupportedError):
        b.design_get("d")
    b.close()


def test_aliases_are_installed():
    import sys
    import couchbase_ffi
    couchbase_ffi.install_as_couchbase()
    from couchbase.views.iterator import View as V2
    from couchbase.views.params import Query as Q2, STALE_OK as S
    assert V2 is View and Q2 is Query and S == "ok"
    assert sys.modules["couchbase.views"].iterator is sys.modules["couchbase.views.iterator"]


def test_twisted_queryex_events(cluster):
    from couchbase_ffi.twisted import AsyncViewBase
    cluster.view_register("d", "ev", rows=[{"id": "a", "key": 1, "value": 2}], total_rows=9)
    seen = []

    class Collect(AsyncViewBase):
        def on_rows(self, rows):
            seen.extend(rows)

        def on_done(self):
            seen.append("done")
            AsyncViewBase.on_done(self)

    def body():
        b = yield from opened("twisted", cluster)
        v = b.queryEx(Collect, "d", "ev")
        yield v._fut
        assert v.indexed_rows == 9
        return True
    assert H.run("twisted", body)
    assert seen == [ViewRow(1, 2, "a", None), "done"]


def test_asyncio_async_for(cluster):
    cluster.view_register("d", "aio", rows=[{"id": "a", "key": 1, "value": 2}])

    def body():
        b = yield from opened("asyncio", cluster)
        v = b.query("d", "aio")
        yield v.future
        assert list(v) == [ViewRow(1, 2, "a", None)]
        with pytest.raises(E.NotSupportedError):
            b.query("d", "aio", include_docs=True)
        return True
    assert H.run("asyncio", body)
