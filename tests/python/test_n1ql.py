"""N1QL through the couchbase 2.x API, on the sync Bucket, Twisted and asyncio, against
the mock's query service: rows, parameters reaching the service, consistency, N1QL errors,
access refused, timeouts, no query node, large responses, broken responses."""
import json
import time

import pytest

import asynchelp as H
from couchbase_ffi import exceptions as E
from couchbase_ffi.mock import MockCluster, BucketSpec
from couchbase_ffi import n1ql as N
from couchbase_ffi.n1ql import N1QLQuery, N1QLError, CONSISTENCY_REQUEST

pytest.importorskip("twisted")

ALL = ("sync",) + H.FRONTENDS


@pytest.fixture(scope="module")
def cluster():
    c = MockCluster(nodes=3, query_nodes=[0, 2],
                    buckets=[BucketSpec("default", password="secret"), BucketSpec("other")],
                    users={"Administrator": "password", "limited": ("pw", ["default"])}).start()
    yield c
    c.stop()


@pytest.fixture(autouse=True)
def _clean(cluster, monkeypatch):
    cluster.query_clear()
    made = H.track_buckets(monkeypatch)
    yield
    H.close_leftovers(made)


def opened(frontend, cluster, connstr=None, **kw):
    kw.setdefault("password", "secret")
    return (yield from H.connected(frontend, connstr or cluster.connstr("default"), **kw))


def run_query(frontend, b, q, *args, **kwargs):
    """What to yield for a finished request: the request (its rows iterable)."""
    if frontend == "sync":
        req = b.n1ql_query(q, *args, **kwargs)
        req.buffered_remainder = list(req)     # runs it; raises as 2.x does
        return req
    if frontend == "twisted":
        return b.n1qlQueryAll(q, *args, **kwargs)
    return b.n1ql_query(q, *args, **kwargs).future


outcome = H.outcome


@pytest.mark.parametrize("frontend", ALL)
def test_rows_and_meta(cluster, frontend):
    cluster.query_register("SELECT name FROM default", rows=[{"name": "a"}, {"name": "b"}])

    def body():
        b = yield from opened(frontend, cluster)
        req = yield run_query(frontend, b, "SELECT name FROM default")
        assert [r["name"] for r in req] == ["a", "b"]
        assert req.meta["status"] == "success"
        assert req.metrics["resultCount"] == 2
        assert req.errors == []
        return True
    assert H.run(frontend, body)


@pytest.mark.parametrize("frontend", ALL)
def test_parameters_and_options_reach_the_service(cluster, frontend):
    stmt = "SELECT * FROM default WHERE a = $1 AND b = $2 AND c = $who"
    cluster.query_register(stmt, rows=[])

    def body():
        b = yield from opened(frontend, cluster)
        q = N1QLQuery(stmt, 1, [2, "x"], who={"n": 3})
        q.consistency = CONSISTENCY_REQUEST
        q.readonly = True
        q.set_option("client_context_id", "ctx-" + frontend)
        yield run_query(frontend, b, q)
        yield run_query(frontend, b, "SELECT * FROM default WHERE a = $1 AND b = $2 AND c = "
                        "$who")    # unparameterized: no args sent
        return True
    assert H.run(frontend, body)
    first, second = cluster.query_requests()
    assert first["statement"] == stmt
    assert first["args"] == [1, [2, "x"]]
    assert first["named"] == {"$who": {"n": 3}}
    assert first["scan_consistency"] == "request_plus"
    assert first["readonly"] is True
    assert first["client_context_id"] == "ctx-" + frontend
    assert first["timeout"] == "75000000us"        # the client's n1ql_timeout, as LCB sends it
    assert first["user"] == "default" and first["authorized"]
    assert first["content_type"] == "application/json"
    assert second["args"] is None and second["named"] == {}
    assert {first["node"], second["node"]} == {0, 2}     # query nodes in turn; node 1 has none


def test_builtin_statements_read_the_kv_data(cluster):
    b = H.bucket_class("sync")(cluster.connstr("default"), password="secret")
    b.upsert_multi({"n1:a": {"v": 1}, "n1:b": {"v": 2}})
    ids = list(b.n1ql_query("SELECT RAW META().id FROM `default`"))
    assert "n1:a" in ids and "n1:b" in ids and ids == sorted(ids)
    rows = list(b.n1ql_query(N1QLQuery("SELECT * FROM default USE KEYS $1", ["n1:b", "n1:zz"])))
    assert rows == [{"default": {"v": 2}}]
    assert b.n1ql_query("SELECT RAW COUNT(*) FROM default").get_single_result() == len(ids)
    b.remove("n1:a")
    assert "n1:a" not in list(b.n1ql_query("SELECT RAW META().id FROM default"))


