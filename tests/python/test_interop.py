"""Flags on the wire, checked with other memcached clients: what we write,
they read with the 2.x flag values; what they write, we decode by the
common-flags byte, then the legacy low bits, flags 0 being JSON."""
import pickle

import pytest

from couchbase_ffi import FMT_JSON, FMT_BYTES, FMT_UTF8, FMT_PICKLE, FMT_AUTO
from couchbase_ffi import exceptions as E

pymemcache = pytest.importorskip("pymemcache")
from pymemcache.client.base import Client as _PymemcacheClient  # noqa: E402


@pytest.fixture
def raw(memcached):
    """pymemcache without serialisation: get() returns (bytes, flags)."""
    c = _PymemcacheClient(("127.0.0.1", memcached.port),
                          deserializer=lambda key, value, flags: (value, flags))
    yield c
    c.close()


@pytest.mark.parametrize("value, fmt, wire", [
    ({"a": [1, 2]}, FMT_JSON, b'{"a":[1,2]}'),           # compact, as 2.x
    (b"\x00\xffraw", FMT_BYTES, b"\x00\xffraw"),
    ("h\u00e9", FMT_UTF8, "h\u00e9".encode("utf-8")),
    ("auto text", FMT_AUTO, b"auto text"),
])
def test_our_flags_and_bytes_on_the_wire(bucket, raw, value, fmt, wire):
    bucket.upsert("wire", value, format=fmt)
    data, flags = raw.get("wire")
    assert data == wire
    assert flags == (FMT_UTF8 if fmt is FMT_AUTO else fmt)


def test_pickle_on_the_wire(bucket, raw):
    bucket.upsert("wire-p", {1, 2}, format=FMT_PICKLE)
    data, flags = raw.get("wire-p")
    assert flags == 0x01000001 and pickle.loads(data) == {1, 2}


@pytest.mark.parametrize("flags, data, expected", [
    (0, b'{"x": 1}', {"x": 1}),                     # flags 0 is JSON (2.x)
    (0x02000000, b"[1]", [1]),                      # common JSON
    (0x04000000, b"text", "text"),                  # common UTF-8 without legacy bits
    (0x03000000, b"bin", b"bin"),                   # common binary
    (0x05000000, b"future", b"future"),             # unknown common format: bytes
    (0x02, b"legacy bytes", b"legacy bytes"),       # legacy FMT_BYTES bit
    (0x04, b"legacy utf8", "legacy utf8"),          # legacy FMT_UTF8 bit
    (0x01, pickle.dumps((1, "a")), (1, "a")),       # legacy pickle bit
])
def test_we_decode_what_others_wrote(bucket, raw, flags, data, expected):
    raw.set("foreign", data, flags=flags, noreply=False)
    got = bucket.get("foreign")
    assert got.value == expected and got.flags == flags


def test_undecodable_foreign_value_is_a_value_format_error(bucket, raw):
    raw.set("foreign-bad", b"not json", flags=0, noreply=False)
    with pytest.raises(E.ValueFormatError):
        bucket.get("foreign-bad")
    assert bucket.get("foreign-bad", no_format=True).value == b"not json"
    bucket.data_passthrough = True
    assert bucket.get("foreign-bad").value == b"not json"


def test_pylibmc_values_read_back(bucket):
    pylibmc = pytest.importorskip("pylibmc")  # a CPython C extension
    mc = pylibmc.Client([bucket.server_nodes[0]])
    mc.set("plm-int", 42)               # pylibmc: flags 4, b"42" -> our legacy UTF-8
    mc.set("plm-obj", {"x": [1]})        # pylibmc: pickled, flags 1
    mc.set("plm-bytes", b"\x01\x02")     # pylibmc: flags 0
    assert bucket.get("plm-int").value == "42"
    assert bucket.get("plm-obj").value == {"x": [1]}
    assert bucket.get("plm-bytes", no_format=True).value == b"\x01\x02"
    bucket.upsert("to-plm", {"from": "us"})  # FMT_JSON: no pylibmc type bits -> raw bytes
    assert mc.get("to-plm") == b'{"from":"us"}'


def test_undecodable_value_in_a_multi_leaves_no_stale_results(bucket, raw):
    raw.set("bad-json", b"{oops", flags=0, noreply=False)
    bucket.upsert("good-json", [1])
    with pytest.raises(E.ValueFormatError) as ei:
        bucket.get_multi(["good-json", "bad-json"])
    assert ei.value.key == "bad-json"
    with pytest.raises(E.ValueFormatError):
        with bucket.pipeline():
            bucket.get("bad-json")
    assert bucket.get("good-json").value == [1]  # the next result is its own
    assert bucket.get_multi(["good-json"])["good-json"].value == [1]
