"""couchbase 2.x semantics, as code written for the official 2.x client (2.5.x)
sees them through ``couchbase_ffi.install_as_couchbase()``: the memcached path.

Everything is imported under the ``couchbase.*`` names 2.x code uses.  The
Couchbase-only operations (lock, observe, endure, replicas, durability) are in
test_compat_2x_couchbase.py, against the mock cluster.
"""
import json
import pickle
import re
import threading
import time
import warnings

import pytest

import couchbase_ffi

try:
    couchbase_ffi.install_as_couchbase()
except couchbase_ffi.CouchbaseAlreadyImported:  # pragma: no cover - a real couchbase 2.x
    pytest.skip("another couchbase package is imported", allow_module_level=True)

import couchbase  # noqa: E402
import couchbase.exceptions as E  # noqa: E402
from couchbase import (FMT_JSON, FMT_PICKLE, FMT_BYTES, FMT_UTF8, FMT_AUTO,  # noqa: E402
                       FMT_LEGACY_MASK, FMT_COMMON_MASK)
from couchbase.bucket import Bucket  # noqa: E402
from couchbase.result import (Result, ValueResult, OperationResult,  # noqa: E402
                              MultiResult)
from couchbase.items import Item, ItemSequence, ItemOptionDict, ItemCollection  # noqa: E402
from couchbase.transcoder import Transcoder, TranscoderPP, LegacyTranscoderPP  # noqa: E402
from couchbase.user_constants import LOCKMODE_EXC, LOCKMODE_NONE, LOCKMODE_WAIT  # noqa: E402


@pytest.fixture
def cb(memcached):
    b = Bucket(memcached.connstr)
    yield b
    b.close()


_n = [0]


def key(prefix="k"):
    _n[0] += 1
    return "compat:%s:%d:%d" % (prefix, id(_n), _n[0])


def kv_dict(n=5, prefix="kv"):
    return {key(prefix): "value_%d" % i for i in range(n)}


class FlagsWriter(Transcoder):
    """Stores raw bytes with chosen flags: what another SDK would have written."""

    def __init__(self, flags):
        self.flags = flags

    def encode_value(self, value, format):
        return value, self.flags


def write_foreign(memcached, k, data, flags):
    b = Bucket(memcached.connstr, transcoder=FlagsWriter(flags))
    b.upsert(k, data)
    b.close()


# ---- module names 2.x code imports --------------------------------------------------------

def test_couchbase_module_names():
    import couchbase.bucket
    import couchbase.connection
    import couchbase.connstr
    import couchbase.cluster
    import couchbase.user_constants as UC
    for name in ("FMT_JSON", "FMT_PICKLE", "FMT_BYTES", "FMT_UTF8", "FMT_AUTO", "FMT_MASK",
                 "FMT_LEGACY_MASK", "FMT_COMMON_MASK", "OBS_FOUND", "OBS_PERSISTED",
                 "OBS_NOTFOUND", "OBS_LOGICALLY_DELETED", "OBS_MASK", "LOCKMODE_EXC",
                 "LOCKMODE_WAIT", "LOCKMODE_NONE"):
        assert getattr(couchbase, name) == getattr(UC, name) == getattr(couchbase.bucket, name)
    assert (couchbase.OBS_FOUND, couchbase.OBS_PERSISTED, couchbase.OBS_NOTFOUND,
            couchbase.OBS_LOGICALLY_DELETED, couchbase.OBS_MASK) == (0, 1, 0x80, 0x81, 0x81)
    assert (FMT_JSON, FMT_PICKLE, FMT_BYTES, FMT_UTF8) == (0x02000000, 0x01000001, 0x03000002,
                                                           0x04000004)
    assert (FMT_LEGACY_MASK, FMT_COMMON_MASK) == (0x07, 0xFF000000)
    assert (LOCKMODE_NONE, LOCKMODE_EXC, LOCKMODE_WAIT) == (0, 1, 2)
    # couchbase.bucket re-exports the exceptions and results, as 2.x's did
    from couchbase.bucket import NotFoundError, KeyExistsError, ValueResult as VR, _depr  # noqa
    assert NotFoundError is E.NotFoundError and VR is ValueResult
    from couchbase.result import ObserveInfo, HttpResult  # noqa: F401
    from couchbase.cluster import (Cluster, PasswordAuthenticator, ClassicAuthenticator,  # noqa
                                   Authenticator, MixedAuthError, NoBucketError)
    assert issubclass(MixedAuthError, E.CouchbaseError)
    from couchbase.connstr import ConnectionString, convert_1x_args  # noqa: F401
    from couchbase.connection import Connection
    assert issubclass(Connection, Bucket)
    for name in ("set_json_converters", "set_pickle_converters", "Couchbase",
                 "enable_logging", "disable_logging", "_to_json", "_from_json"):
        assert callable(getattr(couchbase, name))
    assert isinstance(couchbase.__version__, str) and couchbase.__version__.startswith("2.")
    for name in ("SubdocPathNotFoundError", "DocumentNotJsonError", "SubdocMultipleErrors",
                 "HTTPError", "ViewEngineError", "QueueEmpty", "CouchbaseInternalError"):
        assert hasattr(E, name)
    assert couchbase._to_json({"a": [1]}) == '{"a":[1]}'
    assert couchbase._from_json('{"a":[1]}') == {"a": [1]}


# ---- results ------------------------------------------------------------------------------

def test_result_types_and_fields(cb):
    k = key("res")
    rv = cb.upsert(k, "value")
    assert type(rv) is OperationResult and isinstance(rv, Result)
    assert rv.success and rv.rc == 0 and rv.key == k and isinstance(rv.cas, int) and rv.cas > 0
    assert isinstance(rv.errstr, str) and rv
    g = cb.get(k)
    assert type(g) is ValueResult and isinstance(g, OperationResult)
    assert (g.value, g.flags, g.cas, g.key) == ("value", FMT_JSON, rv.cas, k)
    for r in (cb.touch(k, ttl=100), cb.remove(k)):
        assert type(r) is OperationResult and r.success
    c = cb.counter(k, initial=10)
    assert type(c) is ValueResult and c.value == 10 and c.cas
    assert cb.get(k).value == 10 and cb.get(k).flags == 0  # counters are legacy-JSON numbers
    miss = cb.get(key("miss"), quiet=True)
    assert (miss.value, miss.flags, miss.cas, miss.success) == (None, 0, 0, False)
    assert E.NotFoundError._can_derive(miss.rc) and not E.KeyExistsError._can_derive(miss.rc)


