"""couchbase_ffi.mock: the KV commands of a couchbase bucket, routing, replicas, observe, memcached buckets."""
import struct
import time

import pytest

import mock_client as mc
from couchbase_ffi.mock import BucketSpec, MockCluster

CAS_LOCKED = 0xffffffffffffffff


@pytest.fixture(scope="module")
def cluster():
    c = MockCluster(nodes=4, buckets=[BucketSpec("default", replicas=2, vbuckets=128),
                                      BucketSpec("cache", "memcached")],
                    persist_delay=0, replicate_delay=0)
    c.start()
    yield c
    c.stop()


@pytest.fixture
def r(cluster):
    router = mc.Router(cluster)
    yield router
    router.close()


@pytest.fixture
def key(request):
    return "k-" + request.node.name


def seqno_extras(resp):
    assert len(resp.extras) == 16
    return struct.unpack(">QQ", resp.extras)


def test_set_get_flags_cas(r, key):
    s = r.set(key, b"value", flags=0x02000000)
    assert s.status == mc.SUCCESS and s.cas
    vbuuid, seqno = seqno_extras(s)
    assert vbuuid and seqno >= 1
    g = r.get(key)
    assert g.status == mc.SUCCESS and g.value == b"value" and g.cas == s.cas
    assert struct.unpack(">I", g.extras)[0] == 0x02000000
    assert g.key == b""
    gk = r.get(key, op=mc.GETK)
    assert gk.key == key.encode() and gk.value == b"value"
    s2 = r.set(key, b"v2")
    assert s2.cas > s.cas and seqno_extras(s2)[1] == seqno + 1


def test_get_missing(r, key):
    assert r.get(key).status == mc.KEY_ENOENT


def test_add_replace(r, key):
    assert r.set(key, "a", op=mc.REPLACE).status == mc.KEY_ENOENT
    assert r.set(key, "a", op=mc.ADD).status == mc.SUCCESS
    assert r.set(key, "b", op=mc.ADD).status == mc.KEY_EEXISTS
    assert r.set(key, "c", op=mc.REPLACE).status == mc.SUCCESS
    assert r.get(key).value == b"c"


def test_cas_rules(r, key):
    assert r.set(key, "x", cas=12345).status == mc.KEY_ENOENT
    s = r.set(key, "x")
    assert r.set(key, "y", cas=s.cas + 1).status == mc.KEY_EEXISTS
    assert r.set(key, "y", cas=s.cas).status == mc.SUCCESS
    assert r.call(mc.DELETE, key, cas=s.cas).status == mc.KEY_EEXISTS
    assert r.get(key).value == b"y"


def test_delete(r, key):
    assert r.call(mc.DELETE, key).status == mc.KEY_ENOENT
    s = r.set(key, "x")
    d = r.call(mc.DELETE, key)
    assert d.status == mc.SUCCESS and d.cas > s.cas and len(d.extras) == 16
    assert r.get(key).status == mc.KEY_ENOENT
    assert r.set(key, "again", op=mc.ADD).status == mc.SUCCESS


def test_quiet_commands(r, key):
    vb, chain = r.chain(key)
    c = r.conn(chain[0])
    c.send(mc.SETQ, key=key, value=b"q", extras=struct.pack(">II", 0, 0), vb=vb)
    c.send(mc.GETQ, key=key + "-missing", vb=vb)
    c.send(mc.GETKQ, key=key, vb=vb)
    c.send(mc.ADDQ, key=key, value=b"q", extras=struct.pack(">II", 0, 0), vb=vb)    # fails: answered
    c.send(mc.DELETEQ, key=key + "-missing", vb=vb)                                 # fails: answered
    c.send(mc.INCRQ, key=key + "-n", extras=struct.pack(">QQI", 1, 5, 0), vb=vb)
    c.send(mc.APPENDQ, key=key, value=b"!", vb=vb)
    last = c.send(mc.NOOP)
    got = []
    while True:
        p = c.recv()
        got.append((p.opcode, p.status, p.key, p.value))
        if p.opaque == last:
            break
    assert got == [(mc.GETKQ, 0, key.encode(), b"q"), (mc.ADDQ, mc.KEY_EEXISTS, b"", b""),
                   (mc.DELETEQ, mc.KEY_ENOENT, b"", b""), (mc.NOOP, 0, b"", b"")]
    assert r.get(key).value == b"q!"
    assert r.get(key + "-n").value == b"5"
    c.send(mc.REPLACEQ, key=key, value=b"r", extras=struct.pack(">II", 0, 0), vb=vb)
    c.send(mc.PREPENDQ, key=key, value=b"<", vb=vb)
    c.send(mc.DECRQ, key=key + "-n", extras=struct.pack(">QQI", 2, 0, 0), vb=vb)
    c.send(mc.GATQ, key=key + "-missing", extras=struct.pack(">I", 0), vb=vb)         # miss: silent
    c.send(mc.GATQ, key=key, extras=struct.pack(">I", 0), vb=vb)                      # hit: answered
    c.send(mc.REPLACEQ, key=key + "-missing", value=b"r", extras=struct.pack(">II", 0, 0), vb=vb)
    last = c.send(mc.NOOP)
    got = []
    while True:
        p = c.recv()
        got.append((p.opcode, p.status, p.value))
        if p.opaque == last:
            break
    assert got == [(mc.GATQ, 0, b"<r"), (mc.REPLACEQ, mc.KEY_ENOENT, b""), (mc.NOOP, 0, b"")]
    assert r.get(key + "-n").value == b"3"