@pytest.mark.parametrize("frontend", ALL)
def test_syntax_error_is_a_n1ql_error_with_code_and_message(cluster, frontend):
    def body():
        b = yield from opened(frontend, cluster)
        e = yield from outcome(lambda: run_query(frontend, b, "SELEKT 1"))
        assert isinstance(e, N1QLError)
        assert isinstance(e, E.HTTPError)       # a non-2xx status: 2.x's HTTPError, rc 0x3B
        assert e.rc == 0x3B and "0x3B" in str(e)
        assert e.n1ql_errcode == 3000
        assert "syntax error" in str(e) and "syntax error" in e.objextra["msg"]
        return True
    assert H.run(frontend, body)


def test_n1ql_error_with_http_200_comes_after_the_rows(cluster):
    cluster.query_register("partial", rows=[1, 2], errors=[{"code": 5000, "msg": "boom"}],
                           http_status=200)
    b = H.bucket_class("sync")(cluster.connstr("default"), password="secret")
    req = b.n1ql_query("partial")
    got = []
    with pytest.raises(N1QLError) as info:
        for row in req:
            got.append(row)
    assert got == [1, 2]
    assert info.value.n1ql_errcode == 5000 and info.value.rc == 0
    assert not isinstance(info.value, E.HTTPError)
    assert req.errors == [{"code": 5000, "msg": "boom"}]


def test_server_side_timeout_is_a_timeout_error(cluster):
    cluster.query_register("too long", errors=[{"code": 1080, "msg": "Timeout 1s exceeded"}],
                           http_status=500, status="timeout")
    b = H.bucket_class("sync")(cluster.connstr("default"), password="secret")
    with pytest.raises(E.TimeoutError) as info:
        b.n1ql_query("too long").execute()
    assert isinstance(info.value, N1QLError) and info.value.n1ql_errcode == 1080


@pytest.mark.parametrize("frontend", ALL)
def test_no_access_is_an_auth_error(cluster, frontend):
    def body():
        b = yield from opened(frontend, cluster, username="limited", password="pw")
        e = yield from outcome(lambda: run_query(frontend, b, "SELECT RAW META().id FROM other"))
        assert isinstance(e, E.AuthError) and isinstance(e, N1QLError)
        assert e.n1ql_errcode == 13014
        return True
    assert H.run(frontend, body)
    assert cluster.query_requests()[-1]["user"] == "limited"


@pytest.mark.parametrize("frontend", ALL)
def test_a_delayed_response_times_out(cluster, frontend):
    cluster.query_register("slow", rows=[1], delay=5)

    def body():
        b = yield from opened(frontend, cluster, connstr=cluster.connstr("default",
                                                                          n1ql_timeout="0.3"))
        assert b.n1ql_timeout == pytest.approx(0.3)
        t0 = time.monotonic()
        e = yield from outcome(lambda: run_query(frontend, b, "slow"))
        assert isinstance(e, E.TimeoutError), e
        assert 0.25 < time.monotonic() - t0 < 2.5
        # a shorter per-query timeout wins
        q = N1QLQuery("slow")
        q.timeout = 0.1
        t0 = time.monotonic()
        e = yield from outcome(lambda: run_query(frontend, b, q))
        assert isinstance(e, E.TimeoutError), e
        assert time.monotonic() - t0 < 0.3 + 0.5
        return True
    assert H.run(frontend, body)
    assert cluster.query_requests()[0]["timeout"] == "300000us"
    assert cluster.query_requests()[1]["timeout"] == "0.1s"


def test_n1ql_timeout_property_and_cntl(cluster):
    b = H.bucket_class("sync")(cluster.connstr("default"), password="secret")
    assert b.n1ql_timeout == 75.0
    b.n1ql_timeout = 2.5
    assert b._cntl(0x3D, value_type="timeout") == 2.5
    b._cntlstr("n1ql_timeout", "1.5")
    assert b.n1ql_timeout == 1.5
    b2 = H.bucket_class("sync")(cluster.connstr("default", query_timeout="4s"), password="secret")
    assert b2.n1ql_timeout == 4.0


@pytest.mark.parametrize("frontend", ALL)
def test_no_query_node(frontend):
    with MockCluster(nodes=2, query_nodes=[], buckets=[BucketSpec("default")]) as c:
        def body():
            b = yield from opened(frontend, c, password="")
            e = yield from outcome(lambda: run_query(frontend, b, "SELECT 1"))
            assert isinstance(e, E.NotSupportedError), e
            assert "query service" in str(e)
            return True
        assert H.run(frontend, body)