def test_result_repr_is_2x_form(cb):
    k = key("repr")
    w = cb.upsert(k, "v")
    assert repr(w) == "OperationResult<rc=0x0, key=%r, cas=0x%x>" % (k, w.cas)
    assert repr(cb.get(k)) == ("ValueResult<rc=0x0, key=%r, value='v', cas=0x%x, flags=0x2000000>"
                               % (k, w.cas))
    m = repr(cb.get(key("nope"), quiet=True))
    assert re.match(r"ValueResult<rc=0xD\[[^\]]+\], key='compat:nope:\d+:\d+', value=None, "
                    r"cas=0x0, flags=0x0>$", m), m
    assert str(w) == repr(w)


def test_multiresult_is_a_dict_with_all_ok(cb):
    kv = kv_dict()
    mr = cb.upsert_multi(kv)
    assert isinstance(mr, MultiResult) and isinstance(mr, dict) and mr.all_ok
    assert set(mr) == set(kv) and all(type(r) is OperationResult for r in mr.values())
    got = cb.get_multi(kv.keys())
    assert got.keys() == kv.keys() and {k: r.value for k, r in got.items()} == kv
    repr(got)
    str(got)


# ---- exceptions ---------------------------------------------------------------------------

def test_exception_hierarchy_and_codes():
    assert E.CouchbaseError.CODE == 0 and E.ArgumentError.CODE == 0
    codes = {E.AuthError: 0x02, E.DeltaBadvalError: 0x03, E.TooBigError: 0x04,
             E.BusyError: 0x05, E.InvalidError: 0x07, E.NoMemoryError: 0x08,
             E.TemporaryFailError: 0x0B, E.KeyExistsError: 0x0C, E.NotFoundError: 0x0D,
             E.NetworkError: 0x10, E.NotMyVbucketError: 0x11, E.NotStoredError: 0x12,
             E.NotSupportedError: 0x13, E.UnknownHostError: 0x15, E.ProtocolError: 0x16,
             E.TimeoutError: 0x17, E.ConnectError: 0x18, E.BucketNotFoundError: 0x19,
             E.ClientTemporaryFailError: 0x1B, E.BadHandleError: 0x1C}
    for cls, code in codes.items():
        assert cls.CODE == code, cls
        assert issubclass(E.CouchbaseError.rc_to_exctype(code), cls)
        assert cls._can_derive(code)
    # categories as libcouchbase gives them (2.x derived its classes from them)
    cat = E.CouchbaseError.rc_to_exctype
    assert issubclass(cat(0x0D), E.CouchbaseDataError) and issubclass(cat(0x0C),
                                                                     E.CouchbaseDataError)
    assert issubclass(cat(0x0B), E.CouchbaseTransientError)
    assert not issubclass(cat(0x0B), E.CouchbaseNetworkError)
    assert issubclass(cat(0x05), E.CouchbaseTransientError)
    assert not issubclass(cat(0x05), E.CouchbaseNetworkError)  # BusyError: transient only
    assert issubclass(cat(0x17), E.CouchbaseNetworkError)
    assert issubclass(cat(0x17), E.CouchbaseTransientError)
    assert issubclass(cat(0x18), E.CouchbaseNetworkError)
    assert issubclass(cat(0x02), E.CouchbaseFatalError) and issubclass(cat(0x19),
                                                                      E.CouchbaseFatalError)
    assert issubclass(cat(0x03), E.CouchbaseInputError) and issubclass(cat(0x04),
                                                                      E.CouchbaseDataError)
    assert issubclass(cat(0x0E), E.CouchbaseFatalError)  # DlopenFailedError
    for rc in (0x2C, 0x2D, 0x2E):  # ECONNREFUSED, ESOCKSHUTDOWN, ECONNRESET
        assert issubclass(cat(rc), E.CouchbaseNetworkError)
        assert issubclass(cat(rc), E.CouchbaseTransientError)
    assert not issubclass(cat(0x13), (E.CouchbaseDataError, E.CouchbaseNetworkError))
    e = E.exc_from_rc(0x0D, "a message", "an object")  # 2.x's (rc, msg, obj)
    assert isinstance(e, E.NotFoundError) and e.rc == 0x0D
    assert e.message == "a message" and e.objextra == "an object"
    assert e.categories & 0x10 and e.is_data and not e.is_transient
    assert E.TimeoutError is not TimeoutError  # 2.x shadowed the builtin too
    copy = E.NotFoundError(e)  # 2.x: an exception built from another copies it
    assert copy.rc == 0x0D and copy.message == "a message"
    assert E.ArgumentError.pyexc("m", obj=1).objextra == 1


def test_single_operation_error_carries_all_results(cb):
    k = key("excextra")
    try:
        cb.get(k, quiet=False)
    except E.CouchbaseError as exc:
        e = exc
    assert isinstance(e, E.NotFoundError) and isinstance(e, E.CouchbaseDataError)
    assert e.message and e.key == k and e.rc == 0x0D
    assert isinstance(e.all_results, MultiResult) and k in e.all_results
    assert isinstance(e.all_results[k], ValueResult) and e.all_results[k].rc == e.rc
    assert e.result is e.all_results[k] and not e.result.success
    s = str(e)
    assert s.startswith("<Key=%r, RC=0xD[" % (k,)) and "Results=1" in s, s
    repr(e)
    w = cb.upsert(k, 1)
    with pytest.raises(E.KeyExistsError) as ei:
        cb.replace(k, 2, cas=w.cas + 1)
    assert type(ei.value.result) is OperationResult and ei.value.all_results[k].rc == 0x0C


def test_multi_error_all_results_and_split(cb):
    existing, missing = kv_dict(3, "mex"), kv_dict(3, "mmiss")
    cb.upsert_multi(existing)
    with pytest.raises(E.NotFoundError) as ei:
        cb.get_multi(list(missing) + list(existing), quiet=False)
    e = ei.value
    assert len(e.all_results) == 6 and not e.all_results.all_ok
    for k, v in existing.items():
        assert e.all_results[k].success and e.all_results[k].value == v
    for k in missing:
        assert not e.all_results[k].success and e.all_results[k].value is None
    ok, bad = e.split_results()
    assert set(ok) == set(existing) and set(bad) == set(missing)
    str(e)


def test_python_side_errors_have_rc_0():
    e = E.ArgumentError("bad")
    assert e.rc == 0 and e.message == "bad" and str(e) == "<bad>"
    assert e.all_results == {} and e.key is None and e.inner_cause is None


def test_closed_bucket(memcached):
    b = Bucket(memcached.connstr)
    assert not b.closed
    b._close()
    assert b.closed
    with pytest.raises(E.ClientTemporaryFailError) as ei:  # what 2.x raised
        b.get("foo")
    assert isinstance(ei.value, E.ObjectDestroyedError) and ei.value.rc == 0x1B
    with pytest.raises(E.ObjectDestroyedError):
        b.upsert("foo", 1)


# ---- argument validation (badargs_t, empty_key_t...) --------------------------------------

