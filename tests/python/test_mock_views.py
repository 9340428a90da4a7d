"""The mock's view service and the design-document listing on the REST port, over plain
HTTP (no client library), in the shapes the official SDKs send and parse (the Node.js SDK
4.x: tests/node/sdk_services.js)."""
import base64
import json
import urllib.error
import urllib.request

import pytest

from couchbase_ffi.mock import MockCluster, BucketSpec

BY_N = "function (doc, meta) { if (doc.n) emit(doc.n, null); }"


@pytest.fixture(scope="module")
def cluster():
    c = MockCluster(nodes=2, buckets=[BucketSpec("default"), BucketSpec("mc", "memcached")],
                    users={"Administrator": "password", "app": ("apw", ["mc"])}).start()
    yield c
    c.stop()


def http(port, path, body=None, method="GET", user="Administrator", pw="password"):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw.strip().startswith((b"{", b"[")) else raw)
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, (json.loads(raw) if raw.strip().startswith((b"{", b"[")) else raw)


def capi(cluster, path, **kw):
    return http(cluster.capi_ports[0], path, **kw)


def test_ddocs_listing_on_the_rest_port(cluster):
    """GET /pools/default/buckets/<b>/ddocs (the SDKs' getAllDesignDocuments): every design
    document, dev_ ones too, as {"rows": [{"doc": {"meta": {"id", "rev"}, "json"}, ...}]};
    the rev grows with every PUT."""
    rest = cluster.rest_port
    assert http(rest, "/pools/default/buckets/default/ddocs") == (200, {"rows": []})
    ddoc = {"views": {"by_n": {"map": BY_N, "reduce": "_count"}}}
    assert capi(cluster, "/default/_design/dev_x", body=ddoc, method="PUT")[0] == 201
    assert capi(cluster, "/default/_design/y", body={"views": {}}, method="PUT")[0] == 201
    status, out = http(rest, "/pools/default/buckets/default/ddocs")
    assert status == 200
    metas = [r["doc"]["meta"] for r in out["rows"]]
    assert [m["id"] for m in metas] == ["_design/dev_x", "_design/y"]
    assert all(m["rev"].startswith("1-") for m in metas)
    assert out["rows"][0]["doc"]["json"] == ddoc
    assert out["rows"][0]["controllers"]["compact"].endswith("_design%2Fdev_x/controller/compactView")
    capi(cluster, "/default/_design/dev_x", body={"views": {}}, method="PUT")
    rev = http(rest, "/pools/default/buckets/default/ddocs")[1]["rows"][0]["doc"]["meta"]["rev"]
    assert rev.startswith("2-") and rev != metas[0]["rev"]
    assert capi(cluster, "/default/_design/dev_x", method="DELETE")[0] == 200
    assert capi(cluster, "/default/_design/y", method="DELETE")[0] == 200
    assert http(rest, "/pools/default/buckets/default/ddocs") == (200, {"rows": []})
    # a new document after a DELETE starts at rev 1 again
    capi(cluster, "/default/_design/y", body={"views": {}}, method="PUT")
    assert http(rest, "/pools/default/buckets/default/ddocs")[1]["rows"][0]["doc"]["meta"]["rev"] \
        .startswith("1-")
    capi(cluster, "/default/_design/y", method="DELETE")
    # an unknown bucket is 404 (the Node SDK: BucketNotFoundError), a user without access 403,
    # a memcached bucket 400
    assert http(rest, "/pools/default/buckets/nope/ddocs")[0] == 404
    assert http(rest, "/pools/default/buckets/default/ddocs", user="app", pw="apw")[0] == 403
    assert http(rest, "/pools/default/buckets/mc/ddocs")[0] == 400


def test_view_request_as_the_node_sdk_sends_it(cluster):
    """The Node SDK POSTs every view query with a JSON body ({} without keys) and the
    start_key / end_key / start_key_doc_id spellings; 404 for a missing view is what it
    turns into DesignDocumentNotFoundError, 400 into InvalidArgumentError."""
    from couchbase_ffi.bucket import Bucket
    b = Bucket(cluster.connstr("default"))
    b.upsert_multi({"v:a": {"n": 3}, "v:b": {"n": 1}, "v:c": {"n": 2}, "v:d": {"n": 2}})
    capi(cluster, "/default/_design/sdk", body={"views": {"by_n": {"map": BY_N}}}, method="PUT")
    try:
        status, out = capi(cluster, "/default/_design/sdk/_view/by_n?stale=false&limit=2&skip=1",
                           body={}, method="POST")
        assert status == 200 and out["total_rows"] == 4
        assert [r["id"] for r in out["rows"]] == ["v:c", "v:d"]
        status, out = capi(cluster, "/default/_design/sdk/_view/by_n?start_key=2&end_key=2&"
                           "start_key_doc_id=v%3Ad&end_key_doc_id=v%3Ad", body={}, method="POST")
        assert [r["id"] for r in out["rows"]] == ["v:d"]
        status, out = capi(cluster, "/default/_design/sdk/_view/by_n?", body={"keys": [3, 1]},
                           method="POST")
        assert [r["id"] for r in out["rows"]] == ["v:a", "v:b"]
        status, out = capi(cluster, "/default/_design/sdk/_view/nope?", body={}, method="POST")
        assert status == 404 and out == {"error": "not_found", "reason": "missing_named_view"}
        status, out = capi(cluster, "/default/_design/sdk/_view/by_n?group=true", body={},
                           method="POST")
        assert status == 400 and out["error"] == "query_parse_error"
    finally:
        capi(cluster, "/default/_design/sdk", method="DELETE")
        b.remove_multi(["v:a", "v:b", "v:c", "v:d"])
        b.close()
