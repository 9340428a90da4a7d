"""couchbase_ffi.mock: sub-document commands on the wire (kv_engine docs/SubDocument.md).

The packets are built here from the protocol description, not with the mock's code."""
import json
import struct

import pytest

import mock_client as mc
from couchbase_ffi.mock import BucketSpec, MockCluster

MULTI_LOOKUP, MULTI_MUTATION = 0xd0, 0xd1
SD_GET, SD_EXISTS, SD_ADD, SD_UPSERT, SD_DELETE, SD_REPLACE = 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca
SD_PUSH_LAST, SD_PUSH_FIRST, SD_INSERT, SD_UNIQUE, SD_COUNTER, SD_COUNT = (
    0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd2)
DOC_GET, DOC_SET, DOC_DELETE = 0x00, 0x01, 0x04
ENOENT, MISMATCH, EINVAL, E2BIG, DOC_E2DEEP, CANTINSERT, NOTJSON, NUM_ERANGE, DELTA_EINVAL, \
    EEXISTS, VALUE_ETOODEEP, INVALID_COMBO, MULTI_FAILURE = range(0xc0, 0xcd)
MKDIR_P = 0x01
MKDOC, ADD = 0x01, 0x02


@pytest.fixture(scope="module")
def cluster():
    c = MockCluster(nodes=2, buckets=[BucketSpec("default", replicas=1, vbuckets=64)],
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
    return "sd-" + request.node.name


def lookup(r, key, *specs, docflags=None, replica=0):
    body = b"".join(struct.pack(">BBH", op, flags, len(p)) + p
                    for op, p, flags in ((s[0], s[1].encode(), s[2] if len(s) > 2 else 0)
                                         for s in specs))
    extras = b"" if docflags is None else bytes([docflags])
    resp = r.call(MULTI_LOOKUP, key, replica=replica, value=body, extras=extras)
    out, i, v = [], 0, resp.value
    if resp.status in (0, MULTI_FAILURE):
        while i < len(v):
            st, n = struct.unpack_from(">HI", v, i)
            out.append((st, v[i + 6:i + 6 + n]))
            i += 6 + n
    return resp, out


def mutate(r, key, *specs, docflags=None, exp=None, cas=0):
    body = b""
    for s in specs:
        op, path = s[0], s[1].encode()
        value = s[2].encode() if len(s) > 2 and s[2] is not None else b""
        flags = s[3] if len(s) > 3 else 0
        body += struct.pack(">BBHI", op, flags, len(path), len(value)) + path + value
    extras = b""
    if exp is not None:
        extras += struct.pack(">I", exp)
    if docflags is not None:
        extras += bytes([docflags])
    resp = r.call(MULTI_MUTATION, key, value=body, extras=extras, cas=cas)
    out, i, v = [], 0, resp.value
    if resp.status == 0:
        while i < len(v):
            ix, st, n = struct.unpack_from(">BHI", v, i)
            out.append((ix, st, v[i + 7:i + 7 + n]))
            i += 7 + n
    elif resp.status == MULTI_FAILURE:
        assert len(v) == 3
        out = [struct.unpack(">BH", v)]
    return resp, out


def put(r, key, doc):
    assert r.set(key, json.dumps(doc)).status == mc.SUCCESS


def body_of(r, key):
    g = r.get(key)
    assert g.status == 0
    return json.loads(g.value)


DOC = {"name": "Ada", "tags": ["a", "b", "c"], "nest": {"deep": {"x": 1}}, "n": 5,
       "dot.ted": {"k": True}, "back`tick": 7, "empty": []}


def test_lookup_get_exists_count(r, key):
    put(r, key, DOC)
    resp, res = lookup(r, key, (SD_GET, "name"), (SD_GET, "tags[1]"), (SD_GET, "tags[-1]"),
                       (SD_EXISTS, "nest.deep.x"), (SD_COUNT, "tags"), (SD_COUNT, "nest"),
                       (SD_GET, "`dot.ted`.k"), (SD_GET, "`back``tick`"), (DOC_GET, ""))
    assert resp.status == 0 and resp.cas == r.get(key).cas
    assert res[:8] == [(0, b'"Ada"'), (0, b'"b"'), (0, b'"c"'), (0, b""), (0, b"3"), (0, b"1"),
                       (0, b"true"), (0, b"7")]
    assert json.loads(res[8][1]) == DOC


def test_lookup_partial_failure(r, key):
    put(r, key, DOC)
    resp, res = lookup(r, key, (SD_GET, "name"), (SD_GET, "missing"), (SD_GET, "name[0]"),
                       (SD_GET, "tags[9]"), (SD_GET, "a..b"), (SD_COUNT, "n"), (SD_EXISTS, "nope"))
    assert resp.status == MULTI_FAILURE
    assert [st for st, _ in res] == [0, ENOENT, MISMATCH, ENOENT, EINVAL, MISMATCH, ENOENT]
    assert res[0][1] == b'"Ada"' and all(v == b"" for _, v in res[1:])


def test_lookup_doc_level(r, key):
    assert lookup(r, key, (SD_GET, "a"))[0].status == mc.KEY_ENOENT
    assert r.set(key, b"not json").status == 0
    resp, res = lookup(r, key, (SD_GET, "a"), (DOC_GET, ""))
    assert resp.status == MULTI_FAILURE and res == [(NOTJSON, b""), (0, b"not json")]
    put(r, key, DOC)
    assert lookup(r, key, (SD_GET, "a"), (SD_UPSERT, "b"))[0].status == INVALID_COMBO
    assert lookup(r, key, *[(SD_GET, "name")] * 17)[0].status == INVALID_COMBO
    assert lookup(r, key, *[(SD_GET, "name")] * 16)[0].status == 0
    assert lookup(r, key, (SD_GET, "a", 0x04))[0].status == mc.EINVAL   # xattrs: not in the mock
    assert lookup(r, key, (SD_GET, "name"), docflags=MKDOC)[0].status == mc.EINVAL


def test_path_limits(r, key):
    put(r, key, DOC)
    deep = ".".join(["a"] * 33)
    _, res = lookup(r, key, (SD_GET, deep), (SD_GET, "x" * 1025), (SD_GET, "[0"), (SD_GET, "a[-2]"),
                    (SD_GET, "`open"))
    assert [st for st, _ in res] == [E2BIG, E2BIG, EINVAL, EINVAL, EINVAL]


def test_mutations_dict(r, key):
    put(r, key, {"a": 1})
    resp, res = mutate(r, key, (SD_ADD, "b", '"two"'), (SD_UPSERT, "a", "[1]"),
                       (SD_UPSERT, "c.d.e", "{}", MKDIR_P), (SD_REPLACE, "b", '"2"'))
    assert resp.status == 0 and res == [] and resp.cas
    assert len(resp.extras) == 16      # mutation token (MUTATION_SEQNO negotiated)
    assert body_of(r, key) == {"a": [1], "b": "2", "c": {"d": {"e": {}}}}
    assert r.get(key).cas == resp.cas


def test_mutation_failure_is_atomic(r, key):
    put(r, key, {"a": 1, "arr": [1]})
    before = r.get(key)
    resp, res = mutate(r, key, (SD_UPSERT, "z", "1"), (SD_ADD, "a", "2"), (SD_UPSERT, "q", "x"))
    assert resp.status == MULTI_FAILURE and res == [(1, EEXISTS)]
    after = r.get(key)
    assert after.value == before.value and after.cas == before.cas
    cases = [((SD_UPSERT, "x.y", "1"), ENOENT), ((SD_UPSERT, "arr.k", "1"), MISMATCH),
             ((SD_UPSERT, "arr[0]", "1"), EINVAL), ((SD_REPLACE, "nope", "1"), ENOENT),
             ((SD_UPSERT, "v", "{bad"), CANTINSERT), ((SD_DELETE, "nope"), ENOENT),
             ((SD_UPSERT, "arr[3].x", "1"), ENOENT), ((SD_UPSERT, "", "1"), EINVAL)]
    for spec, status in cases:
        assert mutate(r, key, spec)[1] == [(0, status)], spec


def test_arrays(r, key):
    put(r, key, {"arr": [2], "mixed": [1, {"o": 1}]})
    resp, _ = mutate(r, key, (SD_PUSH_LAST, "arr", "3,4"), (SD_PUSH_FIRST, "arr", "0"),
                     (SD_INSERT, "arr[1]", '"i"'), (SD_UNIQUE, "arr", "9"),
                     (SD_PUSH_LAST, "new.list", "1", MKDIR_P), (SD_INSERT, "arr[6]", "true"))
    assert resp.status == 0
    assert body_of(r, key)["arr"] == [0, "i", 2, 3, 4, 9, True]
    assert body_of(r, key)["new"] == {"list": [1]}
    assert mutate(r, key, (SD_PUSH_FIRST, "arr", "[0]"))[0].status == 0
    assert mutate(r, key, (SD_UNIQUE, "arr", "3"))[1] == [(0, MISMATCH)]   # [0] is not primitive
    put(r, key, {"p": [1, "a"], "mixed": [1, {"o": 1}]})
    assert mutate(r, key, (SD_UNIQUE, "p", "1"))[1] == [(0, EEXISTS)]
    assert mutate(r, key, (SD_UNIQUE, "p", '"1"'))[0].status == 0     # compared as JSON text
    assert mutate(r, key, (SD_UNIQUE, "p", "[1]"))[1] == [(0, CANTINSERT)]
    assert mutate(r, key, (SD_UNIQUE, "mixed", "2"))[1] == [(0, MISMATCH)]
    assert mutate(r, key, (SD_INSERT, "p[-1]", "1"))[1] == [(0, EINVAL)]
    assert mutate(r, key, (SD_INSERT, "p[5]", "1"))[1] == [(0, ENOENT)]
    assert mutate(r, key, (SD_INSERT, "p", "1"))[1] == [(0, EINVAL)]
    assert mutate(r, key, (SD_PUSH_LAST, "mixed[1]", "1"))[1] == [(0, MISMATCH)]
    assert mutate(r, key, (SD_DELETE, "p[-1]"))[0].status == 0
    assert body_of(r, key)["p"] == [1, "a"]   # the "1" added above was last


def test_counter(r, key):
    put(r, key, {"n": 5, "s": "x", "big": 2 ** 64, "f": 1.5})
    resp, res = mutate(r, key, (SD_COUNTER, "n", "10"), (SD_UPSERT, "u", "1"),
                       (SD_COUNTER, "c", "-3"), (SD_COUNTER, "d.e", "7", MKDIR_P))
    assert resp.status == 0 and res == [(0, 0, b"15"), (2, 0, b"-3"), (3, 0, b"7")]
    for spec, status in [((SD_COUNTER, "s", "1"), MISMATCH), ((SD_COUNTER, "f", "1"), MISMATCH),
                         ((SD_COUNTER, "big", "1"), NUM_ERANGE), ((SD_COUNTER, "n", "0"), DELTA_EINVAL),
                         ((SD_COUNTER, "n", '"1"'), DELTA_EINVAL), ((SD_COUNTER, "n", "1.5"), DELTA_EINVAL),
                         ((SD_COUNTER, "n", str(2 ** 63)), DELTA_EINVAL),
                         ((SD_COUNTER, "x.y", "1"), ENOENT)]:
        assert mutate(r, key, spec)[1] == [(0, status)], spec
    put(r, key, {"n": 2 ** 63 - 1})
    assert mutate(r, key, (SD_COUNTER, "n", "1"))[1] == [(0, CANTINSERT)]


def test_doc_flags_cas_expiry(r, key):
    assert mutate(r, key, (SD_UPSERT, "a", "1"))[0].status == mc.KEY_ENOENT
    resp, _ = mutate(r, key, (SD_UPSERT, "a.b", "1"), docflags=MKDOC)
    assert resp.status == 0 and body_of(r, key) == {"a": {"b": 1}}
    assert mutate(r, key, (SD_UPSERT, "x", "1"), docflags=ADD)[0].status == mc.KEY_EEXISTS
    assert mutate(r, key, (SD_UPSERT, "x", "1"), docflags=ADD | MKDOC)[0].status == mc.EINVAL
    assert mutate(r, key + "2", (SD_PUSH_LAST, "", "1"), docflags=ADD)[0].status == 0
    assert body_of(r, key + "2") == [1]
    cas = r.get(key).cas
    assert mutate(r, key, (SD_UPSERT, "c", "1"), cas=cas + 1)[0].status == mc.KEY_EEXISTS
    resp, _ = mutate(r, key, (SD_UPSERT, "c", "1"), cas=cas, exp=100)
    assert resp.status == 0 and resp.cas != cas
    meta = r.call(mc.GET_META, key)
    assert meta.status == 0 and struct.unpack(">IIIQ", meta.extras[:20])[2] > 0   # an expiry is set


def test_replica_updated(r, key, cluster):
    put(r, key, {"a": 1})
    assert mutate(r, key, (SD_UPSERT, "b", "2"))[0].status == 0
    import time
    deadline = time.time() + 2
    while time.time() < deadline:
        g = r.call(mc.GET_REPLICA, key, replica=1)
        if g.status == 0 and json.loads(g.value) == {"a": 1, "b": 2}:
            break
        time.sleep(0.01)
    else:
        raise AssertionError("replica not updated: %r" % (g,))


def test_whole_doc_and_not_json(r, key):
    assert r.set(key, b"raw").status == 0
    assert mutate(r, key, (SD_UPSERT, "a", "1"))[1] == [(0, NOTJSON)]
    resp, _ = mutate(r, key, (DOC_SET, "", '{"x":1}'), (SD_UPSERT, "y", "2"))
    assert resp.status == 0 and body_of(r, key) == {"x": 1, "y": 2}
    assert mutate(r, key, (DOC_DELETE, ""))[0].status == 0
    assert r.get(key).status == mc.KEY_ENOENT


def test_too_deep(r, key):
    put(r, key, {"a": 1})
    deep = "[" * 32 + "]" * 32
    assert mutate(r, key, (SD_UPSERT, "v", deep))[1] == [(0, VALUE_ETOODEEP)]
    assert r.set(key, "[" * 40 + "]" * 40).status == 0
    assert lookup(r, key, (SD_GET, "[0]"))[1] == [(DOC_E2DEEP, b"")]


def single(r, key, op, path, value=b"", flags=0, exp=None, docflags=None):
    extras = struct.pack(">HB", len(path), flags)
    if exp is not None:
        extras += struct.pack(">I", exp)
    if docflags is not None:
        extras += bytes([docflags])
    return r.call(op, key, value=path.encode() + value, extras=extras)


def test_single_path_commands(r, key):
    put(r, key, {"a": [1, 2], "s": "x"})
    g = single(r, key, SD_GET, "a[1]")
    assert g.status == 0 and g.value == b"2" and g.cas
    assert single(r, key, SD_GET, "nope").status == ENOENT
    assert single(r, key, SD_COUNT, "a").value == b"2"
    assert single(r, key, SD_EXISTS, "s").status == 0
    c = single(r, key, SD_COUNTER, "n", b"4")
    assert c.status == 0 and c.value == b"4" and len(c.extras) == 16
    assert single(r, key, SD_ADD, "s", b'"y"').status == EEXISTS
    assert single(r, key, SD_UPSERT, "q.r", b"1", flags=MKDIR_P).status == 0
    assert single(r, key, SD_PUSH_LAST, "a", b"3").status == 0
    assert body_of(r, key) == {"a": [1, 2, 3], "s": "x", "n": 4, "q": {"r": 1}}
    assert single(r, key + "new", SD_UPSERT, "k", b"1", docflags=MKDOC).status == 0
    assert body_of(r, key + "new") == {"k": 1}


def test_malformed(r, key):
    put(r, key, {"a": 1})
    assert r.call(MULTI_LOOKUP, key, value=b"\xc5\x00\x00\x05ab").status == mc.EINVAL
    assert r.call(MULTI_MUTATION, key, value=b"\xc8\x00\x00\x01\x00\x00\x00").status == mc.EINVAL
    assert r.call(MULTI_MUTATION, key, value=b"", extras=b"\x00\x00").status == mc.EINVAL
    assert mutate(r, key, (SD_GET, "a"))[0].status == INVALID_COMBO
    assert mutate(r, key, (SD_DELETE, "a", "1"))[0].status == mc.EINVAL
