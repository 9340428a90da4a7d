"""N1QL and view rows streamed as they arrive (cbffi_query_stream / cbffi_view_stream),
against the mock's chunked answers (row_delay, repeat, cut: docs/mock.md "Streamed
answers"): the first row before the response ends; a result far over http_max_response in
bounded memory (the server is held back while the iterator does not read); a row over the
bound; failures mid-stream raised after the rows before them; a silent server; leaving the
loop early (the request is cancelled, the Bucket goes on); KV operations between rows;
include_docs paging; the asynchronous front-ends."""
import gc
import platform
import threading
import time

import pytest

import asynchelp as H
from couchbase_ffi import exceptions as E
from couchbase_ffi.bucket import LOCKMODE_WAIT
from couchbase_ffi.mock import MockCluster, BucketSpec
from couchbase_ffi.n1ql import N1QLQuery, N1QLError

pytest.importorskip("twisted")

CPYTHON = platform.python_implementation() == "CPython"
PAD = "p" * 1000
ROWS_1K = [{"pad": PAD}]            # one row of about 1 KB, sent `repeat` times


@pytest.fixture(scope="module")
def cluster():
    c = MockCluster(nodes=2, query_nodes=[0],
                    buckets=[BucketSpec("default", password="secret")]).start()
    yield c
    c.stop()


@pytest.fixture(autouse=True)
def _clean(cluster, monkeypatch):
    cluster.query_clear()
    cluster.view_clear()
    made = H.track_buckets(monkeypatch)
    yield
    H.close_leftovers(made)


def bucket(cluster, **options):
    return H.bucket_class("sync")(cluster.connstr("default", **options), password="secret")


def register(cluster, kind, rows, **kw):
    """A streamed answer for N1QL statement "s" or view d/v."""
    if kind == "n1ql":
        cluster.query_register("s", rows=rows, **kw)
    else:
        cluster.view_register("d", "v", rows=rows, **kw)


def run(b, kind, **kw):
    return b.n1ql_query(N1QLQuery("s"), **kw) if kind == "n1ql" else b.query("d", "v", **kw)


def last_request(cluster, kind):
    reqs = cluster.query_requests() if kind == "n1ql" else cluster.view_requests()
    return reqs[-1]


def view_row(i):
    return {"id": "k%d" % i, "key": i, "value": None}


def rows_of(kind, n):
    return [{"i": i} for i in range(n)] if kind == "n1ql" else [view_row(i) for i in range(n)]


