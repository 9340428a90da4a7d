"""memcached:// with SASL: a real memcached started with -S (cyrus SASL, a sasldb
written by saslpasswd2), offering PLAIN or SCRAM as memcached deployments do."""
import asyncio
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import Memcached
from couchbase_ffi import FMT_BYTES, exceptions as E
from couchbase_ffi.bucket import Bucket

USER, PASSWORD = "alice", "s3cret pass"


class SaslMemcached(Memcached):
    """memcached -S whose cyrus configuration offers `mechs` and knows USER."""

    def __init__(self, mechs, port=None):
        super().__init__(port=port, extra=["-S"])
        if not shutil.which("saslpasswd2"):
            raise RuntimeError("saslpasswd2 missing: run scripts/install-deps.sh (sasl2-bin)")
        self.dir = tempfile.mkdtemp(prefix="cbffi-sasl-")
        os.chmod(self.dir, 0o755)          # memcached runs as nobody when we are root
        db = os.path.join(self.dir, "sasldb2")
        with open(os.path.join(self.dir, "memcached.conf"), "w") as f:
            f.write("mech_list: %s\nsasldb_path: %s\n" % (mechs, db))
        env = dict(os.environ, SASL_CONF_PATH=self.dir)
        # saslpasswd2 reads the same configuration, so it stores SCRAM secrets too
        subprocess.run(["saslpasswd2", "-p", "-a", "memcached", "-c", "-f", db, USER],
                       input=PASSWORD.encode(), env=env, check=True)
        os.chmod(db, 0o644)
        self.env = env

    def start(self):
        old = os.environ.get("SASL_CONF_PATH")
        os.environ["SASL_CONF_PATH"] = self.dir    # inherited by the Popen in start()
        try:
            return super().start()
        finally:
            if old is None:
                del os.environ["SASL_CONF_PATH"]
            else:
                os.environ["SASL_CONF_PATH"] = old

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(params=["plain", "scram-sha-256", "scram-sha-1 scram-sha-512 plain"])
def sasl_server(request):
    m = SaslMemcached(request.param).start()
    yield m
    m.cleanup()


@pytest.fixture
def plain_server():
    m = SaslMemcached("plain").start()
    yield m
    m.cleanup()


def test_right_credentials_work_with_every_mechanism_offered(sasl_server):
    b = Bucket(sasl_server.connstr, username=USER, password=PASSWORD)
    b.upsert("sasl:k", {"v": 1})
    assert b.get("sasl:k").value == {"v": 1}
    b.upsert_multi({"sasl:a": b"1", "sasl:b": b"2"}, format=FMT_BYTES)
    assert {k: r.value for k, r in b.get_multi(["sasl:a", "sasl:b"]).items()} == \
        {"sasl:a": b"1", "sasl:b": b"2"}
    b.close()


def test_wrong_password_is_an_auth_error_at_connect(sasl_server):
    with pytest.raises(E.AuthError) as ei:
        Bucket(sasl_server.connstr, username=USER, password="wrong")
    assert "authentication failed" in str(ei.value)
    with pytest.raises(E.AuthError):
        Bucket(sasl_server.connstr, username="nobody-here", password=PASSWORD)


def test_no_credentials_on_a_sasl_server_fails_each_operation_typed(plain_server):
    b = Bucket(plain_server.connstr)
    with pytest.raises(E.AuthError):
        b.upsert("sasl:x", b"x", format=FMT_BYTES)
    b.close()


def test_password_without_username_is_refused():
    with pytest.raises(E.InvalidError) as ei:
        Bucket("memcached://127.0.0.1:1", password="p")
    assert "username" in str(ei.value)


def test_credentials_in_the_connection_string(plain_server):
    b = Bucket("%s?username=%s&password=%s" % (plain_server.connstr, USER, "s3cret%20pass"))
    b.upsert("sasl:cs", b"v", format=FMT_BYTES)
    assert b.get("sasl:cs").value == b"v"
    b.close()


def test_forcing_a_mechanism_the_server_lacks_is_typed(plain_server):
    with pytest.raises(E.CouchbaseError) as ei:
        Bucket(plain_server.connstr + "?sasl_mech_force=SCRAM-SHA256",
               username=USER, password=PASSWORD)
    assert ei.value.rc != 0 and "SCRAM" in str(ei.value)


def test_reconnect_after_a_restart_authenticates_again(plain_server):
    b = Bucket(plain_server.connstr, username=USER, password=PASSWORD)
    b.upsert("sasl:r", b"1", format=FMT_BYTES)
    plain_server.stop()
    with pytest.raises(E.CouchbaseNetworkError):
        b.get("sasl:r")
    plain_server.start()
    # the data is gone with the process; a fresh connection must log in again
    b.upsert("sasl:r", b"2", format=FMT_BYTES)
    assert b.get("sasl:r").value == b"2"
    b.close()


def test_asyncio_front_end_over_sasl(plain_server):
    from couchbase_ffi.asyncio import Bucket as ABucket

    async def main():
        b = ABucket(plain_server.connstr, username=USER, password=PASSWORD)
        await b.connect()
        await b.upsert("sasl:aio", b"v", format=FMT_BYTES)
        got = (await b.get("sasl:aio")).value
        b.close()
        bad = ABucket(plain_server.connstr, username=USER, password="nope")
        with pytest.raises(E.AuthError):
            await bad.connect()
        bad.close()
        return got

    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(main()) == b"v"
    finally:
        loop.close()
