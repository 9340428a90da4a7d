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


# ---- prepared statements ---------------------------------------------------------------------

def test_prepare_answers_the_prepared_statement_and_runs_it_by_name(cluster):
    cluster.query_prepared_clear()
    cluster.query_register("SELECT 1", rows=[{"$1": 1}])
    status, out = q(cluster, {"statement": "PREPARE SELECT 1;"})
    assert status == 200 and out["status"] == "success"
    (p,) = out["results"]
    assert list(p) == ["encoded_plan", "featureControls", "indexApiVersion", "name", "namespace",
                       "operator", "queryContext", "signature", "text", "useCBO"]
    host = "[127.0.0.1:%d]" % cluster.rest_port
    assert p["name"].startswith(host) and len(p["name"]) == len(host) + 36     # a UUID
    assert p["text"] == "PREPARE SELECT 1;" and p["operator"]["#operator"] == "Sequence"
    assert p["encoded_plan"].startswith("H4sI")           # gzip, base64, as the service's
    # the same text gets the same name (made from the statement), on any query node
    assert q(cluster, {"statement": "PREPARE SELECT 1"}, node=2)[1]["results"][0]["name"] == \
        p["name"]
    for body in ({"prepared": p["name"]}, {"prepared": p["name"][len(host):]},
                 {"prepared": p["name"], "encoded_plan": p["encoded_plan"]}):
        status, out = q(cluster, body, node=2)
        assert status == 200 and out["results"] == [{"$1": 1}] and "prepared" not in out
    local = p["name"][len(host):]
    assert cluster.query_prepared() == {local: {"statement": "SELECT 1",
                                                "text": "PREPARE SELECT 1;",
                                                "encoded_plan": p["encoded_plan"]}}
    rec = cluster.query_requests()[-1]
    assert rec["prepared"] == p["name"] and rec["encoded_plan"] == p["encoded_plan"]
    assert rec["statement"] is None


def test_prepared_statements_take_the_requests_parameters(cluster):
    from couchbase_ffi.bucket import Bucket
    b = Bucket(cluster.connstr("default"), password="pw")
    b.upsert_multi({"pp:1": {"a": 1}, "pp:2": {"a": 2}})
    cluster.query_prepared_clear()
    name = q(cluster, {"statement": "PREPARE SELECT * FROM default USE KEYS $1"}
             )[1]["results"][0]["name"]
    out = q(cluster, {"prepared": name, "args": [["pp:2", "pp:1"]]})[1]
    assert out["results"] == [{"default": {"a": 2}}, {"default": {"a": 1}}]
    name = q(cluster, {"statement": "PREPARE k FROM SELECT * FROM default USE KEYS $k"}
             )[1]["results"][0]["name"]
    assert q(cluster, {"prepared": "k", "$k": "pp:1"})[1]["results"] == [{"default": {"a": 1}}]
    status, out = q(cluster, {"prepared": name})
    assert status == 500 and out["errors"][0]["code"] == 5010       # its parameter is missing
    b.remove_multi(["pp:1", "pp:2"])


def test_prepare_names_force_and_duplicates(cluster):
    from couchbase_ffi.mock.query import parse_prepare
    assert parse_prepare("PREPARE SELECT 1") == (False, None, "SELECT 1")
    assert parse_prepare("prepare force p1 as SELECT 1") == (True, "p1", "SELECT 1")
    assert parse_prepare("PREPARE `my-p` FROM SELECT 1") == (False, "my-p", "SELECT 1")
    assert parse_prepare('PREPARE "q" FROM SELECT 1') == (False, "q", "SELECT 1")
    assert parse_prepare("PREPARE DELETE FROM b") == (False, None, "DELETE FROM b")  # no name
    assert parse_prepare("SELECT 1") is None
    cluster.query_prepared_clear()
    cluster.query_register("SELECT 1", rows=[1])
    cluster.query_register("SELECT 2", rows=[2])
    status, out = q(cluster, {"statement": "PREPARE p1 FROM SELECT 1"})
    assert status == 200 and out["results"][0]["name"].endswith("]p1")
    plan = out["results"][0]["encoded_plan"]
    assert q(cluster, {"statement": "PREPARE p1 AS SELECT 1"})[1]["results"][0]["encoded_plan"] == plan
    status, out = q(cluster, {"statement": "PREPARE p1 FROM SELECT 2"})
    assert status == 404 and out["errors"][0]["code"] == 4060
    assert "duplicate name" in out["errors"][0]["msg"]
    assert q(cluster, {"statement": "PREPARE FORCE p1 FROM SELECT 1"})[0] == 200
    assert q(cluster, {"prepared": "p1"})[1]["results"] == [1]


