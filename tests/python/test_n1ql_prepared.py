"""N1QL prepared statements (``N1QLQuery.adhoc = False``) on the sync Bucket, Twisted and
asyncio, against the mock's query service in both of its flavours: a 6.5+ service
(clusterCapabilities "n1ql": ["enhancedPreparedStatements"]: PREPARE with auto_execute,
then the name alone) and an older one (PREPARE, then prepared + encoded_plan).  What
the client sent is read from the mock's request log."""
import threading

import pytest

import asynchelp as H
from couchbase_ffi import _prepared
from couchbase_ffi import exceptions as E
from couchbase_ffi._lowlevel import lib
from couchbase_ffi.mock import MockCluster, BucketSpec
from couchbase_ffi.n1ql import N1QLQuery, N1QLError

pytest.importorskip("twisted")

ALL = ("sync",) + H.FRONTENDS
FLOWS = ("enhanced", "legacy")
USE_KEYS = "SELECT * FROM default USE KEYS $1"


@pytest.fixture(scope="module", params=FLOWS)
def cluster(request):
    c = MockCluster(nodes=3, query_nodes=[0, 2], buckets=[BucketSpec("default", password="secret")],
                    enhanced_prepared=request.param == "enhanced").start()
    c.flow = request.param
    b = H.bucket_class("sync")(c.connstr("default"), password="secret")
    b.upsert_multi(dict(("p:%d" % i, {"i": i}) for i in range(5)))
    b.close()
    yield c
    c.stop()


@pytest.fixture(autouse=True)
def _clean(cluster, monkeypatch):
    cluster.query_clear()
    cluster.query_prepared_clear()
    made = H.track_buckets(monkeypatch)
    yield
    H.close_leftovers(made)


def opened(frontend, cluster, **kw):
    kw.setdefault("password", "secret")
    return (yield from H.connected(frontend, cluster.connstr("default"), **kw))


from test_n1ql import run_query  # noqa: E402  (the same helper)


outcome = H.outcome


def prepared(statement, *args, **named):
    q = N1QLQuery(statement, *args, **named)
    q.adhoc = False
    return q


def kinds(log):
    """Each request as "PREPARE" (+"/auto" with auto_execute), "exec" (by name; "+plan" with
    an encoded_plan) or "adhoc"."""
    out = []
    for r in log:
        if (r["statement"] or "").startswith("PREPARE "):
            out.append("PREPARE/auto" if r["auto_execute"] else "PREPARE")
        elif r["prepared"] is not None:
            out.append("exec+plan" if r["encoded_plan"] else "exec")
        else:
            out.append("adhoc")
    return out


def first_time(cluster):
    return ["PREPARE/auto"] if cluster.flow == "enhanced" else ["PREPARE", "exec+plan"]


def by_name(cluster):
    return "exec" if cluster.flow == "enhanced" else "exec+plan"


def test_the_client_sees_the_flow_in_the_cluster_map(cluster):
    b = H.bucket_class("sync")(cluster.connstr("default"), password="secret")
    caps = lib.cbffi_client_cluster_caps(b._c)
    assert bool(caps & lib.CBFFI_CLUSTER_CAP_N1QL_ENHANCED_PREPARED) == (cluster.flow == "enhanced")
    b.close()


@pytest.mark.parametrize("frontend", ALL)
def test_same_rows_as_adhoc_and_no_second_prepare(cluster, frontend):
    def body():
        b = yield from opened(frontend, cluster)
        adhoc = yield run_query(frontend, b, N1QLQuery(USE_KEYS, ["p:1", "p:3"]))
        first = yield run_query(frontend, b, prepared(USE_KEYS, ["p:1", "p:3"]))
        second = yield run_query(frontend, b, prepared(USE_KEYS, ["p:4"]))
        third = yield run_query(frontend, b, prepared(USE_KEYS, ["p:0", "p:2"]))
        assert list(adhoc) == list(first) == [{"default": {"i": 1}}, {"default": {"i": 3}}]
        assert list(second) == [{"default": {"i": 4}}]
        assert list(third) == [{"default": {"i": 0}}, {"default": {"i": 2}}]
        assert second.meta["status"] == "success" and second.metrics["resultCount"] == 1
        return True
    assert H.run(frontend, body)
    log = cluster.query_requests()
    assert kinds(log) == ["adhoc"] + first_time(cluster) + [by_name(cluster)] * 2
    # the PREPARE names the statement; each execution sends its own args, no statement
    assert log[1]["statement"] == "PREPARE " + USE_KEYS
    execs = [r for r in log if r["prepared"] is not None]
    assert len(set(r["prepared"] for r in execs)) == 1
    assert all(r["statement"] is None for r in execs)
    assert [r["args"] for r in execs[-2:]] == [[["p:4"]], [["p:0", "p:2"]]]
    assert list(cluster.query_prepared().values())[0]["statement"] == USE_KEYS


