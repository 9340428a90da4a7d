"""Binary protocol constants and sans-IO framing for the mock's KV servers.

Nothing here touches a socket: ``parse_header`` reads a request header,
``decode_request`` cuts the body into framing extras, extras, key and value,
and ``response``/``server_request`` build packets.  Wire facts: docs/mock.md
and the project's PROTOCOL.md (after kv_engine docs/BinaryProtocol.md).
"""
import struct

HEADER = struct.Struct(">BBHBBHIIQ")   # magic opcode keylen extlen datatype vb/status bodylen opaque cas
HEADER_LEN = 24

MAGIC_REQ = 0x80
MAGIC_RES = 0x81
MAGIC_ALT_REQ = 0x08
MAGIC_ALT_RES = 0x18
MAGIC_SERVER_REQ = 0x82
MAGIC_CLIENT_RES = 0x83

MAX_KEY = 250
MAX_VALUE = 20 * 1024 * 1024
MAX_PACKET = 30 * 1024 * 1024      # kv_engine's default max packet size: bigger closes the connection

DATATYPE_JSON = 0x01
DATATYPE_SNAPPY = 0x02
DATATYPE_XATTR = 0x04


class Op(object):
    """Client opcodes (PROTOCOL.md section 2.1)."""
    GET = 0x00
    SET = 0x01
    ADD = 0x02
    REPLACE = 0x03
    DELETE = 0x04
    INCR = 0x05
    DECR = 0x06
    QUIT = 0x07
    FLUSH = 0x08
    GETQ = 0x09
    NOOP = 0x0a
    VERSION = 0x0b
    GETK = 0x0c
    GETKQ = 0x0d
    APPEND = 0x0e
    PREPEND = 0x0f
    STAT = 0x10
    SETQ = 0x11
    ADDQ = 0x12
    REPLACEQ = 0x13
    DELETEQ = 0x14
    INCRQ = 0x15
    DECRQ = 0x16
    QUITQ = 0x17
    FLUSHQ = 0x18
    APPENDQ = 0x19
    PREPENDQ = 0x1a
    VERBOSITY = 0x1b
    TOUCH = 0x1c
    GAT = 0x1d
    GATQ = 0x1e
    HELLO = 0x1f
    SASL_LIST_MECHS = 0x20
    SASL_AUTH = 0x21
    SASL_STEP = 0x22
    GET_REPLICA = 0x83
    SELECT_BUCKET = 0x89
    OBSERVE_SEQNO = 0x91
    OBSERVE = 0x92
    GET_LOCKED = 0x94
    GET_META = 0xa0
    UNLOCK_KEY = 0x95
    GET_CLUSTER_CONFIG = 0xb5
    GET_COLLECTIONS_MANIFEST = 0xba
    GET_COLLECTION_ID = 0xbb
    GET_ERROR_MAP = 0xfe
    # sub-document (mock/subdoc.py)
    SUBDOC_GET = 0xc5
    SUBDOC_EXISTS = 0xc6
    SUBDOC_DICT_ADD = 0xc7
    SUBDOC_DICT_UPSERT = 0xc8
    SUBDOC_DELETE = 0xc9
    SUBDOC_REPLACE = 0xca
    SUBDOC_ARRAY_PUSH_LAST = 0xcb
    SUBDOC_ARRAY_PUSH_FIRST = 0xcc
    SUBDOC_ARRAY_INSERT = 0xcd
    SUBDOC_ARRAY_ADD_UNIQUE = 0xce
    SUBDOC_COUNTER = 0xcf
    SUBDOC_MULTI_LOOKUP = 0xd0
    SUBDOC_MULTI_MUTATION = 0xd1
    SUBDOC_GET_COUNT = 0xd2


OPCODE_NAMES = dict((v, k) for k, v in vars(Op).items() if not k.startswith("_"))


def opcode_of(name_or_code):
    """An opcode from an int or a name such as ``"GET"`` / ``"get_replica"``."""
    if isinstance(name_or_code, int):
        return name_or_code
    try:
        return getattr(Op, str(name_or_code).upper())
    except AttributeError:
        raise ValueError("unknown opcode name %r" % (name_or_code,))