def test_incr_decr(r, key):
    assert r.call(mc.INCR, key, extras=struct.pack(">QQI", 1, 0, 0xffffffff)).status == mc.KEY_ENOENT
    c = r.call(mc.INCR, key, extras=struct.pack(">QQI", 3, 10, 0))
    assert c.status == mc.SUCCESS and struct.unpack(">Q", c.value)[0] == 10 and len(c.extras) == 16
    c = r.call(mc.INCR, key, extras=struct.pack(">QQI", 3, 10, 0))
    assert struct.unpack(">Q", c.value)[0] == 13
    assert r.get(key).value == b"13"
    c = r.call(mc.DECR, key, extras=struct.pack(">QQI", 100, 0, 0))
    assert struct.unpack(">Q", c.value)[0] == 0                    # clamps at 0
    r.set(key, str(2 ** 64 - 1))
    c = r.call(mc.INCR, key, extras=struct.pack(">QQI", 2, 0, 0))
    assert struct.unpack(">Q", c.value)[0] == 1                    # wraps
    r.set(key, "not a number")
    assert r.call(mc.INCR, key, extras=struct.pack(">QQI", 1, 0, 0)).status == mc.DELTA_BADVAL
    r.set(key, "7", flags=33)
    r.call(mc.DECR, key, extras=struct.pack(">QQI", 2, 0, 0))
    g = r.get(key)
    assert g.value == b"5" and struct.unpack(">I", g.extras)[0] == 33


def test_append_prepend(r, key):
    assert r.call(mc.APPEND, key, value=b"x").status == mc.NOT_STORED
    r.set(key, b"mid", flags=7)
    assert r.call(mc.APPEND, key, value=b">").status == mc.SUCCESS
    assert r.call(mc.PREPEND, key, value=b"<").status == mc.SUCCESS
    g = r.get(key)
    assert g.value == b"<mid>" and struct.unpack(">I", g.extras)[0] == 7
    assert r.call(mc.APPEND, key, value=b"!", cas=1).status == mc.KEY_EEXISTS


def test_touch_gat_expiry(cluster, r, key):
    r.set(key, b"v", exp=100)
    t = r.call(mc.TOUCH, key, extras=struct.pack(">I", 10))
    assert t.status == mc.SUCCESS and t.cas
    g = r.call(mc.GAT, key, extras=struct.pack(">I", 0))      # 0: never expires
    assert g.status == mc.SUCCESS and g.value == b"v"
    cluster.advance_time(200)
    assert r.get(key).status == mc.SUCCESS
    r.call(mc.TOUCH, key, extras=struct.pack(">I", 5))
    cluster.advance_time(6)
    assert r.get(key).status == mc.KEY_ENOENT
    assert r.call(mc.TOUCH, key, extras=struct.pack(">I", 5)).status == mc.KEY_ENOENT
    assert r.call(mc.GAT, key, extras=struct.pack(">I", 5)).status == mc.KEY_ENOENT


def test_absolute_expiry(cluster, r, key):
    r.set(key, b"v", exp=int(time.time()) + 3600)
    assert r.get(key).status == mc.SUCCESS
    r.set(key, b"v", exp=40 * 24 * 3600)     # absolute time in 1970: already expired
    assert r.get(key).status == mc.KEY_ENOENT