@pytest.mark.parametrize("frontend", ALL)
def test_named_arguments_and_options_with_a_prepared_statement(cluster, frontend):
    stmt = "SELECT * FROM default USE KEYS $k"

    def body():
        b = yield from opened(frontend, cluster)
        for keys in (["p:2"], ["p:0", "p:4"]):
            q = prepared(stmt, k=keys)
            q.consistency = "request_plus"
            q.set_option("client_context_id", "named-" + frontend)
            req = yield run_query(frontend, b, q)
            assert list(req) == [{"default": {"i": int(k[2:])}} for k in keys]
        return True
    assert H.run(frontend, body)
    log = cluster.query_requests()
    execs = [r for r in log if r["prepared"] is not None]
    assert [r["named"] for r in execs][-1] == {"$k": ["p:0", "p:4"]}
    assert all(r["scan_consistency"] == "request_plus" and
               r["client_context_id"] == "named-" + frontend for r in execs)
    if cluster.flow == "enhanced":    # the PREPARE runs the query: it carries the options too
        assert log[0]["named"] == {"$k": ["p:2"]} and log[0]["scan_consistency"] == "request_plus"
    else:                             # the PREPARE plans only: statement and timeout
        assert set(log[0]["body"]) == {"statement", "timeout"}


@pytest.mark.parametrize("frontend", ALL)
def test_the_service_lost_the_plan_it_is_prepared_again(cluster, frontend):
    def body():
        b = yield from opened(frontend, cluster)
        yield run_query(frontend, b, prepared(USE_KEYS, ["p:1"]))
        # as after an upgrade: names forgotten, encoded plans no longer decode
        cluster.query_prepared_clear(invalidate_plans=True)
        cluster.query_requests(clear=True)
        req = yield run_query(frontend, b, prepared(USE_KEYS, ["p:2", "p:3"]))
        assert list(req) == [{"default": {"i": 2}}, {"default": {"i": 3}}]
        # and the new plan is the one used from then on
        req = yield run_query(frontend, b, prepared(USE_KEYS, ["p:0"]))
        assert list(req) == [{"default": {"i": 0}}]
        return True
    assert H.run(frontend, body)
    log = cluster.query_requests()
    assert kinds(log) == [by_name(cluster)] + first_time(cluster) + [by_name(cluster)]
    plans = [r["encoded_plan"] for r in log if r["encoded_plan"]]
    if cluster.flow == "legacy":      # the stale plan, then the new one twice
        assert plans[0] != plans[1] == plans[2]


def test_a_forgotten_name_with_its_plan_needs_no_prepare(cluster):
    """The service forgot its prepared statements but still decodes plans (a restarted query
    node): the legacy flow goes on by its plan; the enhanced flow, by name only, prepares again."""
    b = H.bucket_class("sync")(cluster.connstr("default"), password="secret")
    list(b.n1ql_query(prepared(USE_KEYS, ["p:1"])))
    cluster.query_prepared_clear()
    cluster.query_requests(clear=True)
    assert list(b.n1ql_query(prepared(USE_KEYS, ["p:4"]))) == [{"default": {"i": 4}}]
    want = ["exec", "PREPARE/auto"] if cluster.flow == "enhanced" else ["exec+plan"]
    assert kinds(cluster.query_requests()) == want
    assert list(cluster.query_prepared().values())[0]["statement"] == USE_KEYS
    b.close()


