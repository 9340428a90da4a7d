"""Value formats and the transcoder (couchbase 2.x names and flag values).

A format is stored in the item's flags: the "common flags" format in the top
byte, plus the 2.x legacy bits in the low three (PROTOCOL.md section 7).
Decoding looks at the common byte first, then at the legacy bits; flags 0
(what most memcached clients write) decode as JSON, as in 2.x.

The Bucket calls the module-level ``encode_value``/``decode_value`` directly
when no transcoder is set; set a ``Transcoder`` (subclass) to change that.
"""
import json
import pickle

from couchbase_ffi.exceptions import ValueFormatError, ArgumentError

FMT_JSON = 0x02000000
FMT_PICKLE = 0x01000001
FMT_BYTES = 0x03000002
FMT_UTF8 = 0x04000004


class _AutoFormat(object):
    """FMT_AUTO: pick the format by type (str UTF8, bytes-like BYTES, JSON types
    JSON, anything else PICKLE).  A sentinel object, as in 2.x."""

    def __repr__(self):
        return "FMT_AUTO"


FMT_AUTO = _AutoFormat()
FMT_LEGACY_MASK = 0x07
FMT_COMMON_MASK = 0xFF000000

_BY_COMMON = {0x01000000: FMT_PICKLE, 0x02000000: FMT_JSON, 0x03000000: FMT_BYTES,
              0x04000000: FMT_UTF8}
_BY_LEGACY = {0: FMT_JSON, 1: FMT_PICKLE, 2: FMT_BYTES, 4: FMT_UTF8}

_json_encode = json.dumps
_json_decode = json.loads
_pickle_encode = pickle.dumps
_pickle_decode = pickle.loads


def set_json_converters(encode, decode):
    """Replace the JSON encoder (value -> str or bytes) and decoder (str -> value).

    Returns the previous (encode, decode) pair."""
    global _json_encode, _json_decode
    old = (_json_encode, _json_decode)
    _json_encode, _json_decode = encode, decode
    return old


def set_pickle_converters(encode, decode):
    """Replace pickle's dumps/loads; returns the previous pair."""
    global _pickle_encode, _pickle_decode
    old = (_pickle_encode, _pickle_decode)
    _pickle_encode, _pickle_decode = encode, decode
    return old


def format_of_flags(flags):
    """The FMT_* that stored flags denote (unknown formats read as FMT_BYTES)."""
    common = flags & FMT_COMMON_MASK
    if common:
        return _BY_COMMON.get(common & 0x0F000000, FMT_BYTES)
    return _BY_LEGACY.get(flags & FMT_LEGACY_MASK, FMT_BYTES)


def _auto_format(value):
    if isinstance(value, str):
        return FMT_UTF8
    if isinstance(value, (bytes, bytearray, memoryview)):
        return FMT_BYTES
    if value is None or isinstance(value, (dict, list, tuple, int, float)):
        return FMT_JSON
    return FMT_PICKLE


def _encode_failed(value, fmt, exc):
    return ValueFormatError("cannot encode %s as format %r: %s" % (type(value).__name__, fmt,
                                                                   exc),
                            inner_cause=exc, objextra=value)


def encode_value(value, fmt):
    """(bytes, flags) for ``value`` in format ``fmt``; ValueFormatError if it cannot be."""
    if fmt == FMT_JSON:
        try:
            s = _json_encode(value)
        except Exception as e:
            raise _encode_failed(value, fmt, e)
        return (s.encode("utf-8") if s.__class__ is str else bytes(s)), FMT_JSON
    if fmt == FMT_BYTES:
        if value.__class__ is bytes:
            return value, FMT_BYTES
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value), FMT_BYTES
        raise ValueFormatError("FMT_BYTES needs a bytes-like value, got %s"
                               % type(value).__name__, objextra=value)
    if fmt == FMT_UTF8:
        if isinstance(value, str):
            try:
                return value.encode("utf-8"), FMT_UTF8
            except UnicodeError as e:
                raise _encode_failed(value, fmt, e)
        raise ValueFormatError("FMT_UTF8 needs a str value, got %s" % type(value).__name__,
                               objextra=value)
    if fmt == FMT_PICKLE:
        try:
            return _pickle_encode(value), FMT_PICKLE
        except Exception as e:
            raise _encode_failed(value, fmt, e)
    if fmt is FMT_AUTO:
        return encode_value(value, _auto_format(value))
    raise ArgumentError("unknown format %r" % (fmt,))


def decode_value(data, flags):
    """The value stored as ``data`` with ``flags``; ValueFormatError if it cannot be."""
    if flags == FMT_BYTES:
        return data
    fmt = format_of_flags(flags)
    try:
        if fmt == FMT_JSON:
            return _json_decode(data.decode("utf-8"))
        if fmt == FMT_UTF8:
            return data.decode("utf-8")
        if fmt == FMT_PICKLE:
            return _pickle_decode(data)
        return data
    except Exception as e:
        raise ValueFormatError("cannot decode a value with flags 0x%X as format 0x%X: %s"
                               % (flags, fmt, e), inner_cause=e, objextra=data)


class Transcoder(object):
    """Encodes keys and values; subclass it and pass ``transcoder=`` to the Bucket.

    ``encode_key(key) -> bytes``, ``decode_key(bytes) -> key``,
    ``encode_value(value, format) -> (bytes, flags)``,
    ``decode_value(bytes, flags) -> value``.  The defaults do what the Bucket
    does without a transcoder.
    """

    def encode_key(self, key):
        if isinstance(key, str):
            return key.encode("utf-8")
        if isinstance(key, bytes):
            return key
        raise ValueFormatError("keys must be str or bytes, got %s" % type(key).__name__,
                               objextra=key)

    def decode_key(self, key):
        return key.decode("utf-8")

    def encode_value(self, value, format):
        return encode_value(value, format)

    def decode_value(self, value, flags):
        return decode_value(value, flags)