BAD_KEYS = ((), ("key",), {"key": "value"}, [], set(), {}.keys(), {}.values(), ["key"], None,
            True, False, 0, object())


@pytest.mark.parametrize("k", BAD_KEYS, ids=[type(k).__name__ for k in BAD_KEYS])
def test_bad_single_keys_and_values(cb, k):
    with pytest.raises(E.ValueFormatError):
        cb.get(k)
    with pytest.raises(E.ValueFormatError):
        cb.counter(k)
    with pytest.raises(E.ValueFormatError):
        cb.remove(k)
    with pytest.raises(E.ValueFormatError):
        cb.upsert(k, "value")
    with pytest.raises(E.ValueFormatError):
        cb.upsert("key", k, format=FMT_UTF8)
    with pytest.raises(E.ValueFormatError):
        cb.upsert("key", k, format=FMT_BYTES)
    with pytest.raises(E.ValueFormatError):
        cb.append("key", k)


BAD_MULTI = ("key", None, [], {}, set(), {}.keys(), {}.values(), 0, object())


@pytest.mark.parametrize("ks", BAD_MULTI, ids=[type(k).__name__ for k in BAD_MULTI])
def test_bad_multi_arguments(cb, ks):
    for fn in (cb.get_multi, cb.upsert_multi, cb.counter_multi, cb.remove_multi,
               cb.touch_multi, cb.insert_multi, cb.append_multi):
        with pytest.raises(E.ArgumentError):
            fn(ks)


def test_store_multi_needs_a_dict(cb):
    for ks in (["a", "b"], ("a",), {"a"}):
        with pytest.raises(E.ArgumentError):
            cb.upsert_multi(ks)
    with pytest.raises(TypeError):
        cb.upsert_multi({"a": 1}, cas=123)  # no cas for a multi
    with pytest.raises(E.ArgumentError):
        cb.upsert_multi(ItemSequence([]))  # empty


def test_bad_elements_in_a_key_list(cb):
    for fn in (cb.counter_multi, cb.remove_multi, cb.get_multi):
        with pytest.raises((E.ArgumentError, E.ValueFormatError)):
            fn(("key1", None, "key2"))
    with pytest.raises((E.ArgumentError, E.ValueFormatError)):
        cb.upsert_multi({None: "value"})
    with pytest.raises(E.ValueFormatError):
        cb.upsert_multi({"Value": None}, format=FMT_UTF8)


BAD_TTLS = (-1, "ttl", object(), [1], {"foo": "bar"}, 2 ** 100, 2 ** 32, True)


@pytest.mark.parametrize("ttl", BAD_TTLS, ids=[repr(t)[:12] for t in BAD_TTLS])
def test_bad_ttls(cb, ttl):
    for call in (lambda: cb.get("key", ttl=ttl), lambda: cb.upsert("key", "v", ttl=ttl),
                 lambda: cb.touch("key", ttl=ttl), lambda: cb.counter("key", ttl=ttl),
                 lambda: cb.get_multi(["key"], ttl=ttl),
                 lambda: cb.get_multi({"key": {"ttl": ttl}}),
                 lambda: cb.get_multi({"key": ttl}), lambda: cb.touch_multi({"key": ttl}),
                 lambda: cb.upsert_multi({"key": 1}, ttl=ttl),
                 lambda: cb.counter_multi(["key"], ttl=ttl)):
        with pytest.raises(E.ArgumentError):
            call()


def test_get_multi_dict_values_are_per_key_options(cb):
    for bad in ({"key": "string"}, {"key": object()}, {"key": {"nottl": 1}}):
        with pytest.raises(E.ArgumentError):
            cb.get_multi(bad)
    kv = kv_dict(2, "gmd")
    cb.upsert_multi(kv)
    a, b = list(kv)
    got = cb.get_multi({a: 100, b: {"ttl": 100}})
    assert got.all_ok and got[a].value == kv[a] and got[b].value == kv[b]
    assert cb.get_multi({a: None})[a].value == kv[a]


def test_bad_cas_delta_initial(cb):
    for cas in (-1, 2 ** 64, "1", 1.5):
        with pytest.raises(E.ArgumentError):
            cb.upsert("key", 1, cas=cas)
    for kw in ({"delta": "1"}, {"delta": 1.5}, {"initial": -1}, {"initial": "0"},
               {"delta": 2 ** 64}):
        with pytest.raises(E.ArgumentError):
            cb.counter("key", **kw)


def test_empty_keys(cb):
    calls = (lambda: cb.upsert("", "value"), lambda: cb.get(""), lambda: cb.counter(""),
             lambda: cb.remove(""), lambda: cb.touch("", ttl=1), lambda: cb.append("", "x"),
             lambda: cb.upsert_multi({"": "value"}), lambda: cb.counter_multi(("", "")),
             lambda: cb.remove_multi(("", "")), lambda: cb.get_multi([""]))
    for call in calls:
        with pytest.raises(E.ArgumentError):
            call()
    with pytest.warns(DeprecationWarning), pytest.raises(E.ArgumentError):
        cb.set("", "value")
    with pytest.warns(DeprecationWarning), pytest.raises(E.ArgumentError):
        cb.incr("")


def test_key_lengths(cb):
    assert cb.upsert("k" * 250, 1).success and cb.get("k" * 250).value == 1
    for k in ("k" * 251, "\u00e9" * 126):
        with pytest.raises(E.ArgumentError) as ei:
            cb.upsert(k, 1)
        assert isinstance(ei.value, E.InvalidError)  # the server's EINVAL in 2.x
        with pytest.raises(E.InvalidError):
            cb.get_multi(["ok-key", k])
    assert cb.upsert("after-long-key", 1).success


def test_unicode_and_bytes_keys(cb):
    uc = b"\xff\xfe\xe9\x05\xdc\x05\xd5\x05\xdd\x05".decode("utf-16")
    rv = cb.upsert(uc, uc)
    assert rv.success and rv.key == uc
    g = cb.get(uc)
    assert g.value == uc and g.key == uc
    assert cb.get_multi([uc])[uc].value == uc
    # 2.x on Python 3 refused bytes keys (ValueFormatError); they are accepted here
    assert cb.upsert(b"bytes-key", 1).key == b"bytes-key"
    assert cb.get("bytes-key").value == 1


def test_timeout_property(cb):
    assert cb.timeout == 2.5
    for bad in (0, -1, None, "a string"):
        with pytest.raises(Exception):
            cb.timeout = bad
    with pytest.raises(ValueError):
        cb.timeout = 0
    for ok in (0.1, 1, 2.5, "3"):
        cb.timeout = ok
        assert cb.timeout == float(ok)