@pytest.mark.parametrize("frontend", ALL)
def test_a_second_plan_failure_surfaces(cluster, frontend):
    """A PREPARE that answers a plan the service then cannot decode (4070): prepared again
    once, then the error is the query's."""
    stmt = "SELECT ghost FROM default"
    cluster.query_register(stmt, rows=[1])
    cluster.query_register("PREPARE " + stmt, rows=[{"name": "ghost", "encoded_plan": "bm90IGEgcGxhbg=="}])

    def body():
        b = yield from opened(frontend, cluster)
        e = yield from outcome(lambda: run_query(frontend, b, prepared(stmt)))
        assert isinstance(e, N1QLError) and e.n1ql_errcode == 4070
        assert "decode" in str(e)
        return True
    assert H.run(frontend, body)
    assert kinds(cluster.query_requests()) == ["PREPARE/auto" if cluster.flow == "enhanced"
                                               else "PREPARE", "exec+plan"] * 2


@pytest.mark.parametrize("frontend", ALL)
def test_a_failed_prepare_is_the_servers_n1ql_error(cluster, frontend):
    cluster.query_register("SELECT unplannable FROM default", errors=[
        {"code": 4000, "msg": "No index available on keyspace default"}])

    def body():
        b = yield from opened(frontend, cluster)
        for _ in range(2):      # nothing was cached: it is prepared (and fails) again
            e = yield from outcome(lambda: run_query(frontend, b, prepared("SELEKT broken")))
            assert isinstance(e, N1QLError) and isinstance(e, E.HTTPError)
            assert e.n1ql_errcode == 3000 and "syntax error" in str(e)
        e = yield from outcome(lambda: run_query(frontend, b,
                                                 prepared("SELECT unplannable FROM default")))
        assert isinstance(e, N1QLError) and e.n1ql_errcode == 4000
        assert "No index available" in e.objextra["msg"]
        return True
    assert H.run(frontend, body)
    log = cluster.query_requests()
    assert [r["statement"] for r in log] == ["PREPARE SELEKT broken"] * 2 + [
        "PREPARE SELECT unplannable FROM default"]
    assert cluster.query_prepared() == {}


def test_an_execution_error_is_not_retried(cluster):
    """Errors of the execution itself (5000, 12009...) are the query's: no second PREPARE."""
    stmt = "UPDATE default SET x = 1"
    cluster.query_register(stmt, errors=[{"code": 12009, "msg": "DML Error, possible CAS mismatch"}])
    b = H.bucket_class("sync")(cluster.connstr("default"), password="secret")
    for _ in range(2):
        with pytest.raises(N1QLError) as ei:
            list(b.n1ql_query(prepared(stmt)))
        assert ei.value.n1ql_errcode == 12009
    # the statement prepared fine: it is run by name the second time
    assert kinds(cluster.query_requests()) == first_time(cluster) + [by_name(cluster)]
    b.close()


def test_a_lost_index_reprepares(cluster):
    """5000 "index deleted ... queryport.indexNotFound": the plan's index is gone; the
    statement is prepared again (libcouchbase and the 2.x SDKs did so)."""
    stmt = "SELECT indexed FROM default"
    cluster.query_register(stmt, rows=[{"ok": 1}])
    b = H.bucket_class("sync")(cluster.connstr("default"), password="secret")
    assert list(b.n1ql_query(prepared(stmt))) == [{"ok": 1}]
    cluster.query_register(stmt, count=1, errors=[{"code": 5000, "msg": "index deleted or node "
                           "hosting the index is down - cause: queryport.indexNotFound"}])
    cluster.query_requests(clear=True)
    assert list(b.n1ql_query(prepared(stmt))) == [{"ok": 1}]
    assert kinds(cluster.query_requests()) == [by_name(cluster)] + first_time(cluster)
    b.close()


