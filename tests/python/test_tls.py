"""TLS end to end: couchbases:// against the mock's TLS ports (KV, https REST and query), and
memcached:// with ssl=on against a real memcached -Z; what a user sees when the CA, the name,
the port or the server is wrong."""
import asyncio
import socket
import threading
import time

import pytest

from conftest import Memcached
from tlshelp import Certs

from couchbase_ffi import FMT_BYTES, exceptions as E
from couchbase_ffi.bucket import Bucket
from couchbase_ffi.mock import BucketSpec, MockCluster


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return Certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def cluster(certs):
    with MockCluster(nodes=3, buckets=[BucketSpec("default", password="pw", replicas=1)],
                     persist_delay=0, replicate_delay=0, tls=certs.server) as c:
        yield c


@pytest.fixture(scope="module")
def memcached_tls(certs):
    cert, key = certs.server
    m = Memcached(extra=["-Z", "-o", "ssl_chain_cert=%s,ssl_key=%s" % (cert, key)]).start()
    yield m
    m.stop()


def tls_bucket(cluster, certs, **options):
    options.setdefault("truststorepath", certs.ca)
    return Bucket(cluster.tls_connstr("default", **options), password="pw")


def test_couchbases_operations_use_the_tls_ports(cluster, certs):
    b = tls_bucket(cluster, certs)
    try:
        assert b.is_ssl
        for i in range(50):
            b.upsert("tls:%d" % i, {"i": i})
        assert all(b.get("tls:%d" % i).value == {"i": i} for i in range(50))
        # the data nodes are reached on their kvSSL ports, never the plain ones
        tls_ports = set(cluster.kv_ssl_ports)
        for i in range(50):
            rv = b.get("tls:%d" % i)
            assert rv.success
        plain = Bucket(cluster.connstr("default"), password="pw")
        assert plain.get("tls:7").value == {"i": 7} and not plain.is_ssl
        plain.close()
        assert tls_ports.isdisjoint(cluster.kv_ports)
    finally:
        b.close()


def test_n1ql_over_https(cluster, certs):
    cluster.query_register("SELECT tls FROM default", rows=[{"tls": True}])
    b = tls_bucket(cluster, certs)
    try:
        assert list(b.n1ql_query("SELECT tls FROM default")) == [{"tls": True}]
        # the requests reached the https query ports (the mock records each one)
        assert cluster.query_requests(clear=True)
    finally:
        b.close()


def test_http_bootstrap_over_https(cluster, certs):
    cs = "couchbases://127.0.0.1:%d=HTTPS/default?bootstrap_on=http&truststorepath=%s" % (
        cluster.rest_ssl_port, certs.ca)
    b = Bucket(cs, password="pw")
    try:
        b.upsert("tls:http", "boot")
        assert b.get("tls:http").value == "boot"
    finally:
        b.close()


def test_wrong_ca_is_a_certificate_error(cluster, certs):
    t0 = time.monotonic()
    with pytest.raises(E.SSLCertificateError) as ei:
        tls_bucket(cluster, certs, truststorepath=certs.other_ca)
    assert ei.value.rc == 0x37
    assert isinstance(ei.value, E.CouchbaseNetworkError)
    assert time.monotonic() - t0 < 5


def test_no_verify_connects_without_a_ca(cluster, certs):
    b = Bucket(cluster.tls_connstr("default", ssl="no_verify"), password="pw")
    try:
        b.upsert("tls:nv", 1)
        assert b.get("tls:nv").value == 1
    finally:
        b.close()


def test_unreadable_ca_file_is_refused_at_once(cluster, certs):
    with pytest.raises(E.SSLError) as ei:
        tls_bucket(cluster, certs, truststorepath=certs.path("missing.pem"))
    assert ei.value.rc == 0x36


def test_plain_client_on_a_tls_port_fails_typed_and_on_time(cluster):
    cs = "couchbase://127.0.0.1:%d/default?connect_timeout=1s&config_total_timeout=3s" % \
        cluster.kv_ssl_ports[0]
    t0 = time.monotonic()
    with pytest.raises(E.CouchbaseNetworkError):
        Bucket(cs, password="pw")
    assert time.monotonic() - t0 < 3.5


