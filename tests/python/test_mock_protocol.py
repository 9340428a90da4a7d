"""couchbase_ffi.mock over the wire: handshake, SASL, buckets, configs, framing errors."""
import json
import struct

import pytest

import mock_client as mc
from couchbase_ffi.mock import BucketSpec, MockCluster


@pytest.fixture(scope="module")
def cluster():
    c = MockCluster(nodes=4, buckets=[BucketSpec("default", replicas=2, vbuckets=64),
                                      BucketSpec("secret", password="s3cret", replicas=1, vbuckets=16),
                                      BucketSpec("cache", "memcached")],
                    users={"Administrator": "password", "alice": ("apw", ["secret"])})
    c.start()
    yield c
    c.stop()


def test_import_does_not_need_the_extension():
    import subprocess
    import sys
    code = ("import sys; sys.modules['couchbase_ffi._lowlevel'] = None; "
            "import couchbase_ffi.mock as m; print(m.MockCluster.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "MockCluster", out.stderr


def test_hello_accepts_only_implemented_features(cluster):
    c = mc.Conn(cluster.kv_ports[0])
    got = c.hello(mc.ALL_FEATURES)
    for f in (mc.F_XERROR, mc.F_SELECT_BUCKET, mc.F_TCPNODELAY, mc.F_MUTATION_SEQNO, mc.F_JSON, mc.F_ALT):
        assert f in got
    for f in (mc.F_COLLECTIONS, mc.F_SNAPPY, mc.F_XATTR, mc.F_SYNC, mc.F_UNORDERED, 0x1e, 0x1f):
        assert f not in got
    assert len(got) == len(set(got))
    c.close()


def test_hello_agent_json_and_order_kept(cluster):
    c = mc.Conn(cluster.kv_ports[1])
    got = c.hello([mc.F_JSON, mc.F_XERROR, mc.F_COLLECTIONS, mc.F_TCPNODELAY],
                  agent=b'{"a":"x/1.0","i":"abc/def"}')
    assert got == [mc.F_JSON, mc.F_XERROR, mc.F_TCPNODELAY]
    c.close()


def test_clustermap_notification_needs_duplex(cluster):
    c = mc.Conn(cluster.kv_ports[0])
    assert mc.F_CCN not in c.hello([mc.F_CCN, mc.F_XERROR])
    c.close()


def test_list_mechs(cluster):
    c = mc.Conn(cluster.kv_ports[0])
    c.hello()
    r = c.call(mc.SASL_LIST_MECHS)
    assert r.status == mc.SUCCESS
    assert r.value == b"SCRAM-SHA512 SCRAM-SHA256 SCRAM-SHA1 PLAIN"
    c.close()


@pytest.mark.parametrize("mech", ["SCRAM-SHA1", "SCRAM-SHA256", "SCRAM-SHA512", "PLAIN"])
def test_sasl_success_and_failure(cluster, mech):
    c = mc.Conn(cluster.kv_ports[2])
    c.hello()
    assert c.auth("Administrator", "password", mech) == mc.SUCCESS   # SCRAM: server signature checked
    assert c.auth("Administrator", "wrong", mech) == mc.AUTH_ERROR
    assert c.auth("nobody", "password", mech) == mc.AUTH_ERROR
    assert c.auth("secret", "s3cret", mech) == mc.SUCCESS
    c.close()


def test_scram_bad_proof_and_bad_nonce(cluster):
    c = mc.Conn(cluster.kv_ports[0])
    c.hello()
    r = c.call(mc.SASL_AUTH, key="SCRAM-SHA256", value=b"n,,n=Administrator,r=abcdef")
    assert r.status == mc.AUTH_CONTINUE
    nonce = dict(p.split("=", 1) for p in r.value.decode().split(","))["r"]
    r = c.call(mc.SASL_STEP, key="SCRAM-SHA256", value=("c=biws,r=%s,p=AAAA" % nonce).encode())
    assert r.status == mc.AUTH_ERROR
    r = c.call(mc.SASL_AUTH, key="SCRAM-SHA256", value=b"n,,n=Administrator,r=abcdef")
    r = c.call(mc.SASL_STEP, key="SCRAM-SHA256", value=b"c=biws,r=othernonce,p=AAAA")
    assert r.status == mc.AUTH_ERROR
    assert c.call(mc.SASL_STEP, key="SCRAM-SHA256", value=b"c=biws").status == mc.EINVAL
    assert c.call(mc.SASL_AUTH, key="CRAM-MD5", value=b"").status == mc.AUTH_ERROR
    c.close()


def test_unknown_user_gets_a_challenge_then_fails(cluster):
    c = mc.Conn(cluster.kv_ports[0])
    c.hello()
    r = c.call(mc.SASL_AUTH, key="SCRAM-SHA512", value=b"n,,n=ghost,r=nonce1")
    assert r.status == mc.AUTH_CONTINUE       # no user enumeration
    assert c.auth("ghost", "x", "SCRAM-SHA512") == mc.AUTH_ERROR
    c.close()


def test_empty_bucket_password(cluster):
    c = mc.Conn(cluster.kv_ports[0])
    c.hello()
    assert c.auth("default", "", "SCRAM-SHA1") == mc.SUCCESS
    assert c.auth("default", "x", "PLAIN") == mc.AUTH_ERROR
    c.close()


def test_data_before_auth_is_eaccess(cluster):
    c = mc.Conn(cluster.kv_ports[0])
    c.hello()
    assert c.get("k").status == mc.EACCESS
    assert c.call(mc.GET_CLUSTER_CONFIG).status == mc.EACCESS
    assert c.call(mc.NOOP).status == mc.SUCCESS
    c.close()


def test_without_xerror_eaccess_closes(cluster):
    c = mc.Conn(cluster.kv_ports[0])
    c.hello([mc.F_SELECT_BUCKET])
    c.send(mc.GET, key="k")
    assert c.closed_by_peer()
    c.close()


def test_no_bucket_selected(cluster):
    c = mc.connect(cluster.kv_ports[0], bucket=None)
    assert c.get("k").status == mc.NO_BUCKET
    c.close()


def test_select_bucket(cluster):
    c = mc.connect(cluster.kv_ports[0], bucket=None)
    assert c.select("default") == mc.SUCCESS
    assert c.select("cache") == mc.SUCCESS
    assert c.select("nosuch") == mc.EACCESS
    assert c.select("@no bucket@") == mc.SUCCESS
    assert c.get("k").status == mc.NO_BUCKET
    c.close()
    c = mc.connect(cluster.kv_ports[0], user="alice", password="apw", bucket=None)
    assert c.select("secret") == mc.SUCCESS
    assert c.select("default") == mc.EACCESS
    c.close()
    c = mc.connect(cluster.kv_ports[0], user="secret", password="s3cret", bucket=None)
    assert c.select("default") == mc.EACCESS
    c.close()


def test_bucket_user_gets_its_bucket_selected(cluster):
    c = mc.connect(cluster.kv_ports[1], user="secret", password="s3cret", bucket=None)
    cfg = c.config()
    assert cfg["name"] == "secret"
    c.close()


def test_select_bucket_eaccess_without_xerror_closes(cluster):
    c = mc.connect(cluster.kv_ports[0], bucket=None, features=[mc.F_SELECT_BUCKET])
    c.send(mc.SELECT_BUCKET, key="nosuch")
    assert c.closed_by_peer()


def test_error_map(cluster):
    c = mc.connect(cluster.kv_ports[0], bucket=None)
    r = c.call(mc.GET_ERROR_MAP, value=struct.pack(">H", 2))
    assert r.status == mc.SUCCESS
    m = r.json()
    assert m["version"] == 2 and m["revision"] >= 1
    assert m["errors"]["7"]["name"] == "NOT_MY_VBUCKET"
    assert "retry-now" in m["errors"]["86"]["attrs"]
    assert c.call(mc.GET_ERROR_MAP, value=struct.pack(">H", 1)).json()["version"] == 1
    assert c.call(mc.GET_ERROR_MAP, value=b"\x01").status == mc.EINVAL
    c.close()


def test_version_noop_unknown(cluster):
    c = mc.connect(cluster.kv_ports[0])
    r = c.call(mc.VERSION)
    assert r.status == mc.SUCCESS and r.value.split(b".")[0].isdigit()
    assert c.call(mc.NOOP).status == mc.SUCCESS
    assert c.call(0xba).status == mc.UNKNOWN_COMMAND     # GET_COLLECTIONS_MANIFEST: no collections
    assert c.call(0x77).status == mc.UNKNOWN_COMMAND
    assert c.call(mc.NOOP).status == mc.SUCCESS          # still usable
    c.close()


def test_bucket_config_over_kv(cluster):
    c = mc.connect(cluster.kv_ports[2])
    r = c.call(mc.GET_CLUSTER_CONFIG)
    assert r.datatype == 1                     # JSON negotiated
    assert b"$HOST" in r.value                 # left for the client to replace
    cfg = r.json()
    assert cfg["name"] == "default" and cfg["nodeLocator"] == "vbucket" and cfg["bucketType"] == "membase"
    assert cfg["rev"] == cluster.bucket("default").rev and "revEpoch" in cfg
    caps = cfg["bucketCapabilities"]
    assert "cccp" in caps and "nodesExt" in caps
    assert "collections" not in caps and "durableWrite" not in caps
    m = cfg["vBucketServerMap"]
    assert m["hashAlgorithm"] == "CRC" and m["numReplicas"] == 2
    assert m["serverList"] == ["$HOST:%d" % p for p in cluster.kv_ports]
    assert len(m["vBucketMap"]) == 64 and all(len(ch) == 3 for ch in m["vBucketMap"])
    assert "vBucketMapForward" not in m
    for chain in m["vBucketMap"]:
        assert len(set(chain)) == 3 and all(0 <= i < 4 for i in chain)
    actives = [ch[0] for ch in m["vBucketMap"]]
    assert sorted(set(actives)) == [0, 1, 2, 3] and max(actives.count(i) for i in range(4)) == 16
    firsts = [ch[1] for ch in m["vBucketMap"] if ch[0] == 0]
    assert len(set(firsts)) > 1               # replicas of a node spread over the others
    ext = cfg["nodesExt"]
    assert [e["services"]["kv"] for e in ext] == cluster.kv_ports
    assert all(e["services"]["mgmt"] == cluster.rest_port for e in ext)
    assert [e.get("thisNode", False) for e in ext] == [False, False, True, False]
    assert all(e.get("hostname", "$HOST") == "$HOST" for e in ext)
    assert [n["ports"]["direct"] for n in cfg["nodes"]] == cluster.kv_ports
    assert cfg["nodes"][0]["hostname"] == "$HOST:%d" % cluster.rest_port
    c.close()


def test_config_matches_introspection(cluster):
    c = mc.connect(cluster.kv_ports[0])
    cfg = c.config()
    b = cluster.bucket("default")
    for key in ("Hello", "foo", "counter", "x" * 200):
        vb = b.vbucket_of(key)
        chain = cfg["vBucketServerMap"]["vBucketMap"][vb]
        assert chain[0] == b.active_node(key) and chain[1:] == b.replica_nodes(key)
    assert cluster.bucket("default").vbucket_of("Hello") == mc.vbucket_of("Hello", 64)
    c.close()


def test_vbucket_of_test_vectors():
    from couchbase_ffi.mock import vbucket_of
    assert vbucket_of("Hello", 1024) == 977
    assert vbucket_of(b"foo", 1024) == 115
    assert vbucket_of("counter", 1024) == 290


def test_config_with_known_version(cluster):
    c = mc.connect(cluster.kv_ports[0], features=mc.DEFAULT_FEATURES + [mc.F_CONFIG_KNOWN_VERSION])
    cfg = c.config()
    same = c.call(mc.GET_CLUSTER_CONFIG, extras=struct.pack(">qq", cfg["revEpoch"], cfg["rev"]))
    assert same.status == mc.SUCCESS and same.value == b""
    older = c.call(mc.GET_CLUSTER_CONFIG, extras=struct.pack(">qq", cfg["revEpoch"], cfg["rev"] - 1))
    assert older.json()["rev"] == cfg["rev"]
    c.close()
    c = mc.connect(cluster.kv_ports[0])   # feature not negotiated: extras are invalid
    assert c.call(mc.GET_CLUSTER_CONFIG, extras=b"\0" * 16).status == mc.EINVAL
    c.close()


def test_global_config_without_bucket(cluster):
    c = mc.connect(cluster.kv_ports[3], bucket=None)
    cfg = c.config()
    assert "vBucketServerMap" not in cfg and "name" not in cfg
    assert [e["services"]["kv"] for e in cfg["nodesExt"]] == cluster.kv_ports
    assert cfg["nodesExt"][3].get("thisNode") is True
    c.close()
    c = mc.connect(cluster.kv_ports[3], user="alice", password="apw", bucket=None)
    assert c.call(mc.GET_CLUSTER_CONFIG).status == mc.NO_BUCKET
    c.close()


def test_memcached_bucket_config(cluster):
    c = mc.connect(cluster.kv_ports[1], bucket="cache")
    cfg = c.config()
    assert cfg["nodeLocator"] == "ketama" and cfg["bucketType"] == "memcached"
    assert cfg["bucketCapabilities"] == ["cbhello", "nodesExt"]
    assert "vBucketServerMap" not in cfg
    assert [n["ports"]["direct"] for n in cfg["nodes"]] == cluster.kv_ports
    c.close()


def test_flexible_framing(cluster):
    c = mc.connect(cluster.kv_ports[0])
    b = cluster.bucket("default")
    node = b.active_node("ff")
    c.close()
    c = mc.connect(cluster.kv_ports[node])
    vb = b.vbucket_of("ff")
    # a barrier frame (id 0, len 0) and a preserve-TTL frame (id 5, len 0)
    r = c.call(mc.SET, key="ff", value="v", extras=struct.pack(">II", 1, 0), vb=vb, frames=b"\x00\x50")
    assert r.status == mc.SUCCESS and r.magic == 0x81
    assert c.get("ff", vb=vb).value == b"v"
    # durability frame (id 1): durable writes are not implemented
    r = c.call(mc.SET, key="ff", value="v", extras=struct.pack(">II", 1, 0), vb=vb, frames=b"\x11\x01")
    assert r.status == mc.NOT_SUPPORTED
    c.close()


def test_flexible_framing_needs_hello(cluster):
    c = mc.connect(cluster.kv_ports[0], features=[mc.F_XERROR, mc.F_SELECT_BUCKET])
    c.send(mc.GET, key="k", frames=b"\x00")
    r = c.recv()
    assert r.status == mc.EINVAL
    assert c.closed_by_peer()


@pytest.mark.parametrize("raw", [
    struct.pack(">BBHBBHIIQ", 0x42, 0x00, 0, 0, 0, 0, 0, 7, 0),                  # bad magic
    struct.pack(">BBHBBHIIQ", 0x80, 0x00, 10, 4, 0, 0, 5, 7, 0) + b"x" * 5,      # key+extras > body
    struct.pack(">BBHBBHIIQ", 0x80, 0x00, 251, 0, 0, 0, 251, 7, 0) + b"k" * 251,  # key too long
])
def test_malformed_packets_get_einval_and_close(cluster, raw):
    c = mc.connect(cluster.kv_ports[0])
    c.sock.sendall(raw)
    r = c.recv()
    assert r.status == mc.EINVAL and r.opaque == 7
    assert c.closed_by_peer()


def test_bad_extras_keep_connection(cluster):
    c = mc.connect(cluster.kv_ports[0])
    assert c.call(mc.SET, key="k", value="v", extras=b"\0\0").status == mc.EINVAL
    assert c.call(mc.NOOP).status == mc.SUCCESS
    c.close()


def test_stat_groups(cluster):
    c = mc.connect(cluster.kv_ports[0])
    opaque = c.send(mc.STAT)
    stats = {}
    while True:
        r = c.recv()
        assert r.opaque == opaque and r.status == mc.SUCCESS
        if not r.key:
            break
        stats[r.key.decode()] = r.value.decode()
    assert int(stats["vb_active_num"]) == 16 and int(stats["vb_replica_num"]) == 32
    assert "curr_items" in stats and "uptime" in stats and "pid" in stats
    c.send(mc.STAT, key="vbucket")
    states = {}
    while True:
        r = c.recv()
        if not r.key:
            break
        states[r.key.decode()] = r.value.decode()
    assert len(states) == 48 and set(states.values()) == {"active", "replica"}
    assert c.call(mc.STAT, key="no-such-group").status == mc.KEY_ENOENT
    c.close()


def test_stat_key(cluster):
    r = mc.Router(cluster)
    r.set("statkey", "v", flags=9)
    vb, chain = r.chain("statkey")
    c = r.conn(chain[0])
    c.send(mc.STAT, key="key statkey %d" % vb)
    stats = {}
    while True:
        p = c.recv()
        if not p.key:
            break
        stats[p.key.decode()] = p.value.decode()
    assert stats["key_flags"] == "9" and stats["key_vb_state"] == "active"
    r.close()


def test_quit(cluster):
    c = mc.connect(cluster.kv_ports[0])
    assert c.call(mc.QUIT).status == mc.SUCCESS
    assert c.closed_by_peer()


def test_json_datatype_only_when_negotiated(cluster):
    r = mc.Router(cluster)
    assert r.set("jdoc", json.dumps({"a": 1})).status == mc.SUCCESS
    assert r.get("jdoc").datatype == 1
    r.close()
    r = mc.Router(cluster, features=[mc.F_XERROR, mc.F_SELECT_BUCKET])
    got = r.get("jdoc")
    assert got.datatype == 0 and got.value == b'{"a": 1}'
    assert r.call(mc.SET, "jdoc", value=b"{}", extras=b"\0" * 8, datatype=1).status == mc.EINVAL
    r.close()


def test_random_bytes_do_not_hurt_the_node(cluster):
    import random
    rnd = random.Random(1234)
    for i in range(30):
        c = mc.Conn(cluster.kv_ports[3], timeout=2)
        if i % 2:
            c.hello()
        blob = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 200)))
        if i % 3 == 0:
            blob = b"\x80" + blob        # a request magic, then nonsense
        try:
            c.sock.sendall(blob)
            c.sock.shutdown(1)
            c.closed_by_peer(2)
        except OSError:
            pass
        c.close()
    c = mc.connect(cluster.kv_ports[3])
    assert c.call(mc.NOOP).status == mc.SUCCESS
    c.close()


def test_rest_survives_bad_requests(cluster):
    import socket
    for raw in (b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nContent-Length: zz\r\n\r\n",
                b"GET /pools HTTP/1.1\r\nContent-Length: -5\r\n\r\n", b"\x00" * 100):
        s = socket.create_connection(("127.0.0.1", cluster.rest_port), 2)
        s.sendall(raw)
        s.shutdown(1)
        try:
            s.recv(4096)
        except OSError:
            pass
        s.close()
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", cluster.rest_port, timeout=5)
    conn.request("GET", "/pools", headers={"Authorization": "Basic QWRtaW5pc3RyYXRvcjpwYXNzd29yZA=="})
    assert conn.getresponse().status == 200
    conn.close()