def test_the_cache_is_per_bucket_and_least_recently_used_goes_first(cluster):
    assert _prepared.CACHE_SIZE == 5000
    b1 = H.bucket_class("sync")(cluster.connstr("default"), password="secret")
    b2 = H.bucket_class("sync")(cluster.connstr("default"), password="secret")
    stmts = ["SELECT * FROM default USE KEYS \"p:%d\"" % i for i in range(3)]
    list(b1.n1ql_query(prepared(stmts[0])))
    cluster.query_requests(clear=True)
    list(b2.n1ql_query(prepared(stmts[0])))         # another Bucket prepares for itself
    assert kinds(cluster.query_requests(clear=True)) == first_time(cluster)

    _prepared.cache_of(b1).maxsize = 2
    for s in (stmts[1], stmts[0], stmts[2]):        # stmts[1] is now the least recently used
        list(b1.n1ql_query(prepared(s)))
    cluster.query_requests(clear=True)
    assert list(b1.n1ql_query(prepared(stmts[0]))) == [{"default": {"i": 0}}]
    assert list(b1.n1ql_query(prepared(stmts[2]))) == [{"default": {"i": 2}}]
    assert kinds(cluster.query_requests(clear=True)) == [by_name(cluster)] * 2
    assert list(b1.n1ql_query(prepared(stmts[1]))) == [{"default": {"i": 1}}]
    assert kinds(cluster.query_requests()) == first_time(cluster)
    assert len(_prepared.cache_of(b1)) == 2
    b1.close()
    b2.close()


@pytest.mark.parametrize("frontend", H.FRONTENDS)
def test_identical_statements_at_once_on_an_async_bucket(cluster, frontend):
    def body():
        b = yield from opened(frontend, cluster)
        futs = [run_query(frontend, b, prepared(USE_KEYS, ["p:%d" % (i % 5)])) for i in range(8)]
        outs = yield H.gather(frontend, futs)
        assert all(ok for ok, _ in outs), outs
        assert [list(req) for _, req in outs] == [[{"default": {"i": i % 5}}] for i in range(8)]
        req = yield run_query(frontend, b, prepared(USE_KEYS, ["p:3"]))
        assert list(req) == [{"default": {"i": 3}}]
        return True
    assert H.run(frontend, body)
    log = cluster.query_requests()
    # all eight missed the cache at once and prepared; the last one went by name
    assert kinds(log)[-1] == by_name(cluster)
    assert len(cluster.query_prepared()) == 1


def test_identical_statements_from_threads(cluster):
    from couchbase_ffi.bucket import LOCKMODE_WAIT
    b = H.bucket_class("sync")(cluster.connstr("default"), password="secret",
                               lockmode=LOCKMODE_WAIT)
    bad = []

    def work(t):
        for i in range(6):
            k = "p:%d" % ((t + i) % 5)
            rows = list(b.n1ql_query(prepared(USE_KEYS, [k])))
            if rows != [{"default": {"i": (t + i) % 5}}]:
                bad.append(rows)
    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not bad
    # one statement: prepared by at most the threads that missed the cache at once
    sent = kinds(cluster.query_requests())
    assert 1 <= sum(k.startswith("PREPARE") for k in sent) <= 4
    assert sent.count(by_name(cluster)) >= 24 - 4
    b.close()


def test_the_timeout_bounds_prepare_and_execution_together(cluster):
    """N1QLQuery.timeout covers the whole prepared execution, PREPARE included."""
    if cluster.flow == "enhanced":
        pytest.skip("one request (PREPARE with auto_execute) there")
    stmt = "SELECT slowly FROM default"
    cluster.query_register(stmt, rows=[1])
    b = H.bucket_class("sync")(cluster.connstr("default"), password="secret")
    list(b.n1ql_query(prepared(stmt)))      # the mock's plan, for the slow PREPARE below
    (name, entry), = cluster.query_prepared().items()
    b.close()
    cluster.query_requests(clear=True)
    # a new Bucket prepares again: the PREPARE takes 0.7 s, and so does the execution
    cluster.query_register(stmt, rows=[1], delay=0.7)
    cluster.query_register("PREPARE " + stmt, rows=[{"name": name,
                           "encoded_plan": entry["encoded_plan"]}], delay=0.7)
    b = H.bucket_class("sync")(cluster.connstr("default"), password="secret")
    q = prepared(stmt)
    q.timeout = 3.0
    assert list(b.n1ql_query(q)) == [1]
    _prepared.cache_of(b).clear()
    q = prepared(stmt)
    q.timeout = 1.0
    with pytest.raises(E.TimeoutError):
        list(b.n1ql_query(q))
    assert kinds(cluster.query_requests()) == ["PREPARE", "exec+plan"] * 2
    b.close()


