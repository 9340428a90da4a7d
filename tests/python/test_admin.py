"""couchbase_ffi.admin.Admin (2.x's couchbase.admin) against the mock's management REST
endpoints (mock/manage.py): buckets created, used, changed and removed at run time, RBAC
users that can (and then cannot) log in, and the errors a user sees."""
import socket
import threading
import time

import pytest

from couchbase_ffi import exceptions as E
from couchbase_ffi.admin import Admin, AuthDomain
from couchbase_ffi.bucket import Bucket
from couchbase_ffi.cluster import Cluster, PasswordAuthenticator
from couchbase_ffi.mock import MockCluster, BucketSpec


@pytest.fixture(scope="module")
def cluster():
    c = MockCluster(nodes=2, buckets=[BucketSpec("default", password="secret")],
                    users={"Administrator": "password", "reader": ("rpw", ["default"])}).start()
    yield c
    c.stop()


@pytest.fixture
def adm(cluster):
    a = Admin("Administrator", "password", host="127.0.0.1", port=cluster.rest_port)
    yield a
    for b in a.buckets_list():
        if b.name() != "default":
            a.bucket_remove(b.name())
    a.close()


def kv_connstr(cluster, bucket):
    return cluster.connstr(bucket)


def test_credentials_are_checked_at_once(cluster):
    with pytest.raises(E.AuthError):
        Admin("Administrator", "wrong", host="127.0.0.1", port=cluster.rest_port)
    with pytest.raises(E.ConnectError):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        Admin("Administrator", "password", host="127.0.0.1", port=port)
    with pytest.raises(E.ArgumentError):
        Admin("Administrator", "password", host="127.0.0.1", port=0)
    with pytest.raises(E.ArgumentError):
        Admin("Administrator", "password", connection_string="memcached://127.0.0.1")


def test_a_silent_server_times_out(cluster):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    held = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])      # and never answer
            except socket.timeout:
                pass
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        t0 = time.monotonic()
        with pytest.raises(E.TimeoutError):
            Admin("Administrator", "password", host="127.0.0.1", port=srv.getsockname()[1],
                  timeout=0.3)
        assert time.monotonic() - t0 < 3
    finally:
        stop.set()
        t.join()
        for c in held:
            c.close()
        srv.close()


def test_create_use_and_remove_a_bucket(cluster, adm):
    res = adm.bucket_create("travel", bucket_password="tpw", replicas=1, ram_quota=256)
    assert res.http_status == 202 and res.success
    adm.wait_ready("travel", timeout=5)
    assert "travel" in [b.name() for b in adm.buckets_list()]
    info = adm.bucket_info("travel").value
    assert info["name"] == "travel" and info["replicaNumber"] == 1
    assert info["quota"]["rawRAM"] == 256 * 1024 * 1024
    assert all(n["status"] == "healthy" for n in info["nodes"])
    b = Bucket(kv_connstr(cluster, "travel"), password="tpw")
    b.upsert("k", {"v": 1})
    assert b.get("k").value == {"v": 1}
    assert b.configured_replica_count == 1
    adm.bucket_remove("travel")
    with pytest.raises(E.CouchbaseError):    # its connections are gone with it
        for _ in range(3):
            b.get("k")
    b.close()
    with pytest.raises(E.BucketNotFoundError):
        Bucket(kv_connstr(cluster, "travel"), username="Administrator", password="password")
    with pytest.raises(E.AuthError):       # the bucket's own (classic) user went with it
        Bucket(kv_connstr(cluster, "travel"), password="tpw")
    with pytest.raises(E.HTTPError) as ei:
        adm.bucket_info("travel")
    assert ei.value.http_status == 404
    with pytest.raises(E.HTTPError):
        adm.bucket_remove("travel")