class Status(object):
    """Response statuses (PROTOCOL.md section 3)."""
    SUCCESS = 0x00
    KEY_ENOENT = 0x01
    KEY_EEXISTS = 0x02
    E2BIG = 0x03
    EINVAL = 0x04
    NOT_STORED = 0x05
    DELTA_BADVAL = 0x06
    NOT_MY_VBUCKET = 0x07
    NO_BUCKET = 0x08
    LOCKED = 0x09
    NOT_LOCKED = 0x0e
    AUTH_ERROR = 0x20
    AUTH_CONTINUE = 0x21
    ERANGE = 0x22
    EACCESS = 0x24
    UNKNOWN_FRAME_INFO = 0x80
    UNKNOWN_COMMAND = 0x81
    ENOMEM = 0x82
    NOT_SUPPORTED = 0x83
    EINTERNAL = 0x84
    EBUSY = 0x85
    ETMPFAIL = 0x86
    # sub-document (mock/subdoc.py)
    SUBDOC_PATH_ENOENT = 0xc0
    SUBDOC_PATH_MISMATCH = 0xc1
    SUBDOC_PATH_EINVAL = 0xc2
    SUBDOC_PATH_E2BIG = 0xc3
    SUBDOC_DOC_E2DEEP = 0xc4
    SUBDOC_VALUE_CANTINSERT = 0xc5
    SUBDOC_DOC_NOTJSON = 0xc6
    SUBDOC_NUM_ERANGE = 0xc7
    SUBDOC_DELTA_EINVAL = 0xc8
    SUBDOC_PATH_EEXISTS = 0xc9
    SUBDOC_VALUE_ETOODEEP = 0xca
    SUBDOC_INVALID_COMBO = 0xcb
    SUBDOC_MULTI_PATH_FAILURE = 0xcc


STATUS_NAMES = dict((v, k) for k, v in vars(Status).items() if not k.startswith("_"))


class Feature(object):
    """HELLO feature codes (PROTOCOL.md section 2.3)."""
    TLS = 0x02
    TCPNODELAY = 0x03
    MUTATION_SEQNO = 0x04
    TCPDELAY = 0x05
    XATTR = 0x06
    XERROR = 0x07
    SELECT_BUCKET = 0x08
    SNAPPY = 0x0a
    JSON = 0x0b
    DUPLEX = 0x0c
    CLUSTERMAP_CHANGE_NOTIFICATION = 0x0d
    UNORDERED_EXECUTION = 0x0e
    TRACING = 0x0f
    ALT_REQUEST_SUPPORT = 0x10
    SYNC_REPLICATION = 0x11
    COLLECTIONS = 0x12
    SNAPPY_EVERYWHERE = 0x13
    PRESERVE_TTL = 0x14
    GET_CLUSTER_CONFIG_WITH_KNOWN_VERSION = 0x1d
    DEDUPE_NOT_MY_VBUCKET_CLUSTERMAP = 0x1e
    CLUSTERMAP_CHANGE_NOTIFICATION_BRIEF = 0x1f


# What this mock implements, and so accepts in HELLO.  Everything else is refused (left out of the reply).
SUPPORTED_FEATURES = frozenset([
    Feature.TCPNODELAY, Feature.MUTATION_SEQNO, Feature.XERROR, Feature.SELECT_BUCKET, Feature.JSON,
    Feature.DUPLEX, Feature.CLUSTERMAP_CHANGE_NOTIFICATION, Feature.ALT_REQUEST_SUPPORT,
    Feature.PRESERVE_TTL, Feature.GET_CLUSTER_CONFIG_WITH_KNOWN_VERSION,
])

# Server-initiated opcode (magic 0x82)
SERVER_CLUSTERMAP_CHANGE_NOTIFICATION = 0x01

# Framing-extras ids in requests (PROTOCOL.md section 1.2)
FRAME_BARRIER = 0
FRAME_DURABILITY = 1
FRAME_PRESERVE_TTL = 5