def wait_for(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


@pytest.mark.parametrize("kind", ["n1ql", "view"])
def test_first_row_before_the_response_ends(cluster, kind):
    register(cluster, kind, rows_of(kind, 4), row_delay=0.3)
    b = bucket(cluster)
    t0 = time.monotonic()
    seen, when, log = [], [], None
    for row in run(b, kind):
        seen.append(row)
        when.append(time.monotonic() - t0)
        if len(seen) == 1:
            log = last_request(cluster, kind)     # what the service had sent by then
    assert len(seen) == 4
    assert log["rows_sent"] < 4 and not log["complete"]
    assert when[-1] - when[0] >= 0.6     # the service spaced them 0.3 s apart
    if kind == "n1ql":
        assert seen[0] == {"i": 0}
    else:
        assert seen[0].key == 0 and seen[0].docid == "k0"


@pytest.mark.parametrize("kind", ["n1ql", "view"])
def test_a_result_far_over_http_max_response_streams(cluster, kind):
    """40 MB of rows in a Bucket whose http_max_response is 64 KiB: read whole it would
    be TooBigError; streamed it comes through, and while the iterator does not read, the
    service is held back (the client holds at most about 4 MiB)."""
    rows = ROWS_1K if kind == "n1ql" else [{"id": "x", "key": PAD, "value": None}]
    register(cluster, kind, rows, repeat=40000)
    b = bucket(cluster, http_max_response=65536)
    if kind == "n1ql":
        from couchbase_ffi._lowlevel import lib
        c = b._enter()
        try:
            body = b'{"statement":"s"}'
            assert lib.cbffi_query(c, body, len(body), 0, 0) == 0
            assert lib.cbffi_wait(c, b._res, 1) == 1
            assert b._res[0].rc == lib.CBFFI_E2BIG    # read whole, it does not fit
        finally:
            b._leave()
    n = 0
    held_back = None
    for row in run(b, kind):
        n += 1
        if n == 1:
            time.sleep(0.5)                          # a slow reader
            held_back = last_request(cluster, kind)
    assert n == 40000
    assert not held_back["complete"] and held_back["rows_sent"] < 25000
    assert last_request(cluster, kind)["complete"]


@pytest.mark.parametrize("kind", ["n1ql", "view"])
def test_a_row_over_the_bound_is_too_big_after_the_rows_before(cluster, kind):
    rows = rows_of(kind, 3)
    rows[1] = {"pad": "x" * 3000} if kind == "n1ql" else dict(view_row(1), value="x" * 3000)
    register(cluster, kind, rows, chunked=True)
    b = bucket(cluster, http_max_response=2048)
    seen = []
    with pytest.raises(E.TooBigError) as ei:
        for row in run(b, kind):
            seen.append(row)
    assert len(seen) == 1
    assert "http_max_response" in str(ei.value)


@pytest.mark.parametrize("kind", ["n1ql", "view"])
@pytest.mark.parametrize("cut, exc", [("garbage", E.ProtocolError), ("close", E.NetworkError)])
def test_a_broken_body_mid_rows_raises_after_them(cluster, kind, cut, exc):
    register(cluster, kind, rows_of(kind, 5), cut_after=3, cut=cut)
    b = bucket(cluster)
    seen = []
    t0 = time.monotonic()
    with pytest.raises(exc):
        for row in run(b, kind):
            seen.append(row)
    assert len(seen) == 3
    assert time.monotonic() - t0 < 5                 # no waiting for the 75 s timeout
    # the Bucket goes on
    b.upsert("after", 1)
    assert b.get("after").value == 1


@pytest.mark.parametrize("kind", ["n1ql", "view"])
def test_a_server_silent_mid_stream_times_out(cluster, kind):
    register(cluster, kind, rows_of(kind, 5), cut_after=2, cut="stall")
    b = bucket(cluster)
    seen = []
    t0 = time.monotonic()
    with pytest.raises(E.TimeoutError):
        if kind == "n1ql":
            q = N1QLQuery("s")
            q.timeout = 1.0
            for row in b.n1ql_query(q):
                seen.append(row)
        else:
            b.views_timeout = 1.0
            for row in b.query("d", "v"):
                seen.append(row)
    dt = time.monotonic() - t0
    assert len(seen) == 2
    assert 0.9 <= dt < 3.0


def test_n1ql_errors_after_rows_are_raised_after_them(cluster):
    cluster.query_register("s", rows=[{"i": 0}, {"i": 1}, {"i": 2}], row_delay=0.1,
                           errors=[{"code": 5000, "msg": "late trouble"}], http_status=200)
    b = bucket(cluster)
    req = b.n1ql_query("s")
    seen = []
    with pytest.raises(N1QLError) as ei:
        for row in req:
            seen.append(row)
    assert seen == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert ei.value.n1ql_errcode == 5000 and ei.value.rc == 0
    assert req.errors[0]["msg"] == "late trouble"
    assert req.meta["status"] == "errors" and req.metrics["resultCount"] == 3


def test_view_errors_and_total_rows_come_after_the_rows(cluster):
    cluster.view_register("d", "v", rows=rows_of("view", 3), row_delay=0.1, total_rows=99,
                          errors=[{"from": "n2", "reason": "down"}])
    b = bucket(cluster)
    v = b.query("d", "v")
    seen = []
    with pytest.raises(E.ViewEngineError):
        for row in v:
            seen.append(row.key)
    assert seen == [0, 1, 2]
    assert v.indexed_rows == 99 and v.errors == [{"from": "n2", "reason": "down"}]


@pytest.mark.parametrize("kind", ["n1ql", "view"])
def test_leaving_the_loop_cancels_the_request_and_the_bucket_goes_on(cluster, kind):
    rows = ROWS_1K if kind == "n1ql" else [{"id": "x", "key": PAD, "value": None}]
    register(cluster, kind, rows, repeat=40000)
    b = bucket(cluster)
    b.upsert_multi({"m:1": 1, "m:2": 2})
    for i, row in enumerate(run(b, kind)):
        if i == 2:
            break
    if not CPYTHON:
        gc.collect()        # PyPy finalizes the abandoned generator when it collects
    # the request is cancelled: the service sees the connection close
    assert wait_for(lambda: last_request(cluster, kind).get("aborted"))
    assert not last_request(cluster, kind)["complete"]
    # nothing of it reaches later operations
    b.upsert("k", "v")
    assert b.get("k").value == "v"
    assert {k: r.value for k, r in b.get_multi(["m:1", "m:2"]).items()} == {"m:1": 1, "m:2": 2}
    cluster.query_register("small", rows=[1, 2, 3])
    assert list(b.n1ql_query("small")) == [1, 2, 3]
    cluster.view_register("d", "small", rows=rows_of("view", 2))
    assert [r.key for r in b.query("d", "small")] == [0, 1]


def test_get_single_result_reads_one_row_and_cancels(cluster):
    cluster.query_register("s", rows=ROWS_1K, repeat=40000)
    b = bucket(cluster)
    assert b.n1ql_query("s").get_single_result() == {"pad": PAD}
    assert wait_for(lambda: last_request(cluster, "n1ql").get("aborted"))   # no GC needed
    assert b.get("nothing", quiet=True).success is False


def test_an_iterator_dropped_mid_way_is_cancelled_when_collected(cluster):
    cluster.query_register("s", rows=ROWS_1K, repeat=40000)
    b = bucket(cluster)
    it = iter(b.n1ql_query("s"))
    assert next(it) == {"pad": PAD}
    del it
    gc.collect()
    gc.collect()
    assert wait_for(lambda: last_request(cluster, "n1ql").get("aborted"))
    b.upsert("k", 1)
    assert b.get("k").value == 1


def test_a_collection_while_the_bucket_is_busy_defers_the_close(cluster):
    """A finalizer can run while the Bucket is held (another thread, or this one inside
    an operation): the stream is closed later, without blocking or raising."""
    cluster.query_register("s", rows=ROWS_1K, repeat=40000)
    b = H.bucket_class("sync")(cluster.connstr("default"), password="secret",
                               lockmode=LOCKMODE_WAIT)
    it = iter(b.n1ql_query("s"))
    next(it)
    b._lock.acquire()           # as if another thread were inside the Bucket
    try:
        done = []
        t = threading.Thread(target=lambda: (it.close(), done.append(True)))
        t.start()
        t.join(5)
        assert done                              # did not wait for the lock
        time.sleep(0.3)
        assert not last_request(cluster, "n1ql").get("aborted")   # not closed yet
    finally:
        b._lock.release()
    cluster.query_register("small", rows=[7])
    assert list(b.n1ql_query("small")) == [7]   # the next stream closes the deferred one
    assert wait_for(lambda: cluster.query_requests()[-2].get("aborted"))


def test_kv_operations_between_rows(cluster):
    cluster.query_register("s", rows=[{"k": "r%d" % i} for i in range(5)], row_delay=0.05)
    b = bucket(cluster)
    got = []
    for row in b.n1ql_query("s"):
        b.upsert(row["k"], {"from": row["k"]})
        got.append(b.get(row["k"]).value["from"])
        assert b.get_multi([row["k"]])[row["k"]].value == {"from": row["k"]}
    assert got == ["r0", "r1", "r2", "r3", "r4"]
    assert b.counter("ctr", initial=5).value == 5


def test_include_docs_pages_while_rows_arrive(cluster):
    b = bucket(cluster)
    b.upsert_multi(dict(("k%d" % i, {"n": i}) for i in range(5)))
    cluster.view_register("d", "v", rows=rows_of("view", 6), row_delay=0.2)   # k5: no doc
    v = b.query("d", "v", include_docs=True, streaming=2)
    seen, log = [], None
    for row in v:
        seen.append(row)
        if len(seen) == 1:
            log = last_request(cluster, "view")
    assert log["rows_sent"] < 6 and not log["complete"]     # the first page, early
    assert [r.doc.value["n"] for r in seen[:5]] == [0, 1, 2, 3, 4]
    assert seen[5].docid == "k5" and seen[5].doc is None
    assert v.rows_returned == 6 and v.indexed_rows == 6


@pytest.mark.parametrize("frontend", H.FRONTENDS)
def test_async_front_ends_collect_streamed_rows(cluster, frontend):
    cluster.query_register("s", rows=[{"i": i} for i in range(3)], row_delay=0.05)
    cluster.query_register("broken", rows=[1, 2, 3], cut_after=2, cut="garbage")
    cluster.query_register("big", rows=ROWS_1K, repeat=20000)
    cluster.view_register("d", "v", rows=rows_of("view", 3), row_delay=0.05)

    def body():
        b = H.bucket_class(frontend)(cluster.connstr("default", http_max_response=65536),
                                     password="secret")
        yield b.connect()
        if frontend == "twisted":
            q, big, v = b.n1qlQueryAll("s"), b.n1qlQueryAll("big"), b.queryAll("d", "v")
        else:
            q, big, v = (b.n1ql_query("s").future, b.n1ql_query("big").future,
                         b.query("d", "v").future)
        req = yield q
        assert [r["i"] for r in req] == [0, 1, 2]
        assert req.meta["metrics"]["resultCount"] == 3
        req = yield big
        assert sum(1 for _ in req) == 20000
        view = yield v
        assert [r.key for r in view] == [0, 1, 2]
        try:
            yield (b.n1qlQueryAll("broken") if frontend == "twisted"
                   else b.n1ql_query("broken").future)
        except E.ProtocolError:
            pass
        else:
            raise AssertionError("a broken stream must fail")
        b.close()
        return True
    assert H.run(frontend, body)


def test_get_single_result_of_a_small_result_keeps_the_metadata(cluster):
    cluster.query_register("s", rows=[{"n": 3}, {"n": 4}])
    b = bucket(cluster)
    req = b.n1ql_query("s")
    assert req.get_single_result() == {"n": 3}
    assert req.metrics["resultCount"] == 2 and req.meta["status"] == "success"