def test_large_results_and_the_response_bound(cluster):
    """Rows are streamed: http_max_response bounds each row (and the metadata), not the
    whole result.  A result ten times the bound comes through; one row over it is
    TooBigError, after the rows before it."""
    rows = [{"i": i, "pad": "x" * 20} for i in range(20000)]     # about 700 KB
    cluster.query_register("big", rows=rows)
    cluster.query_register("one big row", rows=[{"i": 0}, {"pad": "x" * 70000}, {"i": 2}])
    b = H.bucket_class("sync")(cluster.connstr("default"), password="secret")
    got = list(b.n1ql_query("big"))
    assert len(got) == 20000 and got[-1] == rows[-1]
    small = H.bucket_class("sync")(cluster.connstr("default", http_max_response=65536),
                                   password="secret")
    got = list(small.n1ql_query("big"))
    assert len(got) == 20000 and got[-1] == rows[-1]
    seen = []
    with pytest.raises(E.TooBigError):
        for row in small.n1ql_query("one big row"):
            seen.append(row)
    assert seen == [{"i": 0}]
    assert list(small.n1ql_query("SELECT RAW COUNT(*) FROM default"))   # still usable


def test_broken_responses(cluster):
    cluster.query_register("close", fault="close")
    cluster.query_register("garbage", fault="garbage")
    cluster.query_register("truncate", fault="truncate", rows=list(range(100)))
    cluster.query_register("not json", rows=[], http_status=200)
    b = H.bucket_class("sync")(cluster.connstr("default"), password="secret")
    t0 = time.monotonic()
    with pytest.raises(E.NetworkError):
        b.n1ql_query("close").execute()
    with pytest.raises(E.ProtocolError):
        b.n1ql_query("garbage").execute()
    with pytest.raises(E.NetworkError):
        b.n1ql_query("truncate").execute()
    assert time.monotonic() - t0 < 5     # none waits for the 75 s timeout


def test_request_object(cluster):
    cluster.query_register("one", rows=[{"a": 1}, {"a": 2}])
    cluster.query_register("none", rows=[])
    b = H.bucket_class("sync")(cluster.connstr("default"), password="secret")
    assert b.n1ql_query("one").get_single_result() == {"a": 1}
    assert b.n1ql_query("none").get_single_result() is None
    req = b.n1ql_query("one", row_factory=lambda r: r["a"], meta_lookahead=True)
    assert req.meta["metrics"]["resultCount"] == 2       # meta runs it first (lookahead)
    assert list(req) == [1, 2]                           # the rows it buffered
    with pytest.raises(N.AlreadyQueriedError):
        list(req)
    lazy = b.n1ql_query("one", meta_lookahead=False)
    with pytest.raises(RuntimeError):
        lazy.meta
    assert lazy.execute() is lazy and lazy.meta["status"] == "success"
    assert len(cluster.query_requests()) == 4
    with pytest.raises(E.ArgumentError):
        b.n1ql_query(42)
    with pytest.raises(E.ValueFormatError):
        b.n1ql_query(N1QLQuery("SELECT $1", object())).execute()


def test_memcached_bucket_has_no_n1ql():
    with MockCluster(nodes=1, buckets=[BucketSpec("cache", "memcached")]) as c:
        b = H.bucket_class("sync")("memcached://127.0.0.1:%d" % c.kv_ports[0])
        with pytest.raises(E.NotSupportedError):
            b.n1ql_query("SELECT 1")


def test_cluster_n1ql_query(cluster):
    from couchbase_ffi.cluster import Cluster, ClassicAuthenticator, NoBucketError
    cl = Cluster("couchbase://" + ",".join("127.0.0.1:%d" % p for p in cluster.kv_ports))
    cl.authenticate(ClassicAuthenticator(buckets={"default": "secret", "other": ""}))
    with pytest.raises(NoBucketError):
        cl.n1ql_query("SELECT 1")
    b = cl.open_bucket("default")
    cluster.query_register("SELECT 1", rows=[1])
    assert list(cl.n1ql_query("SELECT 1")) == [1]
    req = cluster.query_requests()[-1]
    assert req["creds"] == [{"user": "default", "pass": "secret"}]
    b.close()


def test_sync_request_refused_on_an_async_bucket(cluster):
    b = H.bucket_class("asyncio")(cluster.connstr("default"), password="secret")
    req = N.N1QLRequest(N1QLQuery("SELECT 1"), b)
    with pytest.raises(E.NotSupportedError):
        list(req)
    b.close()


def test_twisted_n1ql_query_ex(cluster):
    cluster.query_register("ex", rows=[1, 2, 3])
    seen = []

    class Collect(N.AsyncN1QLRequest):
        def on_rows(self, rows):
            seen.append(("rows", list(rows)))

        def on_done(self):
            seen.append("done")
            N.AsyncN1QLRequest.on_done(self)

    def body():
        b = yield from opened("twisted", cluster)
        req = b.n1qlQueryEx(Collect, "ex")
        yield req._fut
        return True
    assert H.run("twisted", body)
    assert seen == [("rows", [1, 2, 3]), "done"]