def test_lock(cluster, r, key):
    s = r.set(key, b"locked-doc")
    l = r.call(mc.GET_LOCKED, key, extras=struct.pack(">I", 5))
    assert l.status == mc.SUCCESS and l.value == b"locked-doc" and l.cas not in (0, s.cas, CAS_LOCKED)
    assert r.get(key).cas == CAS_LOCKED                                      # readers see -1
    assert r.call(mc.GET_LOCKED, key).status == mc.LOCKED
    assert r.set(key, b"x").status == mc.LOCKED
    assert r.set(key, b"x", cas=s.cas).status == mc.LOCKED
    assert r.call(mc.DELETE, key).status == mc.LOCKED
    assert r.call(mc.UNLOCK_KEY, key, cas=l.cas + 1).status == mc.LOCKED
    assert r.call(mc.UNLOCK_KEY, key, cas=l.cas).status == mc.SUCCESS
    assert r.call(mc.UNLOCK_KEY, key, cas=l.cas).status == mc.NOT_LOCKED
    assert r.get(key).cas == l.cas
    # a mutation with the lock CAS unlocks
    l2 = r.call(mc.GET_LOCKED, key)
    m = r.set(key, b"new", cas=l2.cas)
    assert m.status == mc.SUCCESS and r.get(key).cas == m.cas
    assert r.call(mc.UNLOCK_KEY, key + "-missing", cas=1).status == mc.KEY_ENOENT


def test_lock_without_xerror(cluster, key):
    r = mc.Router(cluster, features=[mc.F_SELECT_BUCKET, mc.F_JSON])
    try:
        r.set(key, b"v")
        l = r.call(mc.GET_LOCKED, key)
        assert r.call(mc.GET_LOCKED, key).status == mc.ETMPFAIL
        assert r.set(key, b"x").status == mc.KEY_EEXISTS
        assert r.call(mc.UNLOCK_KEY, key, cas=l.cas + 1).status == mc.ETMPFAIL
        assert r.call(mc.UNLOCK_KEY, key, cas=l.cas).status == mc.SUCCESS
        assert r.call(mc.UNLOCK_KEY, key, cas=l.cas).status == mc.ETMPFAIL
    finally:
        r.close()


def test_lock_timeouts(cluster, r, key):
    r.set(key, b"v")
    r.call(mc.GET_LOCKED, key, extras=struct.pack(">I", 2))
    cluster.advance_time(1)
    assert r.set(key, b"x").status == mc.LOCKED
    cluster.advance_time(1.5)
    assert r.set(key, b"x").status == mc.SUCCESS
    # 0 and anything above the 30 s maximum mean the 15 s default
    for ask in (0, 99):
        r.call(mc.GET_LOCKED, key, extras=struct.pack(">I", ask))
        cluster.advance_time(14)
        assert r.get(key).cas == CAS_LOCKED
        cluster.advance_time(1.5)
        assert r.get(key).cas != CAS_LOCKED
    r.call(mc.GET_LOCKED, key, extras=struct.pack(">I", 30))
    cluster.advance_time(29)
    assert r.get(key).cas == CAS_LOCKED
    cluster.advance_time(1.5)
    assert r.get(key).cas != CAS_LOCKED


def test_touch_locked(r, key):
    r.set(key, b"v")
    r.call(mc.GET_LOCKED, key)
    assert r.call(mc.TOUCH, key, extras=struct.pack(">I", 5)).status == mc.LOCKED


def test_get_meta(cluster, r, key):
    assert r.call(mc.GET_META, key).status == mc.KEY_ENOENT
    s = r.set(key, b'{"a":1}', flags=0x02000000, exp=3600)
    r.set(key, b'{"a":2}', flags=0x02000000, exp=3600)
    m = r.call(mc.GET_META, key, extras=b"\x02")
    assert m.status == mc.SUCCESS and m.cas > s.cas
    deleted, flags, exptime, revno, datatype = struct.unpack(">IIIQB", m.extras)
    assert (deleted, flags, revno, datatype) == (0, 0x02000000, 2, 1)
    assert abs(exptime - (time.time() + cluster.state()["time_offset"] + 3600)) < 60
    assert len(r.call(mc.GET_META, key).extras) == 20
    d = r.call(mc.DELETE, key)
    m = r.call(mc.GET_META, key)
    assert m.status == mc.SUCCESS and m.cas == d.cas and struct.unpack(">I", m.extras[:4])[0] == 1


