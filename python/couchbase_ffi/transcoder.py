"""Value formats and the transcoder (couchbase 2.x names and flag values).

A format is stored in the item's flags: the "common flags" format in the top
byte, plus the 2.x legacy bits in the low three (PROTOCOL.md section 7).
Decoding looks at the common byte first, then at the exact legacy value, as
2.x did; flags 0 (what most memcached clients write) decode as JSON, and flags
of no known format give the bytes with a UserWarning.  JSON is written compact
(no spaces, non-ASCII as UTF-8), as 2.x wrote it.

The Bucket calls the module-level ``encode_value``/``decode_value`` directly
when no transcoder is set; set a ``Transcoder`` (subclass) to change that.
"""
import json
import pickle
import warnings

from couchbase_ffi.exceptions import CouchbaseError, ValueFormatError, ArgumentError

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

FMT_MASK = FMT_LEGACY_MASK  # the 1.x name of the legacy mask

_BY_COMMON = {0x01000000: FMT_PICKLE, 0x02000000: FMT_JSON, 0x03000000: FMT_BYTES,
              0x04000000: FMT_UTF8}
_BY_LEGACY = {0: FMT_JSON, 1: FMT_PICKLE, 2: FMT_BYTES, 4: FMT_UTF8}


def _json_dumps_compact(value):
    """2.x's JSON encoder: no spaces after separators, non-ASCII kept as it is."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_json_encode = _json_dumps_compact
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


def get_decode_format(flags):
    """(FMT_*, recognized) for stored ``flags``, as 2.x decoded them: by the
    common-flags byte when it is set (the low bits are then ignored), else by
    the exact legacy value (0 JSON, 1 pickle, 2 bytes, 4 UTF-8); anything else
    is (FMT_BYTES, False)."""
    common = flags & FMT_COMMON_MASK
    fmt = _BY_COMMON.get(common) if common else _BY_LEGACY.get(flags)
    if fmt is None:
        return FMT_BYTES, False
    return fmt, True


def format_of_flags(flags):
    """The FMT_* that stored flags denote (unknown formats read as FMT_BYTES)."""
    return get_decode_format(flags)[0]


def _auto_format(value):
    """FMT_AUTO's choice, as 2.x made it: str UTF-8, bytes and bytearray BYTES,
    list/tuple/dict/bool/None JSON, anything else (numbers too) PICKLE."""
    if isinstance(value, str):
        return FMT_UTF8
    if isinstance(value, (bytes, bytearray, memoryview)):
        return FMT_BYTES
    if value is None or value is True or value is False or isinstance(value,
                                                                       (list, tuple, dict)):
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
    """The value stored as ``data`` with ``flags``; ValueFormatError if it cannot be.

    Flags of no known format give the bytes, with a UserWarning (as in 2.x)."""
    if flags == FMT_BYTES:
        return data
    fmt, known = get_decode_format(flags)
    if not known:
        warnings.warn("Unrecognized flags 0x%X. Forcing bytes" % (flags,), UserWarning,
                      stacklevel=3)
        return data
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


class TranscoderPP(object):
    """A transcoder written in Python that does what 2.x's ``TranscoderPP`` did
    (a reference implementation to subclass): str keys as UTF-8; values by
    ``format`` (0 meaning FMT_JSON, FMT_AUTO picking by type); flags decoded
    as the Bucket does, unknown ones giving the bytes with a warning.  Its
    JSON is ``json.dumps(value, ensure_ascii=False)``; override the
    ``_do_json_*``/``_do_pickle_*`` hooks to change the codecs."""

    def encode_key(self, key):
        return self.encode_value(key, FMT_UTF8)[0]

    def decode_key(self, key):
        return self.decode_value(key, FMT_UTF8)

    def encode_value(self, value, format):
        if format == 0:
            format = FMT_JSON
        elif format is FMT_AUTO:
            format = _auto_format(value)
            if format == FMT_BYTES and isinstance(value, memoryview):
                format = FMT_PICKLE  # as 2.x's TranscoderPP: only bytes and bytearray
        if format == FMT_BYTES:
            if isinstance(value, (bytes, bytearray)):
                return bytes(value), format
            raise TypeError("FMT_BYTES needs bytes or a bytearray, got %s"
                            % type(value).__name__)
        if format == FMT_UTF8:
            return value.encode("utf-8"), format
        if format == FMT_PICKLE:
            return self._do_pickle_encode(value), FMT_PICKLE
        if format == FMT_JSON:
            return self._do_json_encode(value).encode("utf-8"), FMT_JSON
        raise ValueError("Unrecognized format %r" % (format,))

    def decode_value(self, value, flags):
        fmt, known = get_decode_format(flags)
        if fmt == FMT_BYTES:
            if not known:
                warnings.warn("Received unrecognized flags %d" % (flags,))
            return value
        if fmt == FMT_UTF8:
            return value.decode("utf-8")
        if fmt == FMT_JSON:
            return self._do_json_decode(value.decode("utf-8"))
        return self._do_pickle_decode(value)

    def _do_json_encode(self, value):
        return json.dumps(value, ensure_ascii=False)

    def _do_json_decode(self, value):
        return json.loads(value)

    def _do_pickle_encode(self, value):
        return pickle.dumps(value)

    def _do_pickle_decode(self, value):
        return pickle.loads(value)


class LegacyTranscoderPP(TranscoderPP):
    """TranscoderPP writing only the legacy flag bits (0, 1, 2, 4), for readers
    that predate common flags (couchbase 1.x clients)."""

    def encode_value(self, value, format):
        data, flags = TranscoderPP.encode_value(self, value, format)
        return data, flags & FMT_LEGACY_MASK


class _Checked(object):
    """What the Bucket calls when a transcoder is set: the user's transcoder,
    with 2.x's checks around it.  Any exception it raises (other than a
    CouchbaseError) becomes a ValueFormatError; ``encode_key`` must give
    non-empty bytes, ``encode_value`` a (bytes, flags) pair with flags in
    0..2**32-1, and ``decode_key`` of an encoded key must be hashable (2.x keyed
    its results by it)."""
    __slots__ = ("tc",)

    def __init__(self, tc):
        self.tc = tc

    def _call(self, name, obj, *args):
        try:
            return getattr(self.tc, name)(obj, *args)
        except CouchbaseError:
            raise
        except Exception as e:
            raise ValueFormatError("the transcoder's %s failed: %s: %s"
                                   % (name, type(e).__name__, e), inner_cause=e, objextra=obj)

    def encode_key(self, key):
        kb = self._call("encode_key", key)
        if kb.__class__ is not bytes:
            if not isinstance(kb, (bytes, bytearray)):
                raise ValueFormatError("Transcoder.encode_key must return bytes, got %s"
                                       % type(kb).__name__, objextra=kb)
            kb = bytes(kb)
        if not kb:
            raise ValueFormatError("Transcoder.encode_key returned an empty string",
                                   objextra=key)
        self.decode_key(kb)  # 2.x keyed results by decode_key(): it must give a hashable key
        return kb

    def decode_key(self, kb):
        key = self._call("decode_key", kb)
        try:
            hash(key)
        except TypeError as e:
            raise ValueFormatError("Transcoder.decode_key must return a hashable object",
                                   inner_cause=e, objextra=key)
        return key

    def encode_value(self, value, fmt):
        ret = self._call("encode_value", value, fmt)
        if not isinstance(ret, (tuple, list)) or len(ret) != 2:
            raise ValueFormatError("Transcoder.encode_value must return (bytes, flags), got %r"
                                   % (ret,), objextra=value)
        data, flags = ret
        if not isinstance(flags, int) or not 0 <= flags <= 0xFFFFFFFF:
            raise ValueFormatError("Transcoder.encode_value returned bad flags %r" % (flags,),
                                   objextra=value)
        if data.__class__ is not bytes:
            if not isinstance(data, (bytearray, memoryview)):
                raise ValueFormatError("Transcoder.encode_value returned %s, not bytes"
                                       % type(data).__name__, objextra=value)
            data = bytes(data)
        return data, int(flags)

    def decode_value(self, data, flags):
        return self._call("decode_value", data, flags)


def checked(tc):
    """The transcoder the Bucket uses for ``tc`` (None for no transcoder)."""
    if isinstance(tc, type):
        tc = tc()  # 2.x accepted a class too
    if not tc:
        return None  # 2.x: None, False or 0 mean no transcoder
    return _Checked(tc)
