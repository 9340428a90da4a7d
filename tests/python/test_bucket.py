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
    assert bucket.get("j", no_format=True).value == b"[1,2]"  # compact, as 2.x
    bucket.data_passthrough = True
    assert bucket.get("j").value == b"[1,2]"


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
    with pytest.warns(RuntimeWarning):  # 2.x: "Found duplicate key"
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
        with pytest.raises(E.InvalidError) as ei:  # as 2.x, with the C parser's message
            Bucket(cs)
        assert needle in str(ei.value)


def test_unreachable_server_is_a_connect_error():
    from conftest import free_port
    with pytest.raises(E.CouchbaseNetworkError) as ei:
        Bucket("memcached://127.0.0.1:%d" % free_port())
    assert isinstance(ei.value, E.ConnectError)


def test_use_after_close(memcached):
    with Bucket(memcached.connstr) as b:
        assert not b.closed
    assert b.closed
    b.close()  # twice is fine
    for call in (lambda: b.get("k"), lambda: b.upsert("k", 1), lambda: b.get_multi(["k"]),
                 lambda: b.stats(), lambda: b.timeout):
        with pytest.raises(E.ObjectDestroyedError):
            call()


def test_timeout_property(bucket):
    assert bucket.timeout == 2.5
    bucket.timeout = 0.5
    assert bucket.timeout == 0.5
    with pytest.raises(ValueError):  # as 2.x
        bucket.timeout = 0


def test_too_big_value_keeps_bucket_usable(bucket):
    with pytest.raises(E.TooBigError):
        bucket.upsert("big", b"x" * (2 * 1024 * 1024), format=FMT_BYTES)
    assert bucket.upsert("small", 1).success


def test_server_killed_then_restarted(own_memcached):
    b = Bucket(own_memcached.connstr)
    b.upsert("k", 1)
    own_memcached.stop()
    with pytest.raises(E.CouchbaseNetworkError) as ei:
        b.get("k")
    assert isinstance(ei.value, (E.NetworkError, E.ConnectError)) and ei.value.key == "k"
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
    assert issubclass(E.exc_class(0x1086, 0x08), E.CouchbaseTransientError)