def test_quiet_and_default_format_properties(memcached, cb):
    for bad in ("asfasf", None, 1):
        with pytest.raises(E.ArgumentError):
            cb.quiet = bad
    cb.quiet = True
    assert cb.quiet is True and not cb.get(key("qp")).success
    cb.quiet = False
    with pytest.raises(E.NotFoundError):
        cb.get(key("qp"))
    for fmt in (FMT_JSON, FMT_BYTES, FMT_UTF8, FMT_PICKLE, FMT_AUTO):
        cb.default_format = fmt
        assert cb.default_format is fmt
    for bad in ("a format", None, False, True, object()):
        with pytest.raises(E.ArgumentError):
            cb.default_format = bad
    cb.default_format = FMT_UTF8
    k = key("dfmt")
    cb.upsert(k, "text")
    assert cb.get(k).flags == FMT_UTF8
    with pytest.raises(E.ValueFormatError):
        cb.upsert(k, {"not": "text"})
    b = Bucket(memcached.connstr, default_format=123)  # any int is accepted (2.x)
    assert b.default_format == 123
    with pytest.raises(E.ArgumentError):
        b.upsert("k", "v")  # but no such format exists
    b.close()
    b = Bucket(memcached.connstr, default_format=FMT_AUTO)
    b.upsert(k, set([]))
    assert b.get(k).flags == FMT_PICKLE
    b.close()
    with pytest.raises(E.ArgumentError):
        Bucket(memcached.connstr, default_format="json")


def test_constructor_defaults(memcached):
    b = Bucket(memcached.connstr)
    defaults = {"quiet": False, "default_format": FMT_JSON, "unlock_gil": True,
                "transcoder": None, "data_passthrough": False, "lockmode": LOCKMODE_EXC}
    for name, value in defaults.items():
        assert getattr(b, name) == value, name
    b.close()


# ---- quiet --------------------------------------------------------------------------------

def test_quiet_per_call_and_bucket_level(memcached):
    k = key("quiet")
    loud = Bucket(memcached.connstr)
    quiet = Bucket(memcached.connstr, quiet=True)
    with pytest.raises(E.NotFoundError):
        loud.get(k)
    assert not loud.get(k, quiet=True).success
    assert not quiet.get(k).success
    with pytest.raises(E.NotFoundError):
        quiet.get(k, quiet=False)
    rv = quiet.remove(k)
    assert not rv.success and rv.rc == 0x0D
    with pytest.raises(E.NotFoundError):
        quiet.remove(k, quiet=False)
    assert not quiet.get_multi([k]).all_ok
    with pytest.raises(E.NotFoundError):
        loud.remove_multi([k])
    assert not loud.remove_multi([k], quiet=True)[k].success
    # quiet is only about missing keys
    w = loud.upsert(k, 1)
    with pytest.raises(E.KeyExistsError):
        quiet.remove(k, cas=w.cas + 1, quiet=True)
    with pytest.raises(E.KeyExistsError):
        quiet.insert(k, 2)
    with pytest.raises(E.NotFoundError):  # quiet does not cover replace/counter/touch
        quiet.replace(key("quiet-replace"), 1)
    with pytest.raises(E.NotFoundError):
        quiet.counter(key("quiet-counter"))
    with pytest.raises(E.NotFoundError):
        quiet.touch(key("quiet-touch"), ttl=10)
    loud.close()
    quiet.close()


# ---- formats and flags ---------------------------------------------------------------------

def test_format_auto_as_2x(cb):
    k = key("auto")
    for jv in (None, True, False, {}, [], tuple(), [1, "a"], {"k": [None]}):
        cb.upsert(k, jv, format=FMT_AUTO)
        rv = cb.get(k, no_format=True)
        assert rv.flags == FMT_JSON and rv.value.decode("utf-8") == json.dumps(
            jv, separators=(",", ":"))
    for bv in (b"\x01", bytearray([1, 2, 3])):
        cb.upsert(k, bv, format=FMT_AUTO)
        rv = cb.get(k, no_format=True)
        assert rv.flags == FMT_BYTES and rv.value == bv
    for uv in ("\x42", "\ua000"):
        cb.upsert(k, uv, format=FMT_AUTO)
        rv = cb.get(k, no_format=True)
        assert rv.flags == FMT_UTF8 and rv.value == uv.encode("utf-8")
    for pv in (set([]), 42, 1.5, frozenset([1])):  # numbers are pickled by FMT_AUTO in 2.x
        cb.upsert(k, pv, format=FMT_AUTO)
        rv = cb.get(k, no_format=True)
        assert rv.flags == FMT_PICKLE and rv.value == pickle.dumps(pv)
        assert cb.get(k).value == pv


def test_format_round_trips_and_errors(cb):
    k = key("fmt")
    for value, fmt in (({"some": "value1"}, FMT_JSON), ({"some": "value3"}, FMT_PICKLE),
                       (b"some value6", FMT_BYTES), ("\x42", FMT_UTF8), (7, FMT_JSON),
                       (None, FMT_JSON), (False, FMT_PICKLE), (True, FMT_JSON)):
        assert cb.upsert(k, value, format=fmt).cas > 0
        g = cb.get(k)
        assert g.value == value and g.flags == fmt
    for value, fmt in ((object(), FMT_JSON), ({"some": "value5"}, FMT_BYTES),
                       ({"some": "value5.1"}, FMT_UTF8), ("text", FMT_BYTES),
                       (b"bytes", FMT_UTF8)):
        with pytest.raises(E.ValueFormatError):
            cb.upsert(k, value, format=fmt)
    for fmt in (0, 1, 0x7777, "json", -1):
        with pytest.raises(E.ArgumentError):
            cb.upsert(k, 1, format=fmt)
    cb.upsert(k, bytearray(b"Hello World"), format=FMT_BYTES)
    assert cb.get(k).value == b"Hello World"


def test_json_is_compact_and_keeps_unicode(cb):
    k = key("json")
    cb.upsert(k, {"foo": "bar", "n": [1, 2]}, format=FMT_JSON)
    assert cb.get(k, no_format=True).value == b'{"foo":"bar","n":[1,2]}'
    uc = b"\xff\xfe\xe9\x05\xdc\x05\xd5\x05\xdd\x05".decode("utf-16")
    cb.upsert(k, uc)
    cb.data_passthrough = 1
    assert cb.get(k).value == b'"' + uc.encode("utf-8") + b'"'
    cb.data_passthrough = 0
    assert cb.get(k).value == uc
    kl = [key("jsonm") for _ in range(3)]
    cb.upsert_multi(dict.fromkeys(kl, {"foo": "bar"}))
    for v in cb.get_multi(kl, no_format=True).values():
        assert v.value == b'{"foo":"bar"}'


