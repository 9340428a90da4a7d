"""The couchbase 2.x Bucket API against a real memcached."""
import subprocess
import sys
import threading
import os

import pytest

from couchbase_ffi.bucket import Bucket, LOCKMODE_EXC, LOCKMODE_WAIT, LOCKMODE_NONE
from couchbase_ffi import FMT_JSON, FMT_BYTES, FMT_UTF8, FMT_PICKLE, FMT_AUTO
from couchbase_ffi.transcoder import Transcoder
from couchbase_ffi import exceptions as E


def test_upsert_get_roundtrip_every_format(bucket):
    cases = [({"a": [1, 2]}, FMT_JSON), (b"\x00raw", FMT_BYTES), ("h\u00e9llo", FMT_UTF8),
             ({1, 2}, FMT_PICKLE)]
    for value, fmt in cases:
        r = bucket.upsert("fmt", value, format=fmt)
        assert r.success and r.cas
        g = bucket.get("fmt")
        assert g.value == value and g.flags == fmt and g.cas == r.cas


def test_empty_values(bucket):
    bucket.upsert("empty", b"", format=FMT_BYTES)
    assert bucket.get("empty").value == b""
    assert bucket.get_multi(["empty"])["empty"].value == b""
    bucket.upsert("empty-s", "", format=FMT_UTF8)
    assert bucket.get("empty-s").value == ""


def test_format_auto_and_no_format(bucket):
    bucket.upsert("auto", "text", format=FMT_AUTO)
    assert bucket.get("auto").flags == FMT_UTF8
    bucket.upsert("j", [1, 2])
    assert bucket.get("j", no_format=True).value == b"[1, 2]"
    bucket.data_passthrough = True
    assert bucket.get("j").value == b"[1, 2]"


def test_cas_semantics(bucket):
    r = bucket.upsert("cas", 1)
    with pytest.raises(E.KeyExistsError) as ei:
        bucket.upsert("cas", 2, cas=r.cas + 1)
    assert ei.value.rc == 0x0C and ei.value.key == "cas"
    r2 = bucket.replace("cas", 3, cas=r.cas)
    assert r2.cas != r.cas
    with pytest.raises(E.KeyExistsError):
        bucket.remove("cas", cas=r.cas)
    bucket.remove("cas", cas=r2.cas)
    with pytest.raises(E.NotFoundError):
        bucket.get("cas")


def test_insert_replace_append_prepend(bucket):
    bucket.remove("ir", quiet=True)
    bucket.insert("ir", "x", format=FMT_UTF8)
    with pytest.raises(E.KeyExistsError):
        bucket.insert("ir", "y")
    with pytest.raises(E.NotFoundError):
        bucket.replace("ir-missing", 1)
    bucket.append("ir", "-end")
    bucket.prepend("ir", "start-")
    assert bucket.get("ir").value == "start-x-end"
    with pytest.raises(E.NotStoredError):
        bucket.append("ir-missing", b"x")


def test_counter(bucket):
    bucket.remove("ctr", quiet=True)
    with pytest.raises(E.NotFoundError):
        bucket.counter("ctr")
    assert bucket.counter("ctr", initial=10).value == 10
    assert bucket.counter("ctr", delta=5).value == 15
    assert bucket.counter("ctr", delta=-20).value == 0
    bucket.upsert("notnum", "abc", format=FMT_UTF8)
    with pytest.raises(E.DeltaBadvalError):
        bucket.counter("notnum")


def test_quiet_miss_and_bucket_default_quiet(memcached):
    b = Bucket(memcached.connstr, quiet=True)
    r = b.get("surely-missing")
    assert not r.success and r.rc == E.NotFoundError.rc and r.value is None
    with pytest.raises(E.NotFoundError):
        b.get("surely-missing", quiet=False)
    b.close()