def test_install_as_couchbase_in_a_clean_interpreter(memcached):
    code = ("import couchbase_ffi; couchbase_ffi.install_as_couchbase();"
            "from couchbase.bucket import Bucket; from couchbase.exceptions import NotFoundError;"
            "import couchbase; from couchbase import FMT_JSON;"
            "b = Bucket(%r); b.upsert('ic', 1); print(b.get('ic').value)\n"
            "try:\n    b.get('ic-missing')\nexcept NotFoundError:\n    print('typed')"
            % memcached.connstr)
    env = dict(os.environ)
    code += ("\nimport couchbase.items, couchbase.transcoder, couchbase.result\n"
             "from couchbase.items import Item, ItemSequence\n"
             "from couchbase.result import MultiResult\n"
             "from couchbase.transcoder import Transcoder\n"
             "from couchbase.cluster import Cluster, PasswordAuthenticator\n"
             "from couchbase import LOCKMODE_WAIT, FMT_UTF8, exceptions\n"
             "assert couchbase_ffi.install_as_couchbase() is couchbase  # idempotent\n"
             "print(couchbase.items.__name__, couchbase.bucket.Bucket is couchbase_ffi.Bucket)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "typed", "couchbase_ffi.items", "True"]
    clash = ("import sys, types; sys.modules['couchbase'] = types.ModuleType('couchbase');"
             "import couchbase_ffi\ntry:\n    couchbase_ffi.install_as_couchbase()\n"
             "except ImportError as e:\n    print('refused', 'already imported' in str(e) and 'couchbase' in str(e))")
    out = subprocess.run([sys.executable, "-c", clash], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["refused", "True"], out.stderr


def test_constructor_keywords_as_2x(memcached):
    b = Bucket(connstr=memcached.connstr, quiet=True, timeout=1.5, transcoder=Transcoder,
               default_format=FMT_UTF8, lockmode=LOCKMODE_NONE, unlock_gil=False)
    assert b.quiet and b.timeout == 1.5 and isinstance(b.transcoder, Transcoder)
    b.upsert("kw", "text")
    assert b.get("kw").flags == FMT_UTF8 and not b.get("kw-missing").success
    assert "nodes=['127.0.0.1:%d']" % memcached.port in repr(b)
    b.close()
    with pytest.raises(TypeError):
        Bucket(memcached.connstr, no_such_option=1)
    b = Bucket(memcached.connstr, operation_timeout=0.25)
    assert b.timeout == 0.25
    b.close()


def test_get_quiet_miss_result(bucket):
    r = bucket.get("never-there", quiet=True)
    assert (r.success, r.rc, r.value, r.key) == (False, 0x0D, None, "never-there")
    assert "not exist" in r.errstr
    assert bucket.remove("never-there", quiet=True).rc == 0x0D


def test_not_found_error_carries_key_and_result(bucket):
    with pytest.raises(E.NotFoundError) as ei:
        bucket.get("nf-key")
    e = ei.value
    assert e.rc == 0x0D and e.key == "nf-key" and e.result.rc == 0x0D and not e.result.success
    assert "RC=0xD" in str(e) and "nf-key" in str(e)
    assert e.is_data and not e.is_network


def test_remove_and_touch_multi_take_dicts(bucket):
    w = bucket.upsert_multi({"rm1": 1, "rm2": 2})
    with pytest.raises(E.KeyExistsError):
        bucket.remove_multi({"rm1": w["rm1"].cas + 1})
    assert bucket.remove_multi(w).all_ok  # values: results carrying the CAS
    assert set(bucket.remove_multi(["rm1", "rm2"], quiet=True)) == {"rm1", "rm2"}
    bucket.upsert_multi({"tm1": 1, "tm2": 2})
    assert bucket.touch_multi({"tm1": 100, "tm2": 200}).all_ok
    with pytest.raises(E.ArgumentError):
        bucket.touch_multi({"tm1": -1})
    with pytest.raises(E.ArgumentError):
        bucket.get_multi("tm1")  # one key is not a collection of keys


def test_multi_sent_in_one_batch_with_many_keys(bucket):
    keys = ["batch%d" % i for i in range(1000)]  # more than the harvest array holds
    bucket.upsert_multi(dict.fromkeys(keys, b"v"), format=FMT_BYTES)
    got = bucket.get_multi(keys)
    assert got.all_ok and len(got) == 1000 and got["batch999"].value == b"v"


def test_deprecated_2x_names_still_work(bucket):
    with pytest.warns(DeprecationWarning):
        bucket.set("dep", 1)
    with pytest.warns(DeprecationWarning):
        bucket.add("dep-new", 1)
    with pytest.warns(DeprecationWarning):
        assert bucket.incr("dep", amount=4).value == 5
    with pytest.warns(DeprecationWarning):
        assert bucket.decr("dep").value == 4
    with pytest.warns(DeprecationWarning):
        bucket.delete_multi(["dep", "dep-new"])


def test_stats_values_are_ints_where_numeric(bucket, memcached):
    node = "127.0.0.1:%d" % memcached.port
    st = bucket.stats()
    assert isinstance(st["curr_connections"][node], int)
    assert isinstance(st["version"][node], str)
    assert bucket.stats("settings")["maxbytes"][node] > 0  # a stat group
    both = bucket.stats(["settings", "slabs"])
    assert "maxbytes" in both and "active_slabs" in both


def test_flush_empties_every_server(own_memcached):
    with Bucket(own_memcached.connstr) as b:
        b.upsert_multi({"f1": 1, "f2": 2})
        assert b.flush().success
        assert not b.get_multi(["f1", "f2"], quiet=True).all_ok


def test_exception_table_matches_2x():
    assert E.exc_class(0x07) is E.InvalidError and E.exc_class(0x1F) is E.InvalidError
    assert E.exc_class(0x21) is E.ArgumentError and E.exc_class(0x22) is E.ArgumentError
    assert E.exc_class(0x1B) is E.ClientTemporaryFailError
    assert E.exc_class(0x0B) is E.TemporaryFailError and E.exc_class(0x04) is E.TooBigError
    refused = E.exc_class(0x2C)  # unnamed in 2.x: made from its categories
    assert issubclass(refused, E.ConnectError) and issubclass(refused, E.CouchbaseNetworkError)
    assert E.exc_class(0x2C) is refused  # made once
    e = E.exc_from_rc(0x17, key="k")
    assert isinstance(e, E.TimeoutError) and e.is_transient and e.is_network and e.rc == 0x17
    assert E.CouchbaseError.rc_to_exctype(0x0D) is E.NotFoundError
    assert E.NotSupportedError.rc == 0x13 and E.DeltaBadvalError.rc == 0x03


def test_unknown_format_and_bad_counter_args(bucket):
    with pytest.raises(E.ArgumentError):
        bucket.upsert("k", 1, format=0x7777)
    for kwargs in ({"delta": "1"}, {"delta": 2 ** 63}, {"initial": -1}, {"ttl": -5}):
        with pytest.raises(E.ArgumentError):
            bucket.counter("ctr-bad", **kwargs)
    with pytest.raises(E.ArgumentError):
        bucket.get("k", ttl=2 ** 32)
    with pytest.raises(E.ArgumentError):
        bucket.upsert("k", 1, cas=-1)
    assert bucket.upsert("k", bytearray(b"ba"), format=FMT_BYTES).success
    assert bucket.get("k").value == b"ba"


def test_lock_family_is_refused_before_sending_on_memcached(bucket):
    for call in (lambda: bucket.lock_multi(["k"], ttl=5), lambda: bucket.unlock_multi({"k": 1}),
                 lambda: bucket.remove("k", persist_to=1), lambda: bucket.get_multi(["k"],
                                                                                    replica=True),
                 lambda: bucket.upsert_multi({"k": 1}, replicate_to=1), lambda: bucket.endure("k")):
        with pytest.raises(E.NotSupportedError) as ei:
            call()
        assert "memcached" in str(ei.value)


def test_shared_bucket_under_lockmode_wait_keeps_results_apart(memcached):
    b = Bucket(memcached.connstr, lockmode=LOCKMODE_WAIT)
    errors = []

    def work(n):
        try:
            for i in range(150):
                b.upsert("sh%d" % n, [n, i])
                assert b.get("sh%d" % n).value == [n, i]
                assert b.get_multi(["sh%d" % n])["sh%d" % n].value == [n, i]
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    ts = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert not errors
    b.close()


def test_lockmode_exc_detects_real_concurrency(memcached):
    b = Bucket(memcached.connstr, lockmode=LOCKMODE_EXC)
    b.upsert("exc", b"x" * 100000, format=FMT_BYTES)
    seen = []

    def work():
        for _ in range(300):
            try:
                b.get("exc")
            except E.ObjectThreadError:
                seen.append(1)
                return
    ts = [threading.Thread(target=work) for _ in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert seen  # threads really ran inside C at the same time (the GIL was released)
    b.close()


def test_timeout_is_typed_and_late_replies_are_not_mixed_up(own_memcached):
    import signal
    import time
    b = Bucket(own_memcached.connstr, timeout=0.2)
    b.upsert_multi({"to-a": "a", "to-b": "b"})
    os.kill(own_memcached.proc.pid, signal.SIGSTOP)
    try:
        time.sleep(0.05)
        with pytest.raises(E.TimeoutError) as ei:
            b.get("to-a")
        assert ei.value.is_transient and ei.value.key == "to-a"
        with pytest.raises(E.CouchbaseTransientError) as ei:
            b.get_multi(["to-a", "to-b"])
        assert {r.rc for r in ei.value.all_results.values()} == {E.TimeoutError.rc}
    finally:
        os.kill(own_memcached.proc.pid, signal.SIGCONT)
    for _ in range(3):  # the late replies to the timed-out gets must not answer these
        assert b.get("to-b").value == "b" and b.get("to-a").value == "a"
    b.close()