def test_memcached_bucket(cluster, adm):
    adm.bucket_create("cache", bucket_type="memcached", bucket_password="cpw", ram_quota=100)
    adm.wait_ready("cache")
    b = Bucket(kv_connstr(cluster, "cache"), password="cpw")
    b.upsert("x", "y")
    assert b.get("x").value == "y"
    b.close()


def test_refusals_carry_the_servers_reasons(cluster, adm):
    adm.bucket_create("dup", ram_quota=100)
    with pytest.raises(E.HTTPError) as ei:
        adm.bucket_create("dup", ram_quota=100)
    assert ei.value.http_status == 400
    assert "already exists" in ei.value.objextra.value["errors"]["name"]
    for kw in ({"bucket_type": "columnar"}, {"replicas": 4}, {"ram_quota": 10}):
        with pytest.raises(E.HTTPError) as ei:
            adm.bucket_create("other", **kw)
        assert ei.value.http_status == 400 and ei.value.objextra.value["errors"]
    with pytest.raises(E.HTTPError):
        adm.bucket_create("bad name!", ram_quota=100)


def test_update_password_and_flush(cluster, adm):
    adm.bucket_create("upd", bucket_password="old", ram_quota=100, flush_enabled=False)
    adm.wait_ready("upd")
    b = Bucket(kv_connstr(cluster, "upd"), password="old")
    b.upsert("a", 1)
    with pytest.raises(E.NotSupportedError):
        b.flush()
    assert b.get("a").value == 1
    adm.bucket_update("upd", adm.bucket_info("upd"), bucket_password="new", flush_enabled=True)
    with pytest.raises(E.AuthError):        # the REST flush logs in again: the old password
        b.flush()
    b.close()
    with pytest.raises(E.AuthError):
        Bucket(kv_connstr(cluster, "upd"), password="old")
    b = Bucket(kv_connstr(cluster, "upd"), password="new")
    b.flush()
    with pytest.raises(E.NotFoundError):
        b.get("a")
    b.close()
    with pytest.raises(E.HTTPError):        # the mock cannot rebalance
        adm.bucket_update("upd", adm.bucket_info("upd"), replicas=3)


def test_users_log_in_until_removed(cluster, adm):
    adm.bucket_create("app", ram_quota=100)
    adm.wait_ready("app")
    adm.user_upsert(AuthDomain.Local, "appuser", "apw", [("bucket_full_access", "app")],
                    name="The App")
    got = adm.user_get(AuthDomain.Local, "appuser").value
    assert got["id"] == "appuser" and got["name"] == "The App"
    assert got["roles"] == [{"role": "bucket_full_access", "bucket_name": "app"}]
    assert "appuser" in [u["id"] for u in adm.users_get(AuthDomain.Local).value]
    b = Bucket(kv_connstr(cluster, "app"), username="appuser", password="apw")
    b.upsert("u", 1)
    b.close()
    with pytest.raises(E.BucketNotFoundError):   # no role on "default" (EACCESS)
        Bucket(kv_connstr(cluster, "default"), username="appuser", password="apw")
    adm.remove_user(AuthDomain.Local, "appuser")
    with pytest.raises(E.AuthError):
        Bucket(kv_connstr(cluster, "app"), username="appuser", password="apw")
    with pytest.raises(E.HTTPError) as ei:
        adm.user_get(AuthDomain.Local, "appuser")
    assert ei.value.http_status == 404


def test_user_arguments(cluster, adm):
    with pytest.raises(E.ArgumentError):
        adm.user_upsert(AuthDomain.Local, "u", "pw", [])
    with pytest.raises(E.ArgumentError):
        adm.user_upsert(AuthDomain.External, "u", "pw", ["admin"])
    with pytest.raises(E.ArgumentError):
        adm.users_get("ldap")
    with pytest.raises(E.HTTPError) as ei:      # the server checks the roles
        adm.user_upsert(AuthDomain.Local, "u", "pw", [("data_reader", "no_such_bucket")])
    assert ei.value.http_status == 400
    adm.user_upsert(AuthDomain.Local, "every", "epw", [("data_reader", "*")])
    Bucket(kv_connstr(cluster, "default"), username="every", password="epw").close()
    adm.user_remove(AuthDomain.Local, "every")