def test_big_values(r, key):
    big = b"x" * (20 * 1024 * 1024)
    assert r.set(key, big).status == mc.SUCCESS
    assert r.get(key).value == big
    assert r.set(key, big + b"y").status == mc.E2BIG


def test_not_my_vbucket_with_config(cluster, r, key):
    vb, chain = r.chain(key)
    wrong = [n for n in range(4) if n not in chain][0]
    c = r.conn(wrong)
    res = c.set(key, b"v", vb=vb)
    assert res.status == mc.NOT_MY_VBUCKET and res.datatype == 1
    cfg = res.json()
    assert cfg["rev"] == cluster.bucket("default").rev and "$HOST" in res.value.decode()
    res = r.conn(chain[1]).get(key, vb=vb)         # a replica is not the active either
    assert res.status == mc.NOT_MY_VBUCKET
    assert r.conn(0).get(key, vb=500).status == mc.NOT_MY_VBUCKET   # no such vbucket


def test_get_replica(cluster, r, key):
    vb, chain = r.chain(key)
    s = r.set(key, b"replicated", flags=5)
    for i in (1, 2):
        deadline = time.time() + 2
        while True:
            g = r.call(mc.GET_REPLICA, key, replica=i)
            if g.status == mc.SUCCESS or time.time() > deadline:
                break
            time.sleep(0.01)
        assert g.status == mc.SUCCESS and g.value == b"replicated" and g.cas == s.cas
        assert struct.unpack(">I", g.extras)[0] == 5
        assert cluster.bucket("default").get_doc(key, node=chain[i]) == (b"replicated", 5, s.cas)
    assert r.call(mc.GET_REPLICA, key, replica=0).status == mc.NOT_MY_VBUCKET
    wrong = [n for n in range(4) if n not in chain][0]
    assert r.conn(wrong).call(mc.GET_REPLICA, key=key, vb=vb).status == mc.NOT_MY_VBUCKET


def observe(conn, vb, key):
    k = key.encode()
    res = conn.call(mc.OBSERVE, value=struct.pack(">HH", vb, len(k)) + k)
    assert res.status == mc.SUCCESS, res
    v = res.value
    rvb, klen = struct.unpack(">HH", v[:4])
    assert rvb == vb and v[4:4 + klen] == k
    state, cas = struct.unpack(">BQ", v[4 + klen:4 + klen + 9])
    return state, cas


def test_observe_with_frozen_persistence_and_replication(cluster, r, key):
    vb, chain = r.chain(key)
    cluster.set_delays(persist=float("inf"), replicate=float("inf"))
    try:
        s = r.set(key, b"v")
        assert observe(r.conn(chain[0]), vb, key) == (0x00, s.cas)       # in memory, not persisted
        assert observe(r.conn(chain[1]), vb, key) == (0x80, 0)           # not replicated yet
        cluster.set_delays(replicate=0)
        deadline = time.time() + 2
        while observe(r.conn(chain[1]), vb, key)[0] != 0x00 and time.time() < deadline:
            time.sleep(0.01)
        assert observe(r.conn(chain[1]), vb, key) == (0x00, s.cas)
        cluster.set_delays(persist=0)
        deadline = time.time() + 2
        while observe(r.conn(chain[2]), vb, key)[0] != 0x01 and time.time() < deadline:
            time.sleep(0.01)
        for node in chain:
            assert observe(r.conn(node), vb, key) == (0x01, s.cas)
        cluster.unpersist("default", key)
        assert observe(r.conn(chain[0]), vb, key) == (0x00, s.cas)
        assert cluster.persist("default", key) is True
        assert observe(r.conn(chain[0]), vb, key) == (0x01, s.cas)
        # a deletion: logically deleted until persisted
        cluster.set_delays(persist=float("inf"))
        d = r.call(mc.DELETE, key)
        assert observe(r.conn(chain[0]), vb, key) == (0x81, d.cas)
        cluster.persist("default", key)
        assert observe(r.conn(chain[0]), vb, key)[0] == 0x80
    finally:
        cluster.set_delays(persist=0, replicate=0)


