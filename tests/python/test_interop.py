"""Formats and flags interoperate with other clients on the same memcached:
values they wrote with 2.x legacy flags or common flags decode here, and what we
write carries the couchbase 2.x flag values on the wire."""
import json
import pickle

import pytest

from couchbase_ffi import FMT_JSON, FMT_UTF8, FMT_BYTES, FMT_PICKLE

pymemcache = pytest.importorskip("pymemcache")
from pymemcache.client.base import Client  # noqa: E402


class RawSerde(object):
    """No transformation; remembers the flags each read returned."""

    def __init__(self):
        self.flags = {}

    def serialize(self, key, value):
        return value, 0

    def deserialize(self, key, value, flags):
        self.flags[key.decode() if isinstance(key, bytes) else key] = flags
        return value


@pytest.fixture
def raw(memcached):
    serde = RawSerde()
    mc = Client(("127.0.0.1", memcached.port), serde=serde, default_noreply=False)
    yield mc, serde
    mc.close()


def test_values_written_by_another_client_decode_by_their_flags(bucket, raw):
    mc, _ = raw
    cases = [
        ("ix:legacy-json", b'{"a": 1}', 0, {"a": 1}),             # flags 0 = JSON
        ("ix:legacy-pickle", pickle.dumps([1, 2]), 1, [1, 2]),
        ("ix:legacy-bytes", b"\x00\x01", 2, b"\x00\x01"),
        ("ix:legacy-utf8", "h\u00e9".encode(), 4, "h\u00e9"),
        ("ix:common-json", b"[3]", 0x02000000, [3]),
        ("ix:common-bytes", b"raw", 0x03000000, b"raw"),
        ("ix:common-utf8", b"txt", 0x04000000, "txt"),
    ]
    for key, data, flags, want in cases:
        mc.set(key, data, flags=flags)
        got = bucket.get(key)
        assert got.value == want and got.flags == flags, key


def test_what_we_write_carries_2x_flags(bucket, raw):
    mc, serde = raw
    for key, value, fmt in [("ix:o-json", {"b": 2}, FMT_JSON), ("ix:o-utf8", "t", FMT_UTF8),
                            ("ix:o-bytes", b"\xff", FMT_BYTES), ("ix:o-pickle", (1,), FMT_PICKLE)]:
        bucket.upsert(key, value, format=fmt)
        data = mc.get(key)
        assert serde.flags[key] == fmt
        decoded = {FMT_JSON: lambda d: json.loads(d), FMT_UTF8: lambda d: d.decode(),
                   FMT_BYTES: lambda d: d, FMT_PICKLE: pickle.loads}[fmt](data)
        assert decoded == value
    assert (FMT_JSON, FMT_PICKLE, FMT_BYTES, FMT_UTF8) == (0x02000000, 0x01000001, 0x03000002,
                                                          0x04000004)