def test_data_passthrough_and_no_format(cb):
    k = key("passthrough")
    cb.data_passthrough = True
    cb.upsert(k, "some json")  # values are still encoded
    cb.append(k, "blobs")
    rv = cb.get(k)
    assert rv.success and rv.flags == FMT_JSON and rv.value == b'"some json"blobs'
    assert cb.get_multi([k])[k].value == b'"some json"blobs'
    cb.data_passthrough = False
    with pytest.raises(E.ValueFormatError):
        cb.get(k)
    with pytest.raises(E.ValueFormatError) as ei:
        cb.get_multi([k])
    assert ei.value.key == k and k in ei.value.all_results  # 2.x attached the MultiResult
    assert cb.get(k, no_format=True).value == b'"some json"blobs'


def test_empty_values(cb):
    k = key("zero")
    assert cb.upsert(k, b"", format=FMT_BYTES).success
    assert cb.get(k).value == b""
    assert cb.upsert(k, "", format=FMT_UTF8).success and cb.get(k).value == ""


@pytest.mark.parametrize("flags, data, expected", [
    (0, b'{"x": 1}', {"x": 1}),                   # legacy JSON: what most clients write
    (0x01, pickle.dumps((1, "a")), (1, "a")),     # legacy pickle
    (0x02, b"\x00\x01", b"\x00\x01"),             # legacy bytes
    (0x04, b"legacy utf8", "legacy utf8"),        # legacy UTF-8
    (0x02000000, b"[1]", [1]),                    # common JSON
    (0x02000001, b"[2]", [2]),                    # the common byte decides
    (0x04000000, b"text", "text"),
    (0x03000000, b"bin", b"bin"),
    (0x01000000, pickle.dumps({1}), {1}),
])
def test_reading_what_other_sdks_wrote(memcached, cb, flags, data, expected):
    k = key("foreign")
    write_foreign(memcached, k, data, flags)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rv = cb.get(k)
    assert rv.value == expected and rv.flags == flags


@pytest.mark.parametrize("flags", [0x10, 0x08, 0x03, 0x07, 0x05000000, 0x12345678])
def test_unrecognised_flags_give_bytes_with_a_warning(memcached, cb, flags):
    k = key("unknown-flags")
    write_foreign(memcached, k, b"some text", flags)
    with pytest.warns(UserWarning):
        rv = cb.get(k)
    assert rv.value == b"some text" and rv.flags == flags


def test_json_and_pickle_converters(cb):
    calls = {"encode": 0, "decode": 0}

    def enc(v):
        calls["encode"] += 1
        return json.dumps(v)

    def dec(v):
        calls["decode"] += 1
        return json.loads(v)
    old = couchbase.set_json_converters(enc, dec)
    try:
        assert old[0]({"a": 1}) == '{"a":1}' and old[1]('{"a":1}') == {"a": 1}  # 2.x defaults
        k = key("conv")
        cb.upsert(k, ["value"], format=FMT_JSON)
        assert cb.get(k).value == ["value"]
        assert calls == {"encode": 1, "decode": 1}
        assert couchbase.set_json_converters(*old) == (enc, dec)
    finally:
        couchbase.set_json_converters(*old)
    pcalls = []
    oldp = couchbase.set_pickle_converters(lambda v: pcalls.append(1) or pickle.dumps(v),
                                           lambda v: pcalls.append(2) or pickle.loads(v))
    try:
        k = key("pconv")
        cb.upsert(k, {1, 2, 3}, format=FMT_PICKLE)
        assert cb.get(k).value == {1, 2, 3} and pcalls == [1, 2]
    finally:
        couchbase.set_pickle_converters(*oldp)
    assert oldp == (pickle.dumps, pickle.loads)


# ---- transcoders (transcoder_t, encodings_t) ----------------------------------------------

class Mangled(object):
    """A transcoder whose methods can be made to return given values."""

    def __init__(self):
        self._tc = TranscoderPP()
        self.next = {}

    def _do(self, name, *args):
        if name in self.next:
            v = self.next[name]
            return v() if callable(v) else v
        return getattr(self._tc, name)(*args)

    def encode_key(self, k):
        return self._do("encode_key", k)

    def decode_key(self, k):
        return self._do("decode_key", k)

    def encode_value(self, v, f):
        return self._do("encode_value", v, f)

    def decode_value(self, v, f):
        return self._do("decode_value", v, f)


def test_transcoder_pp_round_trips(cb):
    cb.transcoder = TranscoderPP()
    k = key("tcpp")
    for v in ({}, [], -1, None, False, True, "text", {"a": [1]}):
        cb.upsert(k, v)
        assert cb.get(k).value == v
    cb.upsert(k, b"raw", format=FMT_BYTES)
    assert cb.get(k).value == b"raw"


def test_empty_and_bad_transcoders(cb):
    k = key("badtc")
    for v in (None, False, 0):
        cb.transcoder = v
        assert cb.transcoder is None
        cb.upsert(k, "bar")
    cb.upsert(k, "value")
    cb.transcoder = object()
    with pytest.raises(E.ValueFormatError):
        cb.upsert(k, "bar")
    with pytest.raises(E.ValueFormatError):
        cb.get(k)
    m = Mangled()
    cb.transcoder = m
    cb.upsert(k, "value")
    assert cb.get(k).value == "value"
    for badret in (None, (), [], ""):
        m.next = dict.fromkeys(("encode_key", "encode_value", "decode_key", "decode_value"),
                               badret)
        with pytest.raises(E.ValueFormatError):
            cb.upsert(k, "value")
        with pytest.raises(E.ValueFormatError):
            cb.get(k)
    m.next = {"encode_key": None}
    with pytest.raises(E.ValueFormatError):
        cb.upsert(k, "value")
    for encret in (None, b"string", (None, None), (b"valid string"), (None, 0xf00),
                   (b"string", 2 ** 40), ([], 42), (b"s", -1)):
        m.next = {"encode_value": encret}
        with pytest.raises(E.ValueFormatError):
            cb.upsert(k, "value")

    def boom():
        raise ZeroDivisionError()
    m.next = {"decode_value": boom}
    with pytest.raises(E.ValueFormatError) as ei:
        cb.get(k)
    assert isinstance(ei.value.inner_cause, ZeroDivisionError)
    with pytest.raises(E.ValueFormatError):
        cb.get_multi([k])


def test_transcoder_sees_any_key_value_and_format(cb):
    k = key("anyobj")
    m = Mangled()
    cb.transcoder = m
    m.next = {"encode_key": k.encode("utf-8"), "encode_value": (b"simple_value", 10)}
    seen = []
    for o in (object(), None, Mangled(), True, False):
        m.next["decode_value"] = o
        m.next["decode_key"] = o
        cb.upsert(o, o, format=o)
        rv = cb.get(o)
        assert rv.value is o and rv.flags == 10
        seen.append(o)
    # keys must be hashable (2.x keyed its results by them)
    for o in ({}, [], set()):
        m.next["decode_key"] = o
        with pytest.raises(E.ValueFormatError):
            cb.upsert(o, o)
        with pytest.raises(E.ValueFormatError):
            cb.get(o, quiet=True)


