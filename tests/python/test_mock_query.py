"""The mock's query service on its own, over plain HTTP (no client library): the n1ql
port in nodesExt, auth, registrations through the Python and HTTP control APIs, the
request log, the built-in statements and the errors for everything else."""
import base64
import json
import time
import urllib.error
import urllib.request

import pytest

from couchbase_ffi.mock import MockCluster, BucketSpec


@pytest.fixture(scope="module")
def cluster():
    c = MockCluster(nodes=3, query_nodes=[1, 2],
                    buckets=[BucketSpec("default", password="pw"), BucketSpec("mc", "memcached")],
                    users={"Administrator": "password", "app": ("apw", ["default"])}).start()
    yield c
    c.stop()


@pytest.fixture(autouse=True)
def _clean(cluster):
    cluster.query_clear()


def http(port, path, body=None, user="Administrator", pw="password", ctype="application/json",
         method="POST"):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data,
                                 method=method)
    req.add_header("Content-Type", ctype)
    if user is not None:
        req.add_header("Authorization", "Basic " + base64.b64encode(
            ("%s:%s" % (user, pw)).encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def q(cluster, body, node=1, **kw):
    return http(cluster.query_ports[node], "/query/service", body, **kw)


def test_query_port_is_in_nodes_ext(cluster):
    assert sorted(cluster.query_ports) == [1, 2]
    cfg = json.loads(cluster.bucket("default").config(0))
    services = [e["services"] for e in cfg["nodesExt"]]
    assert "n1ql" not in services[0]
    assert [s["n1ql"] for s in services[1:]] == [cluster.query_ports[1], cluster.query_ports[2]]
    status, ns = http(cluster.rest_port, "/pools/default/nodeServices", method="GET")
    assert status == 200 and ns["nodesExt"][2]["services"]["n1ql"] == cluster.query_ports[2]


def test_auth(cluster):
    status, out = q(cluster, {"statement": "SELECT RAW COUNT(*) FROM default"}, pw="wrong")
    assert status == 401 and out["errors"][0]["code"] == 10000 and out["status"] == "fatal"
    status, out = q(cluster, {"statement": "SELECT RAW COUNT(*) FROM default"}, user=None)
    assert status == 401
    # credentials in the body's creds are accepted too
    status, out = q(cluster, {"statement": "SELECT RAW COUNT(*) FROM default",
                              "creds": [{"user": "default", "pass": "pw"}]}, user=None)
    assert status == 200 and out["results"] == [0]
    # a user without access to the bucket: 13014
    status, out = q(cluster, {"statement": "SELECT RAW COUNT(*) FROM default"}, user="app",
                    pw="apw")
    assert status == 200
    cluster.query_clear()
    log_before = cluster.query_requests()
    assert log_before == []
    status, out = q(cluster, {"statement": "SELECT RAW COUNT(*) FROM `default`"}, user="default",
                    pw="pw")
    assert status == 200
    rec = cluster.query_requests()[0]
    assert rec["user"] == "default" and rec["authorized"] is True and rec["node"] == 1


def test_no_access_and_unknown_keyspaces(cluster):
    users = {"Administrator": "password", "app": ("apw", [])}
    with MockCluster(nodes=1, users=users) as c:
        status, out = q(c, {"statement": "SELECT RAW META().id FROM default"}, node=0,
                        user="app", pw="apw")
        assert status == 401 and out["errors"][0]["code"] == 13014
    status, out = q(cluster, {"statement": "SELECT * FROM nope USE KEYS \"k\""})
    assert status == 500 and out["errors"][0]["code"] == 12003
    status, out = q(cluster, {"statement": "SELECT RAW META().id FROM mc"})
    assert status == 500 and out["errors"][0]["code"] == 12003   # no N1QL on memcached buckets


def test_unknown_statements_are_syntax_errors(cluster):
    status, out = q(cluster, {"statement": "UPDATE default SET x = 1"})
    assert status == 400
    err = out["errors"][0]
    assert err["code"] == 3000 and "mock" in err["msg"] and "register" in err["msg"]
    status, out = q(cluster, b"not json")
    assert status == 400 and out["errors"][0]["code"] == 1050
    assert http(cluster.query_ports[1], "/query/other", {})[0] == 404
    assert http(cluster.query_ports[1], "/query/service", None, method="GET")[0] == 405


def test_form_encoded_requests(cluster):
    status, out = q(cluster, b"statement=SELECT+RAW+COUNT(*)+FROM+default&client_context_id=f",
                    ctype="application/x-www-form-urlencoded")
    assert status == 200 and out["clientContextID"] == "f"


def test_registrations_python_api(cluster):
    cluster.query_register("SELECT 1", rows=[{"$1": 1}])
    cluster.query_register("SELECT 1", rows=[{"$1": "newer"}], count=1)
    cluster.query_register("SELECT 2", rows=[2], node=2)
    assert q(cluster, {"statement": "SELECT 1"})[1]["results"] == [{"$1": "newer"}]
    assert q(cluster, {"statement": "  SELECT 1 ; "})[1]["results"] == [{"$1": 1}]
    assert q(cluster, {"statement": "SELECT 2"}, node=1)[0] == 400     # only on node 2
    status, out = q(cluster, {"statement": "SELECT 2", "client_context_id": "c1"}, node=2)
    assert status == 200 and out["results"] == [2] and out["clientContextID"] == "c1"
    assert out["metrics"]["resultCount"] == 1 and out["status"] == "success"
    assert list(out)[:4] == ["requestID", "clientContextID", "signature", "results"]
    cluster.query_register("bad", errors=[{"code": 4000, "msg": "No index available"}])
    status, out = q(cluster, {"statement": "bad"})
    assert status == 404 and out["status"] == "errors" and out["metrics"]["errorCount"] == 1
    with pytest.raises(ValueError):
        cluster.query_register("x", fault="explode")


def test_registrations_and_log_over_http(cluster):
    rest = cluster.rest_port
    status, _ = http(rest, "/mock/query_register", {"statement": "SELECT 5", "rows": [5],
                                                    "http_status": 202})
    assert status == 200
    status, out = q(cluster, {"statement": "SELECT 5", "args": [1], "$n": "v",
                              "scan_consistency": "request_plus", "timeout": "2s",
                              "readonly": True})
    assert status == 202 and out["results"] == [5]
    status, log = http(rest, "/mock/query_requests", {"clear": True})
    assert status == 200 and len(log) == 1
    rec = log[0]
    assert rec["statement"] == "SELECT 5" and rec["args"] == [1] and rec["named"] == {"$n": "v"}
    assert rec["scan_consistency"] == "request_plus" and rec["timeout"] == "2s"
    assert rec["readonly"] is True
    assert http(rest, "/mock/query_requests", {})[1] == []
    assert http(rest, "/mock/query_register", {"statement": ""})[0] == 400
    assert http(rest, "/mock/query_clear", {})[0] == 200
    assert q(cluster, {"statement": "SELECT 5"})[0] == 400


def test_delays(cluster):
    cluster.query_register("wait", rows=[1], delay=0.3)
    t0 = time.monotonic()
    assert q(cluster, {"statement": "wait"})[1]["results"] == [1]
    assert time.monotonic() - t0 >= 0.25


def test_builtins(cluster):
    from couchbase_ffi.bucket import Bucket, FMT_BYTES
    b = Bucket(cluster.connstr("default"), password="pw")
    b.upsert_multi({"m:1": {"a": 1}, "m:2": "text"})
    b.upsert("m:3", b"\x00\x01", format=FMT_BYTES)   # not JSON
    ids = q(cluster, {"statement": "select raw meta().id from default"})[1]["results"]
    assert ids == ["m:1", "m:2", "m:3"]
    rows = q(cluster, {"statement": "SELECT META().id FROM default"})[1]["results"]
    assert rows == [{"id": "m:1"}, {"id": "m:2"}, {"id": "m:3"}]
    assert q(cluster, {"statement": "SELECT COUNT(*) FROM default"})[1]["results"] == [{"$1": 3}]
    out = q(cluster, {"statement": "SELECT * FROM default USE KEYS [\"m:1\", \"m:2\", \"m:3\"]"})
    assert out[1]["results"] == [{"default": {"a": 1}}, {"default": "text"}]
    out = q(cluster, {"statement": "SELECT * FROM default USE KEYS $k", "$k": "m:1"})
    assert out[1]["results"] == [{"default": {"a": 1}}]
    out = q(cluster, {"statement": "SELECT * FROM default USE KEYS $1"})
    assert out[0] == 500 and out[1]["errors"][0]["code"] == 5010
    b.remove_multi(["m:1", "m:2", "m:3"])


def test_metrics_false_leaves_metrics_out(cluster):
    """SDKs send "metrics": false unless the application asks for metrics (the Node.js SDK
    4.x always does); the query service then answers without a metrics object (the Node SDK
    reports meta.metrics undefined)."""
    cluster.query_register("SELECT 7", rows=[7], metrics={"sortCount": 1})
    status, out = q(cluster, {"statement": "SELECT 7", "metrics": False})
    assert status == 200 and out["results"] == [7] and "metrics" not in out
    assert list(out) == ["requestID", "signature", "results", "status"]
    status, out = q(cluster, {"statement": "SELECT 7", "metrics": True})
    assert out["metrics"]["sortCount"] == 1 and out["metrics"]["resultCount"] == 1
    assert "metrics" in q(cluster, {"statement": "SELECT 7"})[1]          # the default: true
    status, out = q(cluster, b"statement=SELECT+7&metrics=false",
                    ctype="application/x-www-form-urlencoded")
    assert status == 200 and "metrics" not in out
    # errors and the built-ins too
    status, out = q(cluster, {"statement": "SELECT nothing known", "metrics": False})
    assert status == 400 and "metrics" not in out and out["errors"][0]["code"] == 3000
    status, out = q(cluster, {"statement": "SELECT RAW COUNT(*) FROM default", "metrics": False})
    assert status == 200 and "metrics" not in out