def test_asyncio_async_for(cluster):
    import asyncio
    cluster.query_register("af", rows=[{"k": 1}, {"k": 2}])

    async def main():
        b = H.bucket_class("asyncio")(cluster.connstr("default"), password="secret")
        got = [row async for row in b.n1ql_query("af")]
        q = b.n1ql_query("af")
        with pytest.raises(ValueError):
            list(q)                      # not finished yet
        await q.future
        b.close()
        return got, list(q)
    got, again = asyncio.run(main())
    assert got == again == [{"k": 1}, {"k": 2}]


def test_close_fails_a_query_in_flight(cluster):
    cluster.query_register("forever", delay=float("inf"))

    def body():
        b = yield from opened("twisted", cluster)
        d = b.n1qlQueryAll("forever")
        b.close()
        e = yield from outcome(lambda: d)
        assert isinstance(e, E.ObjectDestroyedError)
        return True
    assert H.run("twisted", body)


# ---- the query object alone (no cluster) ----------------------------------------------------

def test_query_encoding():
    q = N1QLQuery("SELECT * FROM b WHERE x = $1 AND y = $y", "one", y=[2])
    d = json.loads(q.encoded)
    assert d == {"statement": "SELECT * FROM b WHERE x = $1 AND y = $y", "args": ["one"],
                 "$y": [2]}
    assert q.statement.startswith("SELECT")
    assert q.consistency == N.CONSISTENCY_NONE
    q.consistency = N.CONSISTENCY_REQUEST
    assert json.loads(q.encoded)["scan_consistency"] == "request_plus"
    q.timeout = 1.5
    assert q.timeout == 1.5 and json.loads(q.encoded)["timeout"] == "1.5s"
    q.timeout = 0
    assert "timeout" not in json.loads(q.encoded)
    with pytest.raises(ValueError):
        q.timeout = "soon"
    q.set_option("max_parallelism", "4")
    q.readonly = True
    q.scan_cap = 10
    assert json.loads(q.encoded)["max_parallelism"] == "4"
    assert q.readonly is True and q.scan_cap == 10
    assert q.profile == "off"
    q.profile = N.PROFILE_TIMINGS
    with pytest.raises(TypeError):
        q.profile = "everything"
    assert q.adhoc is True
    q.adhoc = False
    assert "adhoc" not in json.loads(q.encoded)


def test_consistent_with():
    q = N1QLQuery("SELECT 1")
    ms = N.MutationState()
    with pytest.raises(TypeError):
        q.consistent_with(ms)                # empty
    ms._add_scanvec((42, 3004, 3, "default"))
    ms._add_scanvec((42, 3004, 4, "default"))
    ms._add_scanvec((7, 99, 1, "other"))
    q.consistent_with(ms)
    d = json.loads(q.encoded)
    assert d["scan_consistency"] == "at_plus"
    assert d["scan_vectors"] == {"default": {"42": [4, "3004"]}, "other": {"7": [1, "99"]}}
    with pytest.raises(N.MissingTokenError):
        ms.add_results(object())
    assert ms.add_results(object(), quiet=True) is False
    q2 = N1QLQuery("SELECT 1")
    q2.consistency = N.CONSISTENCY_REQUEST
    with pytest.raises(TypeError):
        q2.consistent_with(ms)


def test_install_as_couchbase_has_n1ql():
    import subprocess
    import sys
    code = ("import couchbase_ffi; couchbase_ffi.install_as_couchbase(); "
            "from couchbase.n1ql import N1QLQuery, N1QLError, CONSISTENCY_REQUEST; "
            "import couchbase.n1ql, couchbase_ffi.n1ql; "
            "assert couchbase.n1ql is couchbase_ffi.n1ql; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


def test_meta_waits_for_the_rows_by_default(cluster):
    # couchbase 2.x: a request's metadata exists only once its rows were read; asking
    # earlier is a RuntimeError and sends nothing (no hidden run of the statement)
    cluster.query_register("SELECT two", rows=[{"n": 1}, {"n": 2}])
    b = H.bucket_class("sync")(cluster.connstr("default"), password="secret")
    before = len(cluster.query_requests())
    req = b.n1ql_query("SELECT two")
    for attr in ("meta", "metrics"):
        with pytest.raises(RuntimeError):
            getattr(req, attr)
    assert len(cluster.query_requests()) == before
    assert [r["n"] for r in req] == [1, 2]
    assert req.meta["status"] == "success" and req.metrics["resultCount"] == 2
    # asking for it once, explicitly, still reads ahead
    again = b.n1ql_query("SELECT two")
    assert again.meta_retrieve(meta_lookahead=True)["metrics"]["resultCount"] == 2
    assert [r["n"] for r in again] == [1, 2]