def test_transcoder_may_take_unhashable_keys_it_decodes_to_hashable_ones(cb):
    class PathKeys(TranscoderPP):
        def encode_key(self, k):
            return "/".join(k).encode("utf-8")

        def decode_key(self, kb):
            return kb.decode("utf-8")
    cb.transcoder = PathKeys()
    assert cb.upsert(["users", "42"], {"n": 1}).success
    assert cb.get(["users", "42"]).value == {"n": 1}
    cb.transcoder = None
    assert cb.get("users/42").value == {"n": 1}


def test_transcoder_class_is_instantiated(memcached):
    b = Bucket(memcached.connstr, transcoder=TranscoderPP)
    assert isinstance(b.transcoder, TranscoderPP)
    assert b.upsert(key("tcclass"), "value").success
    b.transcoder = LegacyTranscoderPP
    assert isinstance(b.transcoder, LegacyTranscoderPP)
    b.close()


def test_legacy_and_common_flags_interoperate(cb):
    assert (FMT_JSON & FMT_LEGACY_MASK, FMT_PICKLE & FMT_LEGACY_MASK,
            FMT_BYTES & FMT_LEGACY_MASK, FMT_UTF8 & FMT_LEGACY_MASK) == (0, 1, 2, 4)
    k = key("interop")
    cb.transcoder = TranscoderPP()
    cb.upsert(k, {"foo": "bar"})
    cb.transcoder = LegacyTranscoderPP()
    assert cb.get(k).value == {"foo": "bar"}
    cb.upsert(k, {"foo": "bar"})
    cb.transcoder = TranscoderPP()
    rv = cb.get(k)
    assert rv.value == {"foo": "bar"} and rv.flags == FMT_JSON & FMT_LEGACY_MASK
    cb.transcoder = LegacyTranscoderPP()
    cb.upsert(k, b"Hello World", format=FMT_BYTES)
    cb.transcoder = None
    rv = cb.get(k)
    assert rv.flags == FMT_BYTES & FMT_LEGACY_MASK and rv.value == b"Hello World"


# ---- *_multi inputs -------------------------------------------------------------------------

class IterTemp(object):
    def __init__(self, keys, badlen=False):
        self.keys, self.badlen = keys, badlen

    def __iter__(self):
        return iter(self.keys)

    def __len__(self):
        return 100 if self.badlen else len(self.keys)


def test_multi_accepts_every_iterable_form(cb):
    kv = kv_dict(4, "forms")
    keys = list(kv)
    cb.upsert_multi(kv)
    for form in (keys, tuple(keys), set(keys), kv.keys(), dict.fromkeys(keys), IterTemp(keys),
                 (k for k in keys), ItemSequence([Item(k) for k in keys])):
        got = cb.get_multi(form)
        assert set(got) == set(keys) and got.all_ok, type(form)
    with pytest.raises(E.ArgumentError):
        cb.get_multi(IterTemp(keys, badlen=True))
    with pytest.raises(E.ArgumentError):
        cb.get_multi(kv)  # a dict's values are per-key options (ttl), not values
    cb.counter_multi(IterTemp([key("ctr")]), initial=10)
    assert cb.remove_multi(IterTemp(keys)).all_ok


def test_duplicate_keys_warn_runtime_warning(cb):
    k = key("dup")
    for m in (cb.get_multi, cb.remove_multi, cb.counter_multi):
        with pytest.warns(RuntimeWarning):
            try:
                m((k, k))
            except E.NotFoundError:
                pass


def test_remove_multi_forms(cb):
    kv = kv_dict(3, "rmf")
    rvs = cb.upsert_multi(kv)
    assert cb.remove_multi(rvs).all_ok  # a MultiResult: its CAS values are used
    rvs = cb.upsert_multi(kv)
    assert cb.remove_multi(list(rvs.values())).all_ok  # a sequence of results
    rvs = cb.upsert_multi(kv)
    bad = dict((k, r.cas) for k, r in rvs.items())
    bad[list(kv)[0]] = 0xdeadbeef
    with pytest.raises(E.KeyExistsError):
        cb.remove_multi(bad)
    cb.upsert_multi(kv)
    rvs = cb.remove_multi(("missing-" + key(), list(kv)[1]), quiet=True)
    assert not rvs.all_ok and sum(r.success for r in rvs.values()) == 1


def test_counter_multi_forms(cb):
    a, b = key("cm"), key("cm")
    r = cb.counter_multi([a, b], initial=5)
    assert [r[a].value, r[b].value] == [5, 5]
    r = cb.counter_multi({a: 10, b: -2})  # key -> delta
    assert [r[a].value, r[b].value] == [15, 3]
    c = key("cm")
    r = cb.counter_multi({a: {"delta": 100}, c: {"initial": 9, "delta": 4, "ttl": 100}})
    assert [r[a].value, r[c].value] == [115, 9]
    with pytest.raises(E.ArgumentError):
        cb.counter_multi({a: "many"})
    with pytest.raises(E.ArgumentError):
        cb.counter_multi({a: {"step": 1}})
    cb.remove(a)
    with pytest.raises(E.NotFoundError):
        cb.counter_multi([a, b])


# ---- counters, append/prepend, touch --------------------------------------------------------

def test_counter_semantics(cb):
    k = key("ctr")
    with pytest.raises(E.NotFoundError):
        cb.counter(k)
    assert cb.counter(k, initial=1, delta=1).value == 1  # initial: delta not applied
    assert int(cb.get(k).value) == 1
    assert cb.counter(k).value == 2
    assert cb.counter(k, delta=-1).value == 1
    assert cb.counter(k, delta=-10).value == 0  # floors at 0
    assert cb.counter(k, delta=0).value == 0
    srv = cb.upsert(k, "42", cas=cb.counter(k, initial=10).cas)
    assert srv.success
    cb.upsert(k, "THIS IS SPARTA")
    with pytest.raises(E.DeltaBadvalError) as ei:
        cb.counter(k)
    assert isinstance(ei.value, E.CouchbaseDataError)
    with pytest.warns(DeprecationWarning):
        assert cb.incr(key("ctr"), initial=3).value == 3
    with pytest.warns(DeprecationWarning):
        assert cb.decr_multi([k + "x"], initial=7)[k + "x"].value == 7


