"""A small blocking binary-protocol client for testing couchbase_ffi.mock.

Written on its own from the protocol description (PROTOCOL.md), not from the mock's code, so the
tests check the mock against the protocol and not against itself.  Includes a SCRAM client that
verifies the server signature.
"""
import base64
import hashlib
import hmac
import json
import os
import socket
import struct
import zlib

HDR = struct.Struct(">BBHBBHIIQ")

GET, SET, ADD, REPLACE, DELETE, INCR, DECR, QUIT, FLUSH, GETQ, NOOP, VERSION, GETK, GETKQ = (
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d)
APPEND, PREPEND, STAT, SETQ, ADDQ, REPLACEQ, DELETEQ, INCRQ, DECRQ = (
    0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16)
APPENDQ, PREPENDQ, TOUCH, GAT, GATQ, HELLO = 0x19, 0x1a, 0x1c, 0x1d, 0x1e, 0x1f
SASL_LIST_MECHS, SASL_AUTH, SASL_STEP = 0x20, 0x21, 0x22
GET_REPLICA, SELECT_BUCKET, OBSERVE_SEQNO, OBSERVE = 0x83, 0x89, 0x91, 0x92
GET_LOCKED, UNLOCK_KEY, GET_META, GET_CLUSTER_CONFIG, GET_ERROR_MAP = 0x94, 0x95, 0xa0, 0xb5, 0xfe

SUCCESS, KEY_ENOENT, KEY_EEXISTS, E2BIG, EINVAL, NOT_STORED, DELTA_BADVAL, NOT_MY_VBUCKET = range(8)
NO_BUCKET, LOCKED, NOT_LOCKED = 0x08, 0x09, 0x0e
AUTH_ERROR, AUTH_CONTINUE, EACCESS = 0x20, 0x21, 0x24
UNKNOWN_COMMAND, NOT_SUPPORTED, ETMPFAIL = 0x81, 0x83, 0x86

F_TCPNODELAY, F_MUTATION_SEQNO, F_XATTR, F_XERROR, F_SELECT_BUCKET = 0x03, 0x04, 0x06, 0x07, 0x08
F_SNAPPY, F_JSON, F_DUPLEX, F_CCN, F_UNORDERED, F_ALT, F_SYNC, F_COLLECTIONS = (
    0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x10, 0x11, 0x12)
F_CONFIG_KNOWN_VERSION = 0x1d
ALL_FEATURES = list(range(0x02, 0x27))
DEFAULT_FEATURES = [F_TCPNODELAY, F_MUTATION_SEQNO, F_XERROR, F_SELECT_BUCKET, F_JSON, F_ALT]


def vbucket_of(key, n):
    if isinstance(key, str):
        key = key.encode()
    return ((zlib.crc32(key) >> 16) & 0x7fff) % n


class Response(object):
    def __init__(self, magic, opcode, status, datatype, opaque, cas, extras, key, value):
        self.magic, self.opcode, self.status, self.datatype = magic, opcode, status, datatype
        self.opaque, self.cas, self.extras, self.key, self.value = opaque, cas, extras, key, value

    def json(self):
        return json.loads(self.value.decode())

    def __repr__(self):
        return "<Response op=0x%02x status=0x%02x key=%r value=%r>" % (
            self.opcode, self.status, self.key, self.value[:60])


class Closed(Exception):
    pass