class ProtocolError(Exception):
    """The request cannot be framed: answer EINVAL and close the connection."""


class Request(object):
    """One decoded request packet."""
    __slots__ = ("magic", "opcode", "datatype", "vbucket", "opaque", "cas",
                 "frames", "extras", "key", "value")

    def __init__(self, magic, opcode, datatype, vbucket, opaque, cas, frames, extras, key, value):
        self.magic = magic
        self.opcode = opcode
        self.datatype = datatype
        self.vbucket = vbucket
        self.opaque = opaque
        self.cas = cas
        self.frames = frames      # [(id, bytes)]
        self.extras = extras
        self.key = key
        self.value = value

    def __repr__(self):
        return "<Request %s key=%r vb=%d opaque=%d>" % (
            OPCODE_NAMES.get(self.opcode, hex(self.opcode)), self.key, self.vbucket, self.opaque)


def parse_header(hdr):
    """Read a 24-byte request header.

    Returns (magic, opcode, framelen, keylen, extlen, datatype, vbucket, bodylen, opaque, cas).
    Raises ProtocolError (with ``.opaque``) when the lengths do not add up or the magic is not a
    request magic.
    """
    magic, opcode, keylen, extlen, datatype, vb, bodylen, opaque, cas = HEADER.unpack(hdr)
    framelen = 0
    if magic == MAGIC_ALT_REQ:
        framelen, keylen = keylen >> 8, keylen & 0xff
    elif magic != MAGIC_REQ:
        err = ProtocolError("bad magic 0x%02x" % magic)
        err.opaque = opaque
        err.opcode = opcode
        raise err
    if framelen + extlen + keylen > bodylen or bodylen > MAX_PACKET:
        err = ProtocolError("lengths do not add up")
        err.opaque = opaque
        err.opcode = opcode
        raise err
    return magic, opcode, framelen, keylen, extlen, datatype, vb, bodylen, opaque, cas


def parse_frames(buf):
    """Decode framing extras into [(id, data)]; raises ProtocolError if they overrun."""
    frames = []
    i, n = 0, len(buf)
    while i < n:
        b = buf[i]
        i += 1
        fid, flen = b >> 4, b & 0x0f
        if fid == 15:
            if i >= n:
                raise ProtocolError("truncated frame id")
            fid += buf[i]
            i += 1
        if flen == 15:
            if i >= n:
                raise ProtocolError("truncated frame length")
            flen += buf[i]
            i += 1
        if i + flen > n:
            raise ProtocolError("frame overruns the framing extras")
        frames.append((fid, bytes(buf[i:i + flen])))
        i += flen
    return frames


def decode_request(header_fields, body):
    """Build a Request from parse_header's result and the body bytes."""
    magic, opcode, framelen, keylen, extlen, datatype, vb, bodylen, opaque, cas = header_fields
    frames = parse_frames(body[:framelen]) if framelen else []
    p = framelen
    extras = bytes(body[p:p + extlen])
    p += extlen
    key = bytes(body[p:p + keylen])
    p += keylen
    value = bytes(body[p:])
    return Request(magic, opcode, datatype, vb, opaque, cas, frames, extras, key, value)


def response(opcode, status=0, opaque=0, cas=0, extras=b"", key=b"", value=b"", datatype=0):
    """Encode one response packet (magic 0x81)."""
    body = len(extras) + len(key) + len(value)
    return b"".join((HEADER.pack(MAGIC_RES, opcode, len(key), len(extras), datatype, status,
                                 body, opaque, cas), extras, key, value))


def server_request(opcode, extras=b"", key=b"", value=b"", datatype=0, opaque=0):
    """Encode a server-initiated request (magic 0x82, needs DUPLEX)."""
    body = len(extras) + len(key) + len(value)
    return b"".join((HEADER.pack(MAGIC_SERVER_REQ, opcode, len(key), len(extras), datatype, 0,
                                 body, opaque, 0), extras, key, value))