def test_append_prepend(cb):
    k = key("app")
    cb.upsert(k, "middle", format=FMT_UTF8)
    cb.prepend(k, "begin ")
    assert cb.append(k, " end").cas
    assert cb.get(k).value == "begin middle end"
    kb = key("appb")
    cb.upsert(kb, b"\x10", format=FMT_BYTES)
    cb.append(kb, b"\x20", format=FMT_BYTES)
    cb.prepend(kb, b"\x00", format=FMT_BYTES)
    assert cb.get(kb).value == b"\x00\x10\x20"
    with pytest.raises(E.ValueFormatError):
        cb.append(k, {"some": "object"})
    with pytest.raises(E.NotStoredError):
        cb.append(key("app-missing"), "value")
    kv = {key("appm"): "ab", key("appm"): "cd"}
    cb.upsert_multi(kv, format=FMT_UTF8)
    cb.append_multi(kv)
    cb.prepend_multi(kv)
    assert {k: r.value for k, r in cb.get_multi(list(kv)).items()} == {
        k: v * 3 for k, v in kv.items()}


def test_ttl_forms_expire(cb):
    ks = [key("ttl") for _ in range(6)]
    cb.upsert_multi(dict.fromkeys(ks, "v"))
    cb.upsert(ks[0], "v", ttl=1)
    cb.touch(ks[1], ttl=1)
    cb.get(ks[2], ttl=1)
    cb.touch_multi({ks[3]: 1, ks[4]: 100})
    cb.get_multi({ks[5]: 1})
    k_keep = key("ttl")
    cb.upsert(k_keep, "v", ttl=1)
    cb.touch(k_keep, ttl=0)  # 0: never expires
    time.sleep(2.2)
    got = cb.get_multi(ks + [k_keep], quiet=True)
    assert [got[k].success for k in ks] == [False, False, False, False, True, False]
    assert got[k_keep].success


# ---- items ------------------------------------------------------------------------------------

def test_items(cb):
    it = Item("some_key", "some_value")
    it.cas = 123456
    it.flags = 1000
    assert (it.key, it.value, it.cas, it.flags) == ("some_key", "some_value", 123456, 1000)
    hash(it)
    assert isinstance(it, ValueResult) and issubclass(ItemSequence, ItemCollection)
    k = key("item")
    it = Item(k, "simple_value")
    rvs = cb.upsert_multi(ItemSequence([it]))
    assert rvs.all_ok and rvs[it.key] is it and it.cas
    it2 = Item()
    it2.key = k
    rvs = cb.get_multi(ItemSequence([it2]))
    assert rvs[k] is it2 and it2.value == "simple_value" and it2.flags == FMT_JSON
    cb.replace_multi(ItemSequence([it2]))
    cb.remove_multi(ItemSequence([it2]))
    with pytest.raises(E.NotFoundError):
        cb.get_multi(ItemSequence([it2]))
    bad = Item(key("item"), {})
    coll = ItemOptionDict()
    coll.dict[bad] = {"format": FMT_BYTES}
    with pytest.raises(E.ValueFormatError):
        cb.upsert_multi(coll)


def test_items_append_and_ignore_cas(cb):
    it = Item(key("itapp"), "MIDDLE")
    coll = ItemOptionDict()
    coll.add(it)
    cb.upsert_multi(coll, format=FMT_UTF8)
    coll.add(it, fragment="_END")
    cb.append_items(coll, format=FMT_UTF8)
    assert it.value == "MIDDLE_END"
    coll.add(it, fragment="BEGIN_")
    cb.prepend_items(coll, format=FMT_UTF8)
    assert it.value == "BEGIN_MIDDLE_END" and cb.get(it.key).value == "BEGIN_MIDDLE_END"
    with pytest.raises(E.ArgumentError):
        cb.append_items(ItemSequence([it]))  # no 'fragment'
    coll.add(it)
    with pytest.raises(E.ArgumentError):
        cb.append_items(coll)
    it = Item(key("itcas"), "a value")
    coll = ItemOptionDict()
    coll.add(it)
    cb.upsert_multi(coll)
    first = it.cas
    assert cb.upsert(it.key, it.value).cas != first
    with pytest.raises(E.KeyExistsError):
        cb.upsert_multi(coll)
    coll.add(it, ignore_cas=True)
    cb.upsert_multi(coll)
    assert cb.get(it.key).cas == it.cas
    it = Item(key("itwrap"))
    cb.upsert_multi(it.as_itcoll())
    assert it.cas
    it.cas = 1234
    cb.upsert_multi(it.as_itcoll(ignore_cas=True))
    cb.upsert_multi(ItemSequence(it))


# ---- pipeline -------------------------------------------------------------------------------

def test_pipeline(cb):
    k = key("pipe")
    with cb.pipeline():
        cb.remove(k, quiet=True)
        cb.insert(k, "MIDDLE", format=FMT_UTF8)
        cb.prepend(k, "BEGIN_")
        cb.append(k, "_END")
    assert cb.get(k).value == "BEGIN_MIDDLE_END"
    with cb.pipeline():
        pass
    pipeline = cb.pipeline()
    with pipeline:
        cb.remove(k, quiet=True)
        cb.upsert(k, "blah")
        cb.get(k)
        cb.remove(k)
    results = pipeline.results
    assert len(results) == 4
    assert results[1].success and results[1].key == k
    assert results[2].success and results[2].value == "blah"
    assert results[3].success


def test_pipeline_errors(cb):
    k = key("pipeerr")

    def run():
        with cb.pipeline():
            cb.get(k, quiet=False)
            cb.upsert(k, "v")
    with pytest.raises(E.NotFoundError):
        run()
    assert cb.get(k).value == "v"  # the rest still ran

    def nested():
        with cb.pipeline():
            with cb.pipeline():
                pass
    with pytest.raises(E.PipelineError):
        nested()
    pipeline = cb.pipeline()
    k2 = key("pipearg")

    def argerror():
        with pipeline:
            cb.upsert(k2, "foo")
            cb.get("foo", "bar")  # a bad ttl: raised at once
            cb.get(k2)
    with pytest.raises(E.ArgumentError):
        argerror()
    assert len(pipeline.results) == 1 and cb.get(k2).value == "foo"


def test_multi_in_a_pipeline(cb):
    kv = kv_dict(5, "pipemulti")
    pipeline = cb.pipeline()
    with pipeline:
        cb.upsert_multi(kv)
        cb.get_multi(kv.keys())
    assert len(pipeline.results) == 2
    for mres in pipeline.results:
        assert isinstance(mres, MultiResult) and all(mres[k].success for k in kv)
    assert {k: v.value for k, v in pipeline.results[1].items()} == kv


# ---- threads and lock modes ---------------------------------------------------------------------