def test_touch_and_get_with_ttl_expire(bucket):
    import time
    bucket.upsert("ttl1", 1)
    bucket.upsert("ttl2", 2)
    bucket.touch("ttl1", ttl=1)
    assert bucket.get("ttl2", ttl=1).value == 2
    time.sleep(2.1)
    for k in ("ttl1", "ttl2"):
        with pytest.raises(E.NotFoundError):
            bucket.get(k)


def test_multi_forms(bucket):
    data = {"m%d" % i: {"i": i} for i in range(200)}
    mr = bucket.upsert_multi(data)
    assert mr.all_ok and len(mr) == 200 and all(r.cas for r in mr.values())
    got = bucket.get_multi(list(data) + ["m-missing"], quiet=True)
    assert not got.all_ok
    assert got["m7"].value == {"i": 7} and not got["m-missing"].success
    with pytest.raises(E.NotFoundError) as ei:
        bucket.get_multi(["m1", "m-missing"])
    assert set(ei.value.all_results) == {"m1", "m-missing"}
    ok, bad = ei.value.split_results()
    assert list(ok) == ["m1"] and list(bad) == ["m-missing"]
    assert len(bucket.get_multi(k for k in ("m1", "m2"))) == 2  # any iterable
    cm = bucket.counter_multi(["c1", "c2"], initial=3)
    assert cm["c1"].value == 3
    bucket.touch_multi(["m1", "m2"], ttl=100)
    rm = bucket.remove_multi(["m1", "m2"])
    assert rm.all_ok
    with pytest.warns(UserWarning):
        bucket.get_multi(["m3", "m3"])


def test_stats_and_server_nodes(bucket, memcached):
    st = bucket.stats()
    node = "127.0.0.1:%d" % memcached.port
    assert bucket.server_nodes == [node]
    assert int(st["pid"][node]) > 0
    assert bucket.bucket == ""


def test_bad_input_is_typed_and_sends_nothing(bucket):
    with pytest.raises(E.ArgumentError):
        bucket.get("")
    with pytest.raises(E.ArgumentError):
        bucket.upsert("k" * 251, 1)
    with pytest.raises(E.ArgumentError):
        bucket.upsert("\u00e9" * 126, 1)  # 252 bytes in UTF-8
    with pytest.raises(E.ValueFormatError):
        bucket.upsert(12345, 1)
    with pytest.raises(E.ValueFormatError):
        bucket.upsert("k", "not bytes", format=FMT_BYTES)
    with pytest.raises(E.ValueFormatError):
        bucket.upsert("k", object(), format=FMT_JSON)
    for ttl in (-1, 2 ** 32, "10"):
        with pytest.raises(E.ArgumentError):
            bucket.upsert("k", 1, ttl=ttl)
    assert bucket.upsert("k", 1).success  # still usable


def test_memcached_cannot_lock_or_persist(bucket):
    with pytest.raises(E.NotSupportedError):
        bucket.lock("k", ttl=5)
    with pytest.raises(E.NotSupportedError):
        bucket.unlock("k", 1)
    with pytest.raises(E.NotSupportedError):
        bucket.upsert("k", 1, persist_to=1)
    with pytest.raises(E.NotSupportedError):
        bucket.get("k", replica=True)


def test_bad_connection_strings():
    for cs, needle in [("memcached://h:99999", "99999"), ("nope", "scheme"),
                       ("memcached://h?operation_timeout=soon", "duration")]:
        with pytest.raises(E.CouchbaseInputError) as ei:
            Bucket(cs)
        assert needle in str(ei.value)


def test_unreachable_server_is_a_connect_error():
    from conftest import free_port
    with pytest.raises(E.CouchbaseNetworkError) as ei:
        Bucket("memcached://127.0.0.1:%d" % free_port())
    assert isinstance(ei.value, E.ConnectError)


def test_use_after_close(memcached):
    b = Bucket(memcached.connstr)
    b.close()
    assert b.closed
    with pytest.raises(E.CouchbaseError):
        b.get("k")


