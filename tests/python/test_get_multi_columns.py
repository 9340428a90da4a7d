"""Bucket.get_multi's fast path (keys encoded in bulk, results harvested into
columns with cbffi_wait_columns / cbffi_harvest_columns): the same results and
errors as key-by-key encoding and struct harvesting gave."""
import warnings

import pytest

from couchbase_ffi import FMT_BYTES, FMT_JSON, FMT_UTF8
from couchbase_ffi import exceptions as E
from couchbase_ffi._lowlevel import ffi, lib
from couchbase_ffi.transcoder import Transcoder


def test_columns_harvest_through_cffi(memcached):
    out = ffi.new("cbffi_client **")
    assert lib.cbffi_client_create(out, memcached.connstr.encode(), ffi.NULL, ffi.NULL,
                                   ffi.NULL, 0) == 0
    c = ffi.gc(out[0], lib.cbffi_client_destroy)
    keys = [b"col:a", b"col:b", b"col:none"]
    for k, v in zip(keys[:2], (b"one", b"")):
        res = ffi.new("cbffi_result[1]")
        assert lib.cbffi_store_wait(c, lib.CBFFI_OP_SET, k, len(k), v, len(v), 5, 0, 0, res) == 0
    lens = ffi.new("uint32_t[]", [len(k) for k in keys])
    assert lib.cbffi_get_multi(c, b"".join(keys), lens, 3, lib.CBFFI_GET_PLAIN, 0, 40,
                               ffi.NULL) == 0
    cs = ffi.new("cbffi_columns *")
    arrays = dict(cookie=ffi.new("uint64_t[2]"), rc=ffi.new("int32_t[2]"),
                  voff=ffi.new("uint32_t[2]"), nvalue=ffi.new("uint32_t[2]"))
    cs.cap = 2
    for name, a in arrays.items():
        setattr(cs, name, a)
    got = {}
    n = lib.cbffi_wait_columns(c, cs)
    assert n == 2 and cs.nready == 1
    while n:
        blob = ffi.unpack(cs.values, cs.nvalues) if cs.nvalues else b""
        for j in range(n):
            o, nv = arrays["voff"][j], arrays["nvalue"][j]
            got[arrays["cookie"][j]] = (arrays["rc"][j], blob[o:o + nv])
        n = lib.cbffi_harvest_columns(c, cs) if cs.nready else 0
    assert got[40] == (0, b"one") and got[41] == (0, b"") and sorted(got) == [40, 41, 42]
    assert got[42][0] == lib.CBFFI_KEY_ENOENT  # its value: the server's text, if any


def test_key_forms_and_order(bucket):
    keys = ["cm:ascii", b"cm:bytes", u"cm:\u00e9t\u00e9", "cm:" + "x" * 246]
    for k in keys:
        bucket.upsert(k, repr(k), format=FMT_UTF8)
    res = bucket.get_multi(keys)
    assert list(res) == keys
    assert all(res[k].value == repr(k) and res[k].key is k for k in keys)
    assert res.all_ok
    # a tuple, and a key iterable that is not a list
    assert list(bucket.get_multi(tuple(keys))) == keys
    assert list(bucket.get_multi(iter(keys))) == keys


@pytest.mark.parametrize("bad, exc", [("", E.ArgumentError), ("k" * 251, E.KeyTooLongError),
                                      (u"\u00e9" * 126, E.KeyTooLongError),
                                      (3, E.ValueFormatError)])
def test_a_bad_key_sends_nothing(bucket, bad, exc):
    bucket.upsert("cm:ok", 1)
    with pytest.raises(exc):
        bucket.get_multi(["cm:ok", bad, "cm:ok2"])
    assert lib.cbffi_pending(bucket._c) == 0 and lib.cbffi_ready(bucket._c) == 0
    assert bucket.get("cm:ok").value == 1