def test_lockmodes(memcached):
    k = key("lockmode")
    b = Bucket(memcached.connstr)
    assert b.lockmode == LOCKMODE_EXC
    b._thr_lockop(0)
    with pytest.raises(E.ObjectThreadError):
        b.upsert(k, "bar")
    b._thr_lockop(1)
    b.upsert(k, "baz")
    assert b.get(k).value == "baz"
    b.close()
    b = Bucket(memcached.connstr, lockmode=LOCKMODE_NONE)
    assert b.lockmode == LOCKMODE_NONE
    for op in (0, 1):
        with pytest.raises(E.ObjectThreadError):
            b._thr_lockop(op)
    b.upsert(k, "value")
    b.close()
    b = Bucket(memcached.connstr, lockmode=LOCKMODE_WAIT, unlock_gil=False)
    assert b.lockmode == LOCKMODE_NONE  # 2.x: without unlock_gil there is no lock
    b.close()
    with pytest.raises(E.ArgumentError):
        Bucket(memcached.connstr, lockmode=7)


def test_lockmode_wait_blocks_until_released(memcached):
    b = Bucket(memcached.connstr, lockmode=LOCKMODE_WAIT)
    k = key("lockwait")
    ended = []

    def run():
        b.upsert(k, "value")
        ended.append(time.time())
    b._thr_lockop(0)
    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.3)
    released = time.time()
    b._thr_lockop(1)
    t.join()
    assert ended and ended[0] >= released
    b.close()


# ---- Bucket properties, connection strings ------------------------------------------------------

def test_bucket_properties(cb, memcached):
    nodes = cb.server_nodes
    assert isinstance(nodes, list) and nodes == ["127.0.0.1:%d" % memcached.port]
    with pytest.raises((AttributeError, TypeError)):
        cb.server_nodes = "sdf"
    assert cb.bucket == ""
    assert re.match(r"<couchbase_ffi\.bucket\.Bucket bucket=, nodes=\['127\.0\.0\.1:\d+'\] "
                    r"at 0x[0-9a-f]+>$", repr(cb))
    verstr, vernum = Bucket.lcb_version()
    assert isinstance(verstr, str) and isinstance(vernum, int)
    assert cb.is_ssl is False
    ops = Bucket._MEMCACHED_OPERATIONS
    assert "upsert" in ops and "lock" in ops
    wrapped = Bucket._gen_memd_wrappers(lambda meth, name: name)
    assert wrapped["get_multi"] == "get_multi" and "stats_multi" not in wrapped


def test_cntl_and_cntlstr(cb):
    assert cb._cntl(0x00, value_type="timeout") == 2.5
    assert cb._cntl(0x00, value_type="uint32_t") == 2500000
    cb._cntl(0x00, 100000, value_type="uint32_t")
    assert cb._cntl(0x00, value_type="timeout") == 0.1 and cb.timeout == 0.1
    assert cb._cntl(0x01) == 75000000  # views timeout, microseconds
    with pytest.raises(E.CouchbaseError):
        cb._cntl(0xf000)
    with pytest.raises(E.CouchbaseError):
        cb._cntl(0x01, "string")
    cb._cntlstr("operation_timeout", "5.0")
    assert cb.timeout == 5.0
    cb._cntlstr("detailed_errcodes", "1")  # 2.x's Bucket itself sets this one
    with pytest.raises(E.NotSupportedError):
        cb._cntlstr("no_such_setting", "1")


def test_connection_strings(memcached, tmp_path):
    from couchbase.connstr import ConnectionString, convert_1x_args
    cs = ConnectionString.parse(memcached.connstr + "?operation_timeout=1.5")
    assert cs.scheme == "memcached" and cs.hosts == ["127.0.0.1:%d" % memcached.port]
    assert cs.get_option("operation_timeout") == "1.5"
    b = Bucket(cs)  # a ConnectionString object, as 2.x accepted
    assert b.timeout == 1.5
    b.close()
    # libcouchbase options that change nothing here are accepted, as 2.x code passes them
    b = Bucket(memcached.connstr + "?detailed_errcodes=1&fetch_mutation_tokens=true"
               "&compression=off&operation_timeout=0.75&durability_timeout=3")
    assert b.timeout == 0.75 and b.upsert(key("opts"), 1).success
    b.close()
    with pytest.raises(E.InvalidError):
        Bucket("couchbase://12345:qwer###/default")
    with pytest.raises(E.InvalidError):
        Bucket(memcached.connstr + "?no_such_option=1")
    with pytest.raises(E.ArgumentError):
        Bucket(12345)
    with pytest.warns(DeprecationWarning):
        Bucket(memcached.connstr, config_cache=str(tmp_path / "cache")).close()
    p = ConnectionString.parse("couchbases://10.112.170.101?certpath=/var/rootcert.pem")
    assert p.options["certpath"] == ["/var/rootcert.pem"]
    assert p.encode() == "couchbases://10.112.170.101?certpath=/var/rootcert.pem"
    p = ConnectionString.parse("couchbase://localhost?opt1=val1&opt2=val2")
    assert "opt1" in p.options and "opt2" in p.options and p.bucket == ""
    p = ConnectionString.from_hb("h1", "travel")
    assert (p.hosts, p.bucket, p.implicit_port, str(p)) == (["h1"], "travel", 11210,
                                                            "couchbase://h1/travel")
    assert convert_1x_args("beer", host=[("10.0.0.1", 8091), "h2"], password="x") == {
        "connection_string": "http://10.0.0.1:8091,h2/beer", "password": "x"}


def test_unreachable_servers_are_network_errors():
    from conftest import free_port
    with pytest.raises(E.CouchbaseNetworkError):
        Bucket("memcached://127.0.0.1:%d" % free_port())


def test_apis_outside_key_value_raise_not_supported(cb):
    for name, args in (("n1ql_query", ("SELECT 1",)), ("query", ("design", "view")),
                       ("search", ("index", None)), ("bucket_manager", ()),
                       ("lookup_in", ("k",)), ("mutate_in", ("k",)), ("map_add", ("k", "a", 1)),
                       ("list_append", ("k", 1)), ("queue_push", ("k", 1))):
        with pytest.raises(E.NotSupportedError) as ei:
            getattr(cb, name)(*args)
        assert isinstance(ei.value, E.CouchbaseError) and name in str(ei.value)


def test_subdocument_error_codes_map_as_in_2x():
    cat = E.CouchbaseError.rc_to_exctype
    for rc, cls in ((0x3F, E.SubdocPathNotFoundError), (0x40, E.SubdocPathMismatchError),
                    (0x41, E.SubdocPathInvalidError), (0x45, E.DocumentNotJsonError),
                    (0x48, E.SubdocPathExistsError), (0x49, E.SubdocMultipleErrors),
                    (0x4C, E.SubdocEmptyPathError)):
        assert cat(rc) is cls and cls.CODE == rc
    assert issubclass(E.SubdocPathNotFoundError, E.CouchbaseDataError)
    assert issubclass(E.SubdocPathInvalidError, E.CouchbaseInputError)