def test_non_admins_are_refused(cluster):
    a = Admin("reader", "rpw", host="127.0.0.1", port=cluster.rest_port)
    with pytest.raises(E.AuthError):
        a.bucket_create("nope", ram_quota=100)
    with pytest.raises(E.AuthError):
        a.users_get(AuthDomain.Local)


def test_raw_requests_and_cluster_manager(cluster):
    c = Cluster("http://127.0.0.1:%d" % cluster.rest_port)
    c.authenticate(PasswordAuthenticator("Administrator", "password"))
    adm = c.cluster_manager()
    res = adm.http_request("/pools/default")
    assert res.http_status == 200 and len(res.value["nodes"]) == 2
    raw = adm.http_request("/pools/default", response_format=0)
    assert isinstance(raw.value, bytes) and b"nodes" in raw.value
    with pytest.raises(E.ArgumentError):
        adm.http_request("/pools", method="PATCH")
    rel = adm.http_request("pools/")       # 2.x took a path without its "/"
    assert rel.http_status == 200 and rel.url == "pools/" and isinstance(rel.value, dict)
    with pytest.raises(E.ArgumentError):
        adm.http_request(None)
    with pytest.raises(E.NotSupportedError):     # not a Bucket
        adm.upsert("foo", "bar")
    with pytest.raises(AttributeError):
        adm.no_such_method
    with pytest.raises(E.HTTPError) as ei:
        adm.http_request("/no/such/thing")
    assert ei.value.http_status == 404
    # couchbase://h:port=http names the REST port
    c2 = Cluster("couchbase://127.0.0.1:%d=http" % cluster.rest_port)
    c2.authenticate(username="Administrator", password="password")
    assert c2.cluster_manager().port == cluster.rest_port
    with pytest.raises(E.ArgumentError):
        Cluster("couchbase://127.0.0.1").cluster_manager()


def test_the_2x_module_names(cluster):
    import couchbase_ffi
    couchbase_ffi.install_as_couchbase()
    import couchbase.admin
    from couchbase.auth_domain import AuthDomain as AD
    assert couchbase.admin.Admin is Admin and AD is AuthDomain


@pytest.mark.skipif(not hasattr(__import__("sys"), "getrefcount") or
                    __import__("platform").python_implementation() != "CPython",
                    reason="reference counts are CPython's")
def test_a_failed_call_keeps_no_reference_to_the_admin(cluster):
    import sys
    a = Admin("Administrator", "password", host="127.0.0.1", port=cluster.rest_port)
    before = sys.getrefcount(a)
    with pytest.raises(E.HTTPError):
        a.http_request("/badpath")
    try:
        a.http_request("/badpath")
    except E.HTTPError as e:
        assert isinstance(e.objextra.value, (bytes, dict, str))
    assert sys.getrefcount(a) == before    # freed at once when dropped, as 2.x's was


def test_a_slow_drip_answer_ends_at_the_timeout():
    """A server that answers a byte at a time, each within the socket timeout: the whole
    call is still bounded by the Admin's timeout."""
    import threading
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    stop = threading.Event()

    def serve():
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except socket.timeout:
                continue
            c.recv(65536)
            try:
                for b in b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000:
                    if stop.is_set():
                        break
                    c.sendall(bytes([b]))      # the headers too, a byte at a time
                    time.sleep(0.05)
            except OSError:
                pass
            c.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        t0 = time.monotonic()
        with pytest.raises(E.TimeoutError):
            Admin("u", "p", host="127.0.0.1", port=srv.getsockname()[1], timeout=0.5)
        assert time.monotonic() - t0 < 3
    finally:
        stop.set()
        t.join()
        srv.close()