def test_prepare_plans_and_executions_fail_as_the_service(cluster):
    cluster.query_prepared_clear()
    cluster.query_register("SELECT 1", rows=[1])
    cluster.query_register("SELECT 2", rows=[2])
    cluster.query_register("SELECT planless", errors=[{"code": 4000, "msg": "No index available"}])
    cluster.query_register("SELECT fails", errors=[{"code": 5000, "msg": "broke while running"}])
    # what cannot be planned fails to prepare: unknown (3000), plan errors, keyspaces
    status, out = q(cluster, {"statement": "PREPARE SELECT unknown"})
    assert status == 400 and out["errors"][0]["code"] == 3000
    status, out = q(cluster, {"statement": "PREPARE SELECT planless"})
    assert status == 404 and out["errors"][0]["code"] == 4000
    status, out = q(cluster, {"statement": "PREPARE SELECT RAW COUNT(*) FROM nope"})
    assert status == 500 and out["errors"][0]["code"] == 12003
    assert cluster.query_prepared() == {}
    # an execution error comes when it runs
    name = q(cluster, {"statement": "PREPARE SELECT fails"})[1]["results"][0]["name"]
    status, out = q(cluster, {"prepared": name})
    assert status == 500 and out["errors"][0]["code"] == 5000
    p1 = q(cluster, {"statement": "PREPARE p1 FROM SELECT 1"})[1]["results"][0]
    p2 = q(cluster, {"statement": "PREPARE p2 FROM SELECT 2"})[1]["results"][0]
    status, out = q(cluster, {"prepared": "nope"})
    assert status == 404 and out["errors"][0] == {"code": 4040,
                                                  "msg": "No such prepared statement: nope"}
    status, out = q(cluster, {"prepared": "p1", "encoded_plan": "bm90IGEgcGxhbg=="})
    assert status == 404 and out["errors"][0]["code"] == 4070
    status, out = q(cluster, {"prepared": "p1", "encoded_plan": p2["encoded_plan"]})
    assert out["errors"][0]["code"] == 4090 and "expecting: p1, found: p2" in out["errors"][0]["msg"]
    assert q(cluster, {"prepared": "p1", "encoded_plan": p1["encoded_plan"]})[1]["results"] == [1]
    # p2 prepared again with FORCE and another PREPARE text (the mock's plans carry it): the
    # old plan is not the name's any more
    forced = q(cluster, {"statement": "PREPARE FORCE p2 AS SELECT 2"})[1]["results"][0]
    assert forced["name"] == p2["name"] and forced["encoded_plan"] != p2["encoded_plan"]
    status, out = q(cluster, {"prepared": "p2", "encoded_plan": p2["encoded_plan"]})
    assert status == 404 and out["errors"][0]["code"] == 4080
    assert q(cluster, {"prepared": "p2", "encoded_plan": forced["encoded_plan"]}
             )[1]["results"] == [2]


def test_forgotten_names_and_invalidated_plans(cluster):
    rest = cluster.rest_port
    cluster.query_prepared_clear()
    cluster.query_register("SELECT 1", rows=[1])
    p = q(cluster, {"statement": "PREPARE SELECT 1"})[1]["results"][0]
    status, held = http(rest, "/mock/query_prepared", {})
    assert status == 200 and [v["statement"] for v in held.values()] == ["SELECT 1"]
    # forgotten (a restarted node): by name 4040; with the plan it is decoded and kept again
    assert http(rest, "/mock/query_prepared_clear", {})[1] == {"dropped": 1, "plan_epoch": 0}
    assert q(cluster, {"prepared": p["name"]})[1]["errors"][0]["code"] == 4040
    assert q(cluster, {"prepared": p["name"], "encoded_plan": p["encoded_plan"]}
             )[1]["results"] == [1]
    assert q(cluster, {"prepared": p["name"]})[1]["results"] == [1]
    # invalidated (an upgrade): the old plan does not decode; prepared again, a new plan
    assert cluster.query_prepared_clear(invalidate_plans=True)["plan_epoch"] == 1
    status, out = q(cluster, {"prepared": p["name"], "encoded_plan": p["encoded_plan"]})
    assert status == 404 and out["errors"][0]["code"] == 4070
    again = q(cluster, {"statement": "PREPARE SELECT 1"})[1]["results"][0]
    assert again["name"] == p["name"] and again["encoded_plan"] != p["encoded_plan"]
    assert q(cluster, {"prepared": p["name"], "encoded_plan": again["encoded_plan"]}
             )[1]["results"] == [1]
    assert http(rest, "/mock/query_prepared_clear", {"invalidate_plans": "x", "nope": 1})[0] == 400


def test_auto_execute_and_the_cluster_capability(cluster):
    cluster.query_prepared_clear()
    cluster.query_register("SELECT 1", rows=[1], metrics={"sortCount": 0})
    for cfg in (cluster.bucket("default").config(0),
                json.dumps(http(cluster.rest_port, "/pools/default/nodeServices", method="GET")[1])):
        assert json.loads(cfg)["clusterCapabilities"] == {"n1ql": ["enhancedPreparedStatements"]}
    status, out = q(cluster, {"statement": "PREPARE SELECT 1", "auto_execute": True,
                              "client_context_id": "ae"})
    assert status == 200 and out["results"] == [1]
    assert list(out)[:5] == ["requestID", "clientContextID", "signature", "prepared", "results"]
    assert out["prepared"] == "[127.0.0.1:%d]%s" % (cluster.rest_port,
                                                     list(cluster.query_prepared())[0])
    assert cluster.query_requests()[-1]["auto_execute"] is True
    assert q(cluster, {"prepared": out["prepared"]})[1]["results"] == [1]
    # a registration of the PREPARE text itself answers it as registered
    cluster.query_register("PREPARE SELECT 1", rows=["registered"])
    assert q(cluster, {"statement": "PREPARE SELECT 1", "auto_execute": True}
             )[1]["results"] == ["registered"]
    # a service before 6.5: no capability, and auto_execute is an unknown parameter
    with MockCluster(nodes=1, enhanced_prepared=False) as old:
        assert json.loads(old.bucket("default").config(0))["clusterCapabilities"] == {}
        status, out = q(old, {"statement": "PREPARE SELECT RAW COUNT(*) FROM default",
                              "auto_execute": True}, node=0)
        assert status == 400 and out["errors"][0]["code"] == 1065
        status, out = q(old, {"statement": "PREPARE SELECT RAW COUNT(*) FROM default"}, node=0)
        assert status == 200 and out["results"][0]["encoded_plan"]