def test_misses_values_formats_and_cas(bucket):
    bucket.upsert("cm:j", {"a": [1, 2]}, format=FMT_JSON)
    bucket.upsert("cm:u", u"h\u00e9", format=FMT_UTF8)
    bucket.upsert("cm:b", b"\x00\xff", format=FMT_BYTES)
    bucket.upsert("cm:e", b"", format=FMT_BYTES)
    cas = bucket.get("cm:j").cas
    bucket.remove("cm:gone", quiet=True)
    keys = ["cm:j", "cm:gone", "cm:u", "cm:b", "cm:e"]
    with pytest.raises(E.NotFoundError) as ei:
        bucket.get_multi(keys)
    assert ei.value.key == "cm:gone" and ei.value.all_results["cm:j"].value == {"a": [1, 2]}
    res = bucket.get_multi(keys, quiet=True)
    assert not res.all_ok and not res["cm:gone"].success
    assert res["cm:gone"].rc == lib.CBFFI_KEY_ENOENT and res["cm:gone"].value is None
    assert res["cm:j"].value == {"a": [1, 2]} and res["cm:j"].cas == cas
    assert res["cm:u"].value == u"h\u00e9" and res["cm:b"].value == b"\x00\xff"
    assert res["cm:e"].value == b"" and res["cm:e"].flags == FMT_BYTES
    raw = bucket.get_multi(keys, quiet=True, no_format=True)
    assert raw["cm:j"].value == bucket.get("cm:j", no_format=True).value
    assert raw["cm:j"].value.startswith(b"{")
    assert raw["cm:u"].value == u"h\u00e9".encode("utf-8")


def test_a_value_that_does_not_decode(bucket):
    bucket.upsert("cm:bad", b"{not json", format=FMT_BYTES)
    bucket.upsert("cm:good", [1])
    # re-flag the bad one as JSON through a raw store
    res = ffi.new("cbffi_result[1]")
    assert lib.cbffi_store_wait(bucket._c, lib.CBFFI_OP_SET, b"cm:bad", 6, b"{not json", 9,
                                FMT_JSON, 0, 0, res) == 0
    with pytest.raises(E.ValueFormatError) as ei:
        bucket.get_multi(["cm:bad", "cm:good"])
    assert ei.value.key == "cm:bad" and ei.value.all_results["cm:good"].value == [1]
    assert ei.value.all_results["cm:bad"].value is None


def test_duplicates_warn_and_the_last_result_wins(bucket):
    bucket.upsert("cm:d", 5)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        res = bucket.get_multi(["cm:d", "cm:d2", "cm:d"], quiet=True)
    assert any("duplicate" in str(x.message) for x in w)
    assert list(res) == ["cm:d", "cm:d2"] and res["cm:d"].value == 5


def test_more_results_than_one_harvest_and_large_values(bucket):
    keys = ["cm:many%d" % i for i in range(700)]
    bucket.upsert_multi({k: k.encode() * (1 + i % 7) for i, k in enumerate(keys)},
                        format=FMT_BYTES)
    big = b"B" * 300000
    bucket.upsert_multi({"cm:big%d" % i: big for i in range(4)}, format=FMT_BYTES)
    res = bucket.get_multi(keys + ["cm:big%d" % i for i in range(4)])
    assert len(res) == 704 and res.all_ok
    assert all(res[k].value == k.encode() * (1 + i % 7) for i, k in enumerate(keys))
    assert all(res["cm:big%d" % i].value == big for i in range(4))
    assert lib.cbffi_ready(bucket._c) == 0


class Upper(Transcoder):
    def encode_key(self, key):
        return key.upper().encode("ascii")

    def decode_value(self, value, flags):
        return ("tc", value)


def test_transcoder_and_passthrough(memcached):
    from couchbase_ffi.bucket import Bucket
    b = Bucket(memcached.connstr, transcoder=Upper())
    plain = Bucket(memcached.connstr)
    try:
        plain.upsert("CM:T", b"x", format=FMT_BYTES)
        assert b.get_multi(["cm:t"])["cm:t"].value == ("tc", b"x")
        plain.data_passthrough = True
        plain.upsert("cm:p", {"a": 1})
        got = plain.get_multi(["cm:p"])["cm:p"].value
        assert got == plain.get("cm:p").value and got.startswith(b"{")
    finally:
        b.close()
        plain.close()