def test_observe_many_keys_and_not_my_vbucket(cluster, r, key):
    vb, chain = r.chain(key)
    r.set(key, b"v")
    k = key.encode()
    other = key + "-absent"
    ovb, ochain = r.chain(other)
    payload = struct.pack(">HH", vb, len(k)) + k
    if ochain[0] == chain[0]:
        payload += struct.pack(">HH", ovb, len(other)) + other.encode()
    res = r.conn(chain[0]).call(mc.OBSERVE, value=payload)
    assert res.status == mc.SUCCESS and res.value.count(k) >= 1
    wrong = [n for n in range(4) if n not in chain][0]
    res = r.conn(wrong).call(mc.OBSERVE, value=struct.pack(">HH", vb, len(k)) + k)
    assert res.status == mc.NOT_MY_VBUCKET


def test_observe_seqno(cluster, r, key):
    vb, chain = r.chain(key)
    s = r.set(key, b"v")
    vbuuid, seqno = seqno_extras(s)
    cluster.persist("default", key)
    res = r.conn(chain[0]).call(mc.OBSERVE_SEQNO, vb=vb, value=struct.pack(">Q", vbuuid))
    assert res.status == mc.SUCCESS
    fmt, rvb, ruuid, persisted, current = struct.unpack(">BHQQQ", res.value)
    assert (fmt, rvb, ruuid) == (0, vb, vbuuid) and current >= seqno and persisted >= seqno
    res = r.conn([n for n in range(4) if n not in chain][0]).call(
        mc.OBSERVE_SEQNO, vb=vb, value=struct.pack(">Q", vbuuid))
    assert res.status == mc.NOT_MY_VBUCKET


def test_datatype_json_detected(r, key):
    r.set(key, b'{"a": [1, 2]}')
    assert r.get(key).datatype == 1
    r.set(key, b'{"a": [1, 2]')
    assert r.get(key).datatype == 0


def test_cas_unique_and_increasing(r, key):
    cas = [r.set("%s-%d" % (key, i), b"v").cas for i in range(30)]
    assert cas == sorted(cas) and len(set(cas)) == 30


def test_flush_couchbase_not_over_kv(r):
    assert r.conn(0).call(mc.FLUSH).status == mc.NOT_SUPPORTED


# -- memcached buckets ----------------------------------------------------------------------
def test_memcached_bucket_any_key_any_node(cluster, key):
    conns = [mc.connect(p, bucket="cache") for p in cluster.kv_ports]
    try:
        for i, c in enumerate(conns):
            s = c.set(key, b"node%d" % i, flags=3)
            assert s.status == mc.SUCCESS
            assert len(s.extras) == 16
        for i, c in enumerate(conns):
            g = c.get(key)
            assert g.value == b"node%d" % i        # each node keeps its own copy: ketama is the client's job
        assert cluster.bucket("cache").get_doc(key, node=2)[0] == b"node2"
        c = conns[1]
        assert c.counter(key + "-n", 2, initial=1).status == mc.SUCCESS
        assert c.call(mc.APPEND, key=key, value=b"!").status == mc.SUCCESS
        assert c.call(mc.TOUCH, key=key, extras=struct.pack(">I", 100)).status == mc.SUCCESS
        assert c.call(mc.GET_LOCKED, key=key).status == mc.NOT_SUPPORTED
        assert c.call(mc.GET_REPLICA, key=key).status == mc.NOT_SUPPORTED
        assert c.call(mc.OBSERVE, value=b"").status == mc.NOT_SUPPORTED
        assert c.call(mc.FLUSH).status == mc.SUCCESS
        assert c.get(key).status == mc.KEY_ENOENT
        assert conns[0].get(key).status == mc.SUCCESS
    finally:
        for c in conns:
            c.close()


def test_observe_with_a_persist_delay(key):
    with MockCluster(nodes=2, buckets=[BucketSpec("default", replicas=1, vbuckets=8)],
                     persist_delay=0.5, replicate_delay=0) as cluster:
        r = mc.Router(cluster)
        vb, chain = r.chain(key)
        s = r.set(key, b"v")
        assert observe(r.conn(chain[0]), vb, key) == (0x00, s.cas)
        deadline = time.time() + 10
        while observe(r.conn(chain[0]), vb, key)[0] != 0x01 and time.time() < deadline:
            time.sleep(0.02)
        assert observe(r.conn(chain[0]), vb, key) == (0x01, s.cas)
        deadline = time.time() + 10
        while observe(r.conn(chain[1]), vb, key)[0] != 0x01 and time.time() < deadline:
            time.sleep(0.02)
        assert observe(r.conn(chain[1]), vb, key) == (0x01, s.cas)
        r.close()
