"""couchbase_ffi.mock: the REST port (ns_server endpoints, streaming, control) and the CLI."""
import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

import mock_client as mc
from couchbase_ffi.mock import BucketSpec, MockCluster

ADMIN = ("Administrator", "password")


@pytest.fixture
def cluster():
    c = MockCluster(nodes=3, buckets=[BucketSpec("default", replicas=1, vbuckets=16),
                                      BucketSpec("other", password="opw", vbuckets=16),
                                      BucketSpec("cache", "memcached")],
                    persist_delay=0, replicate_delay=0)
    c.start()
    yield c
    c.stop()


def request(cluster, method, path, creds=ADMIN, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", cluster.rest_port, timeout=5)
    headers = {}
    if creds:
        headers["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % creds).encode()).decode()
    if body is not None:
        body = json.dumps(body)
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def get_json(cluster, path, creds=ADMIN):
    status, data = request(cluster, "GET", path, creds)
    assert status == 200, (status, data)
    return json.loads(data)


def test_auth_required(cluster):
    assert request(cluster, "GET", "/pools", creds=None)[0] == 401
    assert request(cluster, "GET", "/pools/default/b/default", creds=("Administrator", "nope"))[0] == 401
    assert request(cluster, "GET", "/pools/default/b/default", creds=("ghost", "password"))[0] == 401
    assert request(cluster, "GET", "/pools/default/b/other", creds=("other", "opw"))[0] == 200
    assert request(cluster, "GET", "/pools/default/b/default", creds=("other", "opw"))[0] == 403
    assert request(cluster, "POST", "/mock/failover", creds=("other", "opw"), body={"node": 1})[0] == 403


def test_pools(cluster):
    p = get_json(cluster, "/pools")
    assert p["pools"][0]["name"] == "default" and p["isAdminCreds"] is True
    d = get_json(cluster, "/pools/default")
    assert [n["ports"]["direct"] for n in d["nodes"]] == cluster.kv_ports
    assert all(n["hostname"] == "127.0.0.1:%d" % cluster.rest_port for n in d["nodes"])
    ns = get_json(cluster, "/pools/default/nodeServices")
    assert [e["services"]["kv"] for e in ns["nodesExt"]] == cluster.kv_ports


def test_terse_bucket_config(cluster):
    cfg = get_json(cluster, "/pools/default/b/default")
    raw = request(cluster, "GET", "/pools/default/b/default")[1]
    assert b"$HOST" not in raw                          # ns_server puts in its local address
    assert cfg["vBucketServerMap"]["serverList"] == ["127.0.0.1:%d" % p for p in cluster.kv_ports]
    assert cfg["rev"] == cluster.bucket("default").rev
    assert not any(e.get("thisNode") for e in cfg["nodesExt"])
    assert get_json(cluster, "/pools/default/b/cache")["nodeLocator"] == "ketama"
    assert request(cluster, "GET", "/pools/default/b/nosuch")[0] == 404
    assert request(cluster, "GET", "/no/such/thing")[0] == 404
    full = get_json(cluster, "/pools/default/buckets/default")
    assert full["replicaNumber"] == 1
    names = [b["name"] for b in get_json(cluster, "/pools/default/buckets")]
    assert names == ["cache", "default", "other"]
    assert [b["name"] for b in get_json(cluster, "/pools/default/buckets", creds=("other", "opw"))] == ["other"]


def read_chunk(f):
    line = f.readline()
    size = int(line.strip(), 16)
    data = f.read(size)
    assert f.read(2) == b"\r\n"
    return data


def test_streaming_config(cluster):
    s = socket.create_connection(("127.0.0.1", cluster.rest_port), 5)
    auth = base64.b64encode(b"Administrator:password").decode()
    s.sendall(("GET /pools/default/bs/default HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Authorization: Basic %s\r\n\r\n" % auth).encode())
    f = s.makefile("rb")
    status = f.readline()
    assert b"200" in status
    headers = []
    while True:
        line = f.readline()
        if line == b"\r\n":
            break
        headers.append(line.lower())
    assert b"transfer-encoding: chunked\r\n" in headers
    first = read_chunk(f)
    assert first.endswith(b"\n\n\n\n")
    cfg1 = json.loads(first[:-4])
    rev = cluster.failover(2)
    second = read_chunk(f)
    assert second.endswith(b"\n\n\n\n")
    cfg2 = json.loads(second[:-4])
    assert cfg2["rev"] == rev > cfg1["rev"]
    assert len(cfg2["vBucketServerMap"]["serverList"]) == 2
    s.close()


def test_streaming_unknown_bucket_is_404(cluster):
    assert request(cluster, "GET", "/pools/default/bs/nosuch")[0] == 404


def test_keep_alive(cluster):
    conn = http.client.HTTPConnection("127.0.0.1", cluster.rest_port, timeout=5)
    auth = {"Authorization": "Basic " + base64.b64encode(b"Administrator:password").decode()}
    for _ in range(3):
        conn.request("GET", "/pools/default/b/default", headers=auth)
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["name"] == "default"
    conn.close()


def test_flush_over_rest(cluster):
    r = mc.Router(cluster)
    r.set("fl", b"v")
    assert request(cluster, "POST", "/pools/default/buckets/default/controller/doFlush")[0] == 200
    assert r.get("fl").status == mc.KEY_ENOENT
    r.close()


def test_control_http(cluster):
    r = mc.Router(cluster)
    r.set("ctl", b"v", flags=4)
    st, body = request(cluster, "GET", "/mock/doc?bucket=default&key=ctl")
    doc = json.loads(body)
    assert st == 200 and doc["found"] and base64.b64decode(doc["value_base64"]) == b"v" and doc["flags"] == 4
    b = cluster.bucket("default")
    rev = b.rev
    st, body = request(cluster, "POST", "/mock/failover", body={"node": 1})
    assert st == 200 and json.loads(body)["rev"] == b.rev > rev
    state = get_json(cluster, "/mock/state")
    assert state["nodes"][1]["failed_over"] is True and state["rev"] == b.rev
    assert request(cluster, "POST", "/mock/add_back", body={"node": 1})[0] == 200
    key = "ctl"
    vb = b.vbucket_of(key)
    to = (b.active_node(key) + 1) % 3
    st, _ = request(cluster, "POST", "/mock/move_vbuckets", body={"bucket": "default", "vbuckets": [vb],
                                                                  "to_node": to})
    assert st == 200 and b.active_node(key) == to
    assert request(cluster, "POST", "/mock/inject_status",
                   body={"status": "ETMPFAIL", "count": 1, "opcodes": ["GET"]})[0] == 200
    r.cfg = r.conn(0).config()
    assert r.get(key).status == mc.ETMPFAIL
    assert r.get(key).status == mc.SUCCESS
    for action, params in [("delay", {"node": 0, "seconds": 0.01, "count": 1}),
                           ("drop", {"node": 0, "count": 1}), ("garbage", {"node": 0}),
                           ("truncate", {"node": 0}), ("set_delays", {"persist": "inf", "replicate": 0.001}),
                           ("persist", {"bucket": "default", "key": "ctl"}),
                           ("unpersist", {"bucket": "default", "key": "ctl"}),
                           ("advance_time", {"seconds": 1})]:
        assert request(cluster, "POST", "/mock/" + action, body=params)[0] == 200, action
    assert len(get_json(cluster, "/mock/state")["faults"]) == 4
    assert request(cluster, "POST", "/mock/clear_faults", body={})[0] == 200
    assert get_json(cluster, "/mock/state")["faults"] == []
    assert request(cluster, "POST", "/mock/kill_node", body={"node": 2})[0] == 200
    assert get_json(cluster, "/mock/state")["nodes"][2]["running"] is False
    assert request(cluster, "POST", "/mock/restart_node", body={"node": 2})[0] == 200
    mc.connect(cluster.kv_ports[2]).close()
    assert request(cluster, "POST", "/mock/no_such_action", body={})[0] == 404
    assert request(cluster, "POST", "/mock/failover", body={"node": 77})[0] == 400
    assert request(cluster, "POST", "/mock/failover", body={"nod": 1})[0] == 400
    r.close()


def test_cli(tmp_path):
    env = dict(os.environ)
    here = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(here, "..", "..", "python"), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen([sys.executable, "-m", "couchbase_ffi.mock", "--nodes", "3", "--replicas", "2",
                             "--vbuckets", "32", "--bucket", "default:couchbase:pw",
                             "--bucket", "cache:memcached:", "--user", "admin:secret", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        info = json.loads(line)
        ports = info["kv_ports"]
        assert len(ports) == 3
        assert info["buckets"]["default"]["connstr"] == "couchbase://%s/default" % ",".join(
            "127.0.0.1:%d" % p for p in ports)
        assert info["buckets"]["cache"]["http_connstr"] == "http://127.0.0.1:%d/cache" % info["rest_port"]
        c = mc.connect(ports[1], user="admin", password="secret")
        cfg = c.config()
        assert cfg["vBucketServerMap"]["numReplicas"] == 2 and len(cfg["vBucketServerMap"]["vBucketMap"]) == 32
        c.close()
        c = mc.connect(ports[0], user="default", password="pw", bucket=None)
        assert c.config()["name"] == "default"
        c.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", ports[0]), 1).close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_cli_sigterm_and_text_output():
    env = dict(os.environ)
    here = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(here, "..", "..", "python"), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen([sys.executable, "-m", "couchbase_ffi.mock", "--nodes", "1", "--vbuckets", "8"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        out = ""
        deadline = time.time() + 20
        while "control:" not in out and time.time() < deadline:
            out += proc.stdout.readline()
        assert "couchbase://127.0.0.1:" in out and "/default" in out and "http://127.0.0.1:" in out
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_cli_bad_bucket_type():
    env = dict(os.environ)
    here = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(here, "..", "..", "python"), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-m", "couchbase_ffi.mock", "--bucket", "x:ephemeral:"],
                         capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode == 2 and "couchbase" in out.stderr


def test_context_manager_and_fixed_ports():
    from conftest import free_port
    base = free_port()
    with MockCluster(nodes=1, buckets=[BucketSpec("b", vbuckets=4, replicas=0)], rest_port=0,
                     kv_ports=[base]) as c:
        assert c.kv_ports == [base]
        assert c.connstr("b", operation_timeout="2.5") == "couchbase://127.0.0.1:%d/b?operation_timeout=2.5" % base
        conn = mc.connect(base, bucket="b")
        assert conn.config()["vBucketServerMap"]["vBucketMap"] == [[0]] * 4
        conn.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", base), 1).close()