def test_tls_client_on_a_plain_port_fails_typed_and_on_time(cluster, certs):
    cs = "couchbases://127.0.0.1:%d/default?connect_timeout=1s&truststorepath=%s" % (
        cluster.kv_ports[0], certs.ca)
    t0 = time.monotonic()
    with pytest.raises(E.SSLError) as ei:
        Bucket(cs, password="pw")
    assert "TLS" in str(ei.value)
    assert time.monotonic() - t0 < 2


def test_stalled_handshake_times_out(certs):
    """A server that accepts and then says nothing: the TLS handshake ends at the connect
    timeout with a timeout error."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                pass
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        cs = "memcached://127.0.0.1:%d?ssl=on&truststorepath=%s&connect_timeout=500ms" % (
            srv.getsockname()[1], certs.ca)
        t0 = time.monotonic()
        with pytest.raises(E.TimeoutError) as ei:
            Bucket(cs)
        assert "TLS handshake" in str(ei.value)
        assert 0.4 < time.monotonic() - t0 < 2
    finally:
        stop.set()
        t.join()
        for s in held:
            s.close()
        srv.close()


def test_memcached_over_tls(memcached_tls, certs):
    cs = memcached_tls.connstr + "?ssl=on&truststorepath=" + certs.ca
    b = Bucket(cs)
    try:
        assert b.is_ssl
        big = b"x" * (600 * 1024)   # many TLS records each way
        b.upsert("tls:big", big, format=FMT_BYTES)
        assert b.get("tls:big").value == big
        b.upsert_multi(dict(("tls:m%d" % i, "v%d" % i) for i in range(200)))
        got = b.get_multi(["tls:m%d" % i for i in range(200)])
        assert all(got["tls:m%d" % i].value == "v%d" % i for i in range(200))
    finally:
        b.close()


def test_memcached_tls_wrong_name_and_wrong_ca(memcached_tls, certs):
    # the certificate is for localhost / 127.0.0.1 / ::1: "localhost" verifies too
    b = Bucket("memcached://localhost:%d?ssl=on&certpath=%s" % (memcached_tls.port, certs.ca))
    b.upsert("tls:name", "ok")
    assert b.get("tls:name").value == "ok"
    b.close()
    with pytest.raises(E.SSLCertificateError):
        Bucket(memcached_tls.connstr + "?ssl=on&truststorepath=" + certs.other_ca)


def test_memcached_tls_certificate_for_another_name(certs):
    cert, key = certs.wrong_name
    m = Memcached(extra=["-Z", "-o", "ssl_chain_cert=%s,ssl_key=%s" % (cert, key)]).start()
    try:
        with pytest.raises(E.SSLCertificateError) as ei:
            Bucket(m.connstr + "?ssl=on&truststorepath=" + certs.ca)
        assert "cannot be verified" in str(ei.value)
        b = Bucket(m.connstr + "?ssl=no_verify")   # unsafe, but it connects
        b.upsert("k", "v")
        assert b.get("k").value == "v"
        b.close()
    finally:
        m.stop()


def test_asyncio_front_end_over_tls(cluster, certs):
    from couchbase_ffi.asyncio import Bucket as AsyncBucket

    async def main():
        b = AsyncBucket(cluster.tls_connstr("default", truststorepath=certs.ca), password="pw")
        await b.connect()
        await asyncio.gather(*(b.upsert("atls:%d" % i, i) for i in range(100)))
        got = await asyncio.gather(*(b.get("atls:%d" % i) for i in range(100)))
        assert [r.value for r in got] == list(range(100))
        b.close()
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(main(), 30))
    finally:
        loop.close()


def test_asyncio_memcached_tls_large_values(memcached_tls, certs):
    """Host-loop reads of values larger than the per-event read budget: the bytes OpenSSL holds
    past the budget are read on (no readiness event would announce them)."""
    from couchbase_ffi.asyncio import Bucket as AsyncBucket

    async def main():
        b = AsyncBucket(memcached_tls.connstr + "?ssl=on&truststorepath=" + certs.ca)
        await b.connect()
        vals = dict(("atls:big%d" % i, bytes([65 + i]) * (300 * 1024)) for i in range(4))
        await asyncio.gather(*(b.upsert(k, v, format=FMT_BYTES) for k, v in vals.items()))
        got = await asyncio.gather(*(b.get(k) for k in vals))
        assert [r.value for r in got] == list(vals.values())
        b.close()
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(main(), 30))
    finally:
        loop.close()
