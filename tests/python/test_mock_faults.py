"""couchbase_ffi.mock: topology changes and injected faults, as a client sees them."""
import socket
import struct
import threading
import time

import pytest

import mock_client as mc
from couchbase_ffi.mock import BucketSpec, MockCluster


@pytest.fixture
def cluster():
    c = MockCluster(nodes=4, buckets=[BucketSpec("default", replicas=1, vbuckets=32),
                                      BucketSpec("cache", "memcached")],
                    persist_delay=0, replicate_delay=0)
    c.start()
    yield c
    c.stop()


def wait_for(pred, timeout=3.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def wait_replicated(cluster, key, value):
    b = cluster.bucket("default")
    return wait_for(lambda: all((b.get_doc(key, node=n) or (None,))[0] == value for n in b.replica_nodes(key)))


def test_failover_promotes_replicas_and_bumps_rev(cluster):
    r = mc.Router(cluster)
    b = cluster.bucket("default")
    keys = ["fo-%d" % i for i in range(40)]
    for k in keys:
        r.set(k, k.encode())
    victim = 1
    on_victim = [k for k in keys if b.active_node(k) == victim]
    assert on_victim
    for k in on_victim:
        assert wait_replicated(cluster, k, k.encode())
    expected_new = dict((k, b.replica_nodes(k)[0]) for k in on_victim)
    rev0 = b.rev
    assert cluster.failover(victim) > rev0
    assert b.rev > rev0
    for k in on_victim:
        assert b.active_node(k) == expected_new[k]
    for k in keys:
        assert victim not in [b.active_node(k)] + b.replica_nodes(k)
    # the old config still routes to the victim: it answers NOT_MY_VBUCKET with the new config
    res = r.get(on_victim[0])
    assert res.status == mc.NOT_MY_VBUCKET
    cfg = res.json()
    assert cfg["rev"] == b.rev
    ports = [int(s.rsplit(":", 1)[1]) for s in cfg["vBucketServerMap"]["serverList"]]
    assert cluster.kv_ports[victim] not in ports and len(ports) == 3
    assert all(len(ch) == 2 for ch in cfg["vBucketServerMap"]["vBucketMap"])
    assert len(cfg["nodesExt"]) == 3
    r.cfg = cfg
    for k in keys:                       # nothing lost: every key readable from the new actives
        assert r.get(k).value == k.encode()
    r.close()


def test_failover_memcached_bucket_drops_node(cluster):
    cluster.failover(3)
    c = mc.connect(cluster.kv_ports[0], bucket="cache")
    cfg = c.config()
    assert [n["ports"]["direct"] for n in cfg["nodes"]] == cluster.kv_ports[:3]
    c.close()
    c = mc.connect(cluster.kv_ports[3], bucket="cache")
    assert c.set("k", b"v").status == mc.NOT_MY_VBUCKET
    c.close()


def test_add_back_rebalances(cluster):
    r = mc.Router(cluster)
    b = cluster.bucket("default")
    for i in range(20):
        r.set("ab-%d" % i, b"v%d" % i)
    for i in range(20):
        assert wait_replicated(cluster, "ab-%d" % i, b"v%d" % i)
    rev1 = cluster.failover(2)
    rev2 = cluster.add_back(2)
    assert rev2 > rev1
    chains = b.vbucket_map()
    assert any(ch[0] == 2 for ch in chains) and all(len(set(ch)) == 2 for ch in chains)
    r.close()
    r = mc.Router(cluster)
    for i in range(20):
        assert r.get("ab-%d" % i).value == b"v%d" % i
    r.close()


def test_kill_and_restart_node(cluster):
    r = mc.Router(cluster)
    c = r.conn(2)
    rev = cluster.bucket("default").rev
    cluster.kill_node(2)
    assert c.closed_by_peer()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", cluster.kv_ports[2]), 1).close()
    assert cluster.bucket("default").rev == rev          # a crash is not a config change
    assert cluster.state()["nodes"][2]["running"] is False
    cluster.restart_node(2)
    c2 = mc.connect(cluster.kv_ports[2])
    assert c2.call(mc.NOOP).status == mc.SUCCESS
    c2.close()
    r.close()


def test_kill_keeps_data(cluster):
    r = mc.Router(cluster)
    b = cluster.bucket("default")
    r.set("kk", b"kept")
    node = b.active_node("kk")
    cluster.kill_node(node)
    cluster.restart_node(node)
    r2 = mc.Router(cluster)
    assert r2.get("kk").value == b"kept"
    r.close()
    r2.close()


def test_move_vbuckets(cluster):
    r = mc.Router(cluster)
    b = cluster.bucket("default")
    key = "moving"
    s = r.set(key, b"data")
    vb = b.vbucket_of(key)
    old = b.active_node(key)
    to = [n for n in range(4) if n != old and n not in b.replica_nodes(key)][0]
    rev = b.rev
    assert cluster.move_vbuckets("default", [vb], to) > rev
    assert b.active_node(key) == to
    res = r.conn(old).get(key, vb=vb)
    assert res.status == mc.NOT_MY_VBUCKET
    cfg = res.json()
    assert cfg["rev"] == b.rev
    assert r.node_of(cfg["vBucketServerMap"]["vBucketMap"][vb][0]) == to
    got = r.conn(to).get(key, vb=vb)
    assert got.status == mc.SUCCESS and got.value == b"data" and got.cas == s.cas
    # swapping with the replica keeps two distinct copies
    rep = b.replica_nodes(key)[0]
    cluster.move_vbuckets("default", [vb], rep)
    assert b.active_node(key) == rep and b.replica_nodes(key) == [to]
    assert r.conn(rep).get(key, vb=vb).value == b"data"
    r.close()


def test_move_changes_vbuuid(cluster):
    r = mc.Router(cluster)
    b = cluster.bucket("default")
    s = r.set("uu", b"x")
    vbuuid, _ = struct.unpack(">QQ", s.extras)
    vb = b.vbucket_of("uu")
    to = [n for n in range(4) if n != b.active_node("uu")][0]
    cluster.move_vbuckets("default", [vb], to)
    res = r.conn(to).call(mc.OBSERVE_SEQNO, vb=vb, value=struct.pack(">Q", vbuuid))
    fmt = res.value[0]
    assert fmt == 1                                        # the client's vbuuid is history now
    _, _, new_uuid, _, _, old_uuid, _ = struct.unpack(">BHQQQQQ", res.value)
    assert old_uuid == vbuuid and new_uuid != vbuuid
    r.close()


def test_clustermap_push(cluster):
    c = mc.connect(cluster.kv_ports[0], features=mc.DEFAULT_FEATURES + [mc.F_DUPLEX, mc.F_CCN,
                                                                        mc.F_CONFIG_KNOWN_VERSION])
    rev0 = c.config()["rev"]
    cluster.failover(3)
    p = c.recv()
    assert p.magic == 0x82 and p.opcode == 0x01 and p.key == b"default"
    epoch, rev = struct.unpack(">qq", p.extras)
    assert rev > rev0 and p.json()["rev"] == rev
    c.close()


def test_delay(cluster):
    r = mc.Router(cluster)
    r.set("d", b"v")
    node = cluster.bucket("default").active_node("d")
    cluster.delay(node, 0.3, opcodes=["GET"], count=1)
    t0 = time.time()
    assert r.get("d").value == b"v"
    assert time.time() - t0 >= 0.25
    assert r.get("d").value == b"v"            # count used up: no delay now
    r.conn(node).sock.settimeout(0.1)
    cluster.delay(node, 0.5)                   # every data command, until cleared
    with pytest.raises(socket.timeout):
        r.get("d")
    r.close()
    cluster.clear_faults()


def test_drop(cluster):
    r = mc.Router(cluster)
    node = cluster.bucket("default").active_node("dr")
    cluster.drop(node, count=1, opcodes=["SET"])
    c = r.conn(node)
    c.sock.settimeout(0.3)
    vb = cluster.bucket("default").vbucket_of("dr")
    c.send(mc.SET, key="dr", value=b"dropped", extras=struct.pack(">II", 0, 0), vb=vb)
    with pytest.raises(socket.timeout):
        c.recv()
    assert cluster.bucket("default").get_doc("dr")[0] == b"dropped"     # executed, reply lost
    c.sock.settimeout(5)
    assert c.call(mc.NOOP).status == mc.SUCCESS
    r.close()


def test_drop_until_cleared(cluster):
    c = mc.connect(cluster.kv_ports[1], bucket="cache")
    cluster.drop(1)
    c.sock.settimeout(0.2)
    for i in range(2):
        c.send(mc.GET, key="x")
        with pytest.raises(socket.timeout):
            c.recv()
    cluster.clear_faults()
    c.sock.settimeout(5)
    assert c.call(mc.NOOP).status == mc.SUCCESS
    c.close()


def test_garbage(cluster):
    c = mc.connect(cluster.kv_ports[0], bucket="cache")
    cluster.garbage(0)
    c.send(mc.GET, key="x")
    raw = c.sock.recv(24)
    while len(raw) < 24:
        raw += c.sock.recv(24 - len(raw))
    assert raw[0] not in (0x81, 0x18)
    c.close()
    c = mc.connect(cluster.kv_ports[0], bucket="cache")
    assert c.get("x").status == mc.KEY_ENOENT      # count 1: next one is fine
    c.close()


def test_truncate(cluster):
    c = mc.connect(cluster.kv_ports[2], bucket="cache")
    c.set("t", b"a value long enough to be cut")
    cluster.truncate(2)
    c.send(mc.GET, key="t")
    with pytest.raises(mc.Closed):
        c.recv()
    assert 0 < len(c.buf) < 24 + 4 + len(b"a value long enough to be cut")
    c.close()


def test_inject_status(cluster):
    r = mc.Router(cluster)
    r.set("is", b"v")
    cluster.inject_status("ETMPFAIL", count=2, opcodes=["GET"])
    assert r.get("is").status == mc.ETMPFAIL
    assert r.get("is").status == mc.ETMPFAIL
    assert r.get("is").status == mc.SUCCESS
    node = cluster.bucket("default").active_node("is")
    other = (node + 1) % 4
    cluster.inject_status(0x85, count=1, node=other)
    assert r.get("is").status == mc.SUCCESS         # another node's fault
    cluster.inject_status(mc.NOT_MY_VBUCKET, node=node)
    res = r.set("is", b"w")
    assert res.status == mc.NOT_MY_VBUCKET and res.json()["name"] == "default"
    assert r.get("is").value == b"v"                 # not executed
    r.close()


def test_session_opcodes_not_faulted_by_default(cluster):
    cluster.drop(None)                               # every node, every data command
    c = mc.connect(cluster.kv_ports[0])              # handshake unaffected
    assert c.call(mc.NOOP).status == mc.SUCCESS
    cluster.clear_faults()
    cluster.inject_status("EBUSY", opcodes="all", node=0)
    assert c.call(mc.NOOP).status == 0x85
    c.close()


def test_persist_unpersist_state(cluster):
    cluster.set_delays(persist=float("inf"))
    r = mc.Router(cluster)
    r.set("p", b"v")
    vb, chain = r.chain("p")
    k = b"p"

    def state(node):
        res = r.conn(node).call(mc.OBSERVE, value=struct.pack(">HH", vb, 1) + k)
        return res.value[4 + 1]
    assert state(chain[0]) == 0x00
    assert cluster.persist("default", "p") is True
    assert state(chain[0]) == 0x01
    cluster.unpersist("default", b"p")
    assert state(chain[0]) == 0x00
    assert cluster.persist("default", "never-written") is False
    s = cluster.state()
    assert s["delays"]["persist"] == "inf"
    r.close()


def test_control_thread_safety(cluster):
    errors = []

    def worker(i):
        try:
            for j in range(20):
                cluster.inject_status("ETMPFAIL", count=1, node=i % 4, opcodes=["GET"])
                cluster.bucket("default").rev
        except Exception as e:   # noqa: BLE001
            errors.append(e)
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert len(cluster.state()["faults"]) == 80
    cluster.clear_faults()
    assert cluster.state()["faults"] == []


def test_bad_control_arguments(cluster):
    with pytest.raises(ValueError):
        cluster.failover(9)
    with pytest.raises(ValueError):
        cluster.move_vbuckets("default", [999], 1)
    with pytest.raises(KeyError):
        cluster.move_vbuckets("nosuch", [1], 1)
    with pytest.raises(ValueError):
        cluster.drop(0, count=0)