class Conn(object):
    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout)
        self.sock.settimeout(timeout)
        self.buf = bytearray()
        self.opaque = 0
        self.features = []

    def close(self):
        self.sock.close()

    # -- framing ------------------------------------------------------------------------------
    def send(self, opcode, key=b"", value=b"", extras=b"", vb=0, cas=0, datatype=0, opaque=None,
             frames=b"", magic=None):
        if isinstance(key, str):
            key = key.encode()
        if isinstance(value, str):
            value = value.encode()
        if opaque is None:
            self.opaque += 1
            opaque = self.opaque
        body = len(frames) + len(extras) + len(key) + len(value)
        if frames or magic == 0x08:
            hdr = HDR.pack(0x08, opcode, (len(frames) << 8) | len(key), len(extras), datatype, vb, body,
                           opaque, cas)
        else:
            hdr = HDR.pack(magic or 0x80, opcode, len(key), len(extras), datatype, vb, body, opaque, cas)
        self.sock.sendall(hdr + frames + extras + key + value)
        return opaque

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(max(1 << 16, min(n - len(self.buf), 1 << 22)))
            if not chunk:
                raise Closed("connection closed with %d bytes buffered" % len(self.buf))
            self.buf += chunk

    def recv(self):
        self._fill(24)
        magic, opcode, keylen, extlen, datatype, status, bodylen, opaque, cas = HDR.unpack(bytes(self.buf[:24]))
        framelen = 0
        if magic == 0x18:
            framelen, keylen = keylen >> 8, keylen & 0xff
        self._fill(24 + bodylen)
        body = bytes(self.buf[24:24 + bodylen])
        del self.buf[:24 + bodylen]
        p = framelen
        extras = body[p:p + extlen]
        p += extlen
        key = body[p:p + keylen]
        p += keylen
        return Response(magic, opcode, status, datatype, opaque, cas, extras, key, body[p:])

    def call(self, opcode, **kw):
        opaque = self.send(opcode, **kw)
        r = self.recv()
        assert r.opaque == opaque, (r, opaque)
        return r

    def closed_by_peer(self, wait=2.0):
        """True if the server closes the connection (EOF) within ``wait`` seconds."""
        self.sock.settimeout(wait)
        try:
            while True:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionError:
            return True

    # -- handshake ----------------------------------------------------------------------------
    def hello(self, features=DEFAULT_FEATURES, agent=b'{"a":"mock-test","i":"0000000000000000/0000000000000000"}'):
        r = self.call(HELLO, key=agent, value=b"".join(struct.pack(">H", f) for f in features))
        assert r.status == SUCCESS, r
        self.features = [struct.unpack(">H", r.value[i:i + 2])[0] for i in range(0, len(r.value), 2)]
        return self.features

    def auth(self, user, password, mech="SCRAM-SHA512"):
        """Authenticate; returns the final status.  For SCRAM the server signature is checked."""
        if mech == "PLAIN":
            return self.call(SASL_AUTH, key=mech, value=b"\0" + user.encode() + b"\0" + password.encode()).status
        hname = {"SCRAM-SHA1": "sha1", "SCRAM-SHA256": "sha256", "SCRAM-SHA512": "sha512"}[mech]
        cnonce = base64.b64encode(os.urandom(12)).decode()
        first_bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"), cnonce)
        r = self.call(SASL_AUTH, key=mech, value=("n,," + first_bare).encode())
        if r.status != AUTH_CONTINUE:
            return r.status
        server_first = r.value.decode()
        attrs = dict(p.split("=", 1) for p in server_first.split(","))
        assert attrs["r"].startswith(cnonce) and len(attrs["r"]) > len(cnonce)
        salted = hashlib.pbkdf2_hmac(hname, password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", hname).digest()
        stored = hashlib.new(hname, client_key).digest()
        final_wo_proof = "c=biws,r=%s" % attrs["r"]
        auth_msg = ",".join((first_bare, server_first, final_wo_proof)).encode()
        sig = hmac.new(stored, auth_msg, hname).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        r = self.call(SASL_STEP, key=mech,
                      value=(final_wo_proof + ",p=" + base64.b64encode(proof).decode()).encode())
        if r.status == SUCCESS:
            server_key = hmac.new(salted, b"Server Key", hname).digest()
            expect = b"v=" + base64.b64encode(hmac.new(server_key, auth_msg, hname).digest())
            if r.value != expect:
                raise AssertionError("bad server signature %r" % r.value)
        return r.status

    def select(self, bucket):
        return self.call(SELECT_BUCKET, key=bucket).status

    def config(self):
        r = self.call(GET_CLUSTER_CONFIG)
        assert r.status == SUCCESS, r
        return r.json()

    # -- KV helpers (vb given explicitly) -----------------------------------------------------
    def set(self, key, value, vb=0, flags=0, exp=0, cas=0, op=SET, datatype=0):
        return self.call(op, key=key, value=value, extras=struct.pack(">II", flags, exp), vb=vb, cas=cas,
                         datatype=datatype)

    def get(self, key, vb=0, op=GET):
        return self.call(op, key=key, vb=vb)

    def counter(self, key, delta, initial=0, exp=0, vb=0, op=INCR, cas=0):
        return self.call(op, key=key, extras=struct.pack(">QQI", delta, initial, exp), vb=vb, cas=cas)


def connect(port, user="Administrator", password="password", bucket="default", features=DEFAULT_FEATURES,
            mech="SCRAM-SHA512"):
    c = Conn(port)
    c.hello(features)
    st = c.auth(user, password, mech)
    assert st == SUCCESS, hex(st)
    if bucket is not None:
        assert c.select(bucket) == SUCCESS
    return c


class Router(object):
    """One connection per node of a couchbase bucket; sends each key to its active (or a replica)."""

    def __init__(self, cluster, bucket="default", **kw):
        self.cluster = cluster
        self.ports = cluster.kv_ports
        self.kw = dict(kw, bucket=bucket)
        self.conns = {}
        self.cfg = self.conn(0).config()

    def conn(self, node):
        if node not in self.conns:
            self.conns[node] = connect(self.ports[node], **self.kw)
        return self.conns[node]

    def close(self):
        for c in self.conns.values():
            c.close()

    @property
    def nvb(self):
        return len(self.cfg["vBucketServerMap"]["vBucketMap"])

    def node_of(self, server_index):
        """serverList index -> cluster node index (by port)."""
        port = int(self.cfg["vBucketServerMap"]["serverList"][server_index].rsplit(":", 1)[1])
        return self.ports.index(port)

    def chain(self, key):
        vb = vbucket_of(key, self.nvb)
        return vb, [self.node_of(i) if i >= 0 else -1 for i in self.cfg["vBucketServerMap"]["vBucketMap"][vb]]

    def call(self, opcode, key, replica=0, **kw):
        vb, chain = self.chain(key)
        return self.conn(chain[replica]).call(opcode, key=key, vb=vb, **kw)

    def set(self, key, value, flags=0, exp=0, cas=0, op=SET):
        return self.call(op, key, value=value, extras=struct.pack(">II", flags, exp), cas=cas)

    def get(self, key, op=GET):
        return self.call(op, key)