def test_timeout_property(bucket):
    assert bucket.timeout == 2.5
    bucket.timeout = 0.5
    assert bucket.timeout == 0.5
    with pytest.raises(E.ArgumentError):
        bucket.timeout = 0


def test_too_big_value_keeps_bucket_usable(bucket):
    with pytest.raises(E.TooBigError):
        bucket.upsert("big", b"x" * (2 * 1024 * 1024), format=FMT_BYTES)
    assert bucket.upsert("small", 1).success


def test_server_killed_then_restarted(own_memcached):
    b = Bucket(own_memcached.connstr)
    b.upsert("k", 1)
    own_memcached.stop()
    with pytest.raises(E.CouchbaseNetworkError):
        b.get("k")
    own_memcached.start()
    assert b.upsert("k", 2).success and b.get("k").value == 2
    b.close()


def test_custom_transcoder(memcached):
    class Upper(Transcoder):
        def encode_key(self, key):
            return ("u:" + str(key)).encode()

        def encode_value(self, value, fmt):
            return str(value).upper().encode(), FMT_UTF8

    b = Bucket(memcached.connstr, transcoder=Upper())
    b.upsert(7, "seven")
    assert b.get(7).value == "SEVEN"
    b.close()


def test_threads_each_with_own_bucket(memcached):
    errors = []

    def work(n):
        try:
            b = Bucket(memcached.connstr)
            for i in range(200):
                b.upsert("t%d:%d" % (n, i), i)
                assert b.get("t%d:%d" % (n, i)).value == i
            b.close()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    ts = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert not errors


def test_lockmode_wait_serialises_and_exc_refuses(memcached):
    b = Bucket(memcached.connstr, lockmode=LOCKMODE_WAIT)
    done = []

    def work():
        for i in range(100):
            b.upsert("shared", i)
        done.append(1)
    ts = [threading.Thread(target=work) for _ in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert len(done) == 4
    b.close()
    b = Bucket(memcached.connstr, lockmode=LOCKMODE_EXC)
    b._lock.acquire()  # as if another thread were inside an operation
    with pytest.raises(E.ObjectThreadError):
        b.get("shared")
    b._lock.release()
    b.close()
    Bucket(memcached.connstr, lockmode=LOCKMODE_NONE).close()


def test_category_bases_work_like_2x():
    assert issubclass(E.TimeoutError, E.CouchbaseTransientError)
    assert issubclass(E.TimeoutError, E.CouchbaseNetworkError)
    assert issubclass(E.NotFoundError, E.CouchbaseDataError)
    assert issubclass(E.ArgumentError, E.CouchbaseInputError)
    assert issubclass(E.AuthError, E.CouchbaseFatalError)
    assert E.NotFoundError.rc == 13 and E.KeyExistsError.rc == 12 and E.TimeoutError.rc == 23
    assert E.exc_class(0x86 + 0x1000, 0x08) is E.CouchbaseTransientError


def test_install_as_couchbase_in_a_clean_interpreter(memcached):
    code = ("import couchbase_ffi; couchbase_ffi.install_as_couchbase();"
            "from couchbase.bucket import Bucket; from couchbase.exceptions import NotFoundError;"
            "import couchbase; from couchbase import FMT_JSON;"
            "b = Bucket(%r); b.upsert('ic', 1); print(b.get('ic').value)\n"
            "try:\n    b.get('ic-missing')\nexcept NotFoundError:\n    print('typed')"
            % memcached.connstr)
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "typed"]
    clash = ("import sys, types; sys.modules['couchbase'] = types.ModuleType('couchbase');"
             "import couchbase_ffi\ntry:\n    couchbase_ffi.install_as_couchbase()\n"
             "except ImportError as e:\n    print('refused', 'already imported' in str(e))")
    out = subprocess.run([sys.executable, "-c", clash], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["refused", "True"], out.stderr
