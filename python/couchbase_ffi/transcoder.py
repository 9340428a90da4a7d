"""Value formats and the transcoder (couchbase 2.x names and flag values)."""
import json
import pickle

from couchbase_ffi.exceptions import ValueFormatError, ArgumentError

FMT_JSON = 0x02000000
FMT_PICKLE = 0x01000001
FMT_BYTES = 0x03000002
FMT_UTF8 = 0x04000004
FMT_AUTO = -1
FMT_LEGACY_MASK = 0x07
FMT_COMMON_MASK = 0xFF000000

_LEGACY = {0: FMT_JSON, 1: FMT_PICKLE, 2: FMT_BYTES, 4: FMT_UTF8}
_COMMON = {0x01000000: FMT_PICKLE, 0x02000000: FMT_JSON, 0x03000000: FMT_BYTES,
           0x04000000: FMT_UTF8}

_json_encode = json.dumps
_json_decode = json.loads
_pickle_encode = pickle.dumps
_pickle_decode = pickle.loads


def set_json_converters(encode, decode):
    """Replace the JSON encoder/decoder; returns the previous pair."""
    global _json_encode, _json_decode
    old = (_json_encode, _json_decode)
    _json_encode, _json_decode = encode, decode
    return old


def set_pickle_converters(encode, decode):
    """Replace the pickle dumps/loads; returns the previous pair."""
    global _pickle_encode, _pickle_decode
    old = (_pickle_encode, _pickle_decode)
    _pickle_encode, _pickle_decode = encode, decode
    return old


def format_of_flags(flags):
    """The FMT_* a stored item's flags say: common flags first, then legacy bits; 0 is JSON."""
    fmt = _COMMON.get(flags & FMT_COMMON_MASK)
    if fmt is not None:
        return fmt
    return _LEGACY.get(flags & FMT_LEGACY_MASK, FMT_BYTES)


def _auto(value):
    if isinstance(value, str):
        return FMT_UTF8
    if isinstance(value, (bytes, bytearray, memoryview)):
        return FMT_BYTES
    if isinstance(value, (list, dict, tuple, int, float, bool)) or value is None:
        return FMT_JSON
    return FMT_PICKLE


def encode_value(value, fmt):
    """(bytes, flags) for value in format fmt; ValueFormatError if it cannot be."""
    if fmt == FMT_AUTO:
        fmt = _auto(value)
    try:
        if fmt == FMT_BYTES:
            if isinstance(value, bytes):
                return value, FMT_BYTES
            if isinstance(value, (bytearray, memoryview)):
                return bytes(value), FMT_BYTES
            raise ValueFormatError("FMT_BYTES needs bytes, got %s" % type(value).__name__)
        if fmt == FMT_UTF8:
            if not isinstance(value, str):
                raise ValueFormatError("FMT_UTF8 needs str, got %s" % type(value).__name__)
            return value.encode("utf-8"), FMT_UTF8
        if fmt == FMT_JSON:
            s = _json_encode(value)
            return (s.encode("utf-8") if isinstance(s, str) else bytes(s)), FMT_JSON
        if fmt == FMT_PICKLE:
            return _pickle_encode(value), FMT_PICKLE
    except ValueFormatError:
        raise
    except Exception as e:
        raise ValueFormatError("cannot encode value as format 0x%X: %s" % (fmt, e), inner_cause=e)
    raise ArgumentError("unknown format 0x%X" % (fmt,))


def decode_value(data, flags):
    fmt = format_of_flags(flags)
    try:
        if fmt == FMT_BYTES:
            return data
        if fmt == FMT_UTF8:
            return data.decode("utf-8")
        if fmt == FMT_JSON:
            return _json_decode(data.decode("utf-8"))
        return _pickle_decode(data)
    except Exception as e:
        raise ValueFormatError("cannot decode value with flags 0x%X: %s" % (flags, e), inner_cause=e)


class Transcoder(object):
    """Subclass to change how keys and values are encoded."""

    def encode_key(self, key):
        if isinstance(key, str):
            return key.encode("utf-8")
        if isinstance(key, bytes):
            return key
        raise ValueFormatError("keys must be str or bytes, got %s" % type(key).__name__)

    def decode_key(self, key):
        return key.decode("utf-8")

    def encode_value(self, value, format):
        return encode_value(value, format)

    def decode_value(self, value, flags):
        return decode_value(value, flags)