def test_an_asyncio_query_before_any_cluster_map_uses_the_legacy_flow(cluster):
    """No connect(): the first query schedules its PREPARE before the map is known, so it
    takes the flow every query service knows; it works on both."""
    import asyncio

    async def main():
        b = H.bucket_class("asyncio")(cluster.connstr("default"), password="secret")
        got = [row async for row in b.n1ql_query(prepared(USE_KEYS, ["p:2"]))]
        again = [row async for row in b.n1ql_query(prepared(USE_KEYS, ["p:1"]))]
        b.close()
        return got, again
    got, again = asyncio.run(main())
    assert got == [{"default": {"i": 2}}] and again == [{"default": {"i": 1}}]
    assert kinds(cluster.query_requests()) == ["PREPARE", "exec+plan", "exec+plan"]


def test_cluster_query_sends_the_bucket_passwords_with_the_prepare(cluster):
    from couchbase_ffi.cluster import Cluster, ClassicAuthenticator
    cl = Cluster("couchbase://" + ",".join("127.0.0.1:%d" % p for p in cluster.kv_ports))
    cl.authenticate(ClassicAuthenticator(buckets={"default": "secret"}))
    b = cl.open_bucket("default")
    assert list(cl.n1ql_query(prepared(USE_KEYS, ["p:3"]))) == [{"default": {"i": 3}}]
    log = cluster.query_requests()
    assert kinds(log) == first_time(cluster)
    assert all(r["creds"] == [{"user": "default", "pass": "secret"}] for r in log)
    b.close()


def test_a_prepare_answered_without_a_plan(cluster):
    """Legacy flow: a PREPARE whose answer has no name and encoded_plan is a ProtocolError
    (the rows are not the query's).  Enhanced flow: a service that answered the plan row
    without running it (auto_execute ignored) still gets the query executed by that plan."""
    stmt = "SELECT planned FROM default"
    cluster.query_register(stmt, rows=[{"ran": True}])
    b = H.bucket_class("sync")(cluster.connstr("default"), password="secret")
    if cluster.flow == "legacy":
        cluster.query_register("PREPARE " + stmt, rows=[{"not": "a plan"}])
        with pytest.raises(E.ProtocolError):
            list(b.n1ql_query(prepared(stmt)))
        assert kinds(cluster.query_requests()) == ["PREPARE"]
    else:
        list(b.n1ql_query(prepared(stmt)))
        (name, entry), = cluster.query_prepared().items()
        _prepared.cache_of(b).clear()
        cluster.query_requests(clear=True)
        cluster.query_register("PREPARE " + stmt, rows=[{"name": name,
                               "encoded_plan": entry["encoded_plan"]}])
        assert list(b.n1ql_query(prepared(stmt))) == [{"ran": True}]
        assert kinds(cluster.query_requests()) == ["PREPARE/auto", "exec+plan"]
    b.close()


def test_prepared_executions_stream_their_rows(cluster):
    """An execution by plan streams like an adhoc query: a result far larger than
    http_max_response comes through, first and later executions alike (both flows)."""
    stmt = "SELECT big FROM default"
    rows = [{"i": i, "pad": "y" * 300} for i in range(1500)]      # ~480 KB
    cluster.query_register(stmt, rows=rows, chunked=True)
    from couchbase_ffi.bucket import Bucket
    b = Bucket(cluster.connstr("default", http_max_response=65536), password="secret")
    try:
        for _ in range(2):
            got = [r["i"] for r in b.n1ql_query(prepared(stmt))]
            assert got == list(range(1500))
        # adhoc, the same statement through the same bound, for comparison
        assert len(list(b.n1ql_query(stmt))) == 1500
    finally:
        b.close()
