"""The KV (memcached binary protocol) server of one mock node.

``KVServer`` listens on the node's port; each connection is served by one
coroutine that reads whole packets, applies the faults that match, and hands
the request to ``Session``, which holds the connection's negotiated state and
implements the commands (one method per opcode family, found through the
``_HANDLERS`` table).  Handlers return the list of packets to send (empty for a
quiet success).
"""
import asyncio
import json
import logging
import os
import socket
import struct

from couchbase_ffi.mock import sasl
from couchbase_ffi.mock import subdoc
from couchbase_ffi.mock.errormap import error_map_json
from couchbase_ffi.mock.protocol import (
    DATATYPE_JSON, FRAME_BARRIER, FRAME_DURABILITY, FRAME_PRESERVE_TTL, HEADER_LEN, MAGIC_ALT_REQ,
    MAGIC_CLIENT_RES, MAX_KEY, MAX_VALUE, OPCODE_NAMES, SERVER_CLUSTERMAP_CHANGE_NOTIFICATION, SUPPORTED_FEATURES,
    Feature, Op, ProtocolError, Status, decode_request, parse_header, response, server_request)
from couchbase_ffi.mock.state import COUCHBASE, LOCK_DEFAULT, LOCK_MAX, Item

log = logging.getLogger("couchbase_ffi.mock.kv")

VERSION = b"7.6.0-mock"
NO_BUCKET_NAME = b"@no bucket@"
# internal status: 0x09 LOCKED with XERROR, ETMPFAIL without (kv_engine "locked tmpfail")
LOCKED_TMPFAIL = 0x10009

# what an unauthenticated connection may send
_PRE_AUTH = frozenset([Op.HELLO, Op.SASL_LIST_MECHS, Op.SASL_AUTH, Op.SASL_STEP, Op.GET_ERROR_MAP,
                       Op.NOOP, Op.VERSION, Op.QUIT, Op.QUITQ])

_QUIET = {Op.GETQ: Op.GET, Op.GETKQ: Op.GETK, Op.SETQ: Op.SET, Op.ADDQ: Op.ADD,
          Op.REPLACEQ: Op.REPLACE, Op.DELETEQ: Op.DELETE, Op.INCRQ: Op.INCR, Op.DECRQ: Op.DECR,
          Op.APPENDQ: Op.APPEND, Op.PREPENDQ: Op.PREPEND, Op.GATQ: Op.GAT, Op.QUITQ: Op.QUIT,
          Op.FLUSHQ: Op.FLUSH}

_FLAGS = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_SEQNO = struct.Struct(">QQ")
_ARITH = struct.Struct(">QQI")
_STORE = struct.Struct(">II")
_JSON_START = frozenset(b'{["-0123456789tfn')


def _looks_json(value):
    """What kv_engine does on every store: mark the value JSON if it parses as JSON."""
    v = value.lstrip()
    if not v or v[0] not in _JSON_START:
        return False
    try:
        json.loads(v.decode("utf-8"))
    except ValueError:
        return False
    return True


class Session(object):
    """One client connection's state and the command implementations."""

    def __init__(self, server, writer):
        self.server = server
        self.node = server.node
        self.state = server.state
        self.writer = writer
        self.features = frozenset()
        self.agent = ""
        self.user = None
        self.bucket = None
        self.mech = None
        self.closing = False
        self.closed = False
        self.pushed_rev = 0

    # -- helpers ------------------------------------------------------------------------------
    def has(self, feature):
        return feature in self.features

    def ok(self, req, **kw):
        return [response(req.opcode, 0, req.opaque, **kw)]

    def error(self, req, status, context=None):
        """An error response, remapped as kv_engine does for clients without XERROR."""
        xerror = self.has(Feature.XERROR)
        if status == LOCKED_TMPFAIL:
            status = Status.LOCKED if xerror else Status.ETMPFAIL
        elif not xerror:
            if status in (Status.EACCESS, Status.NO_BUCKET):
                self.closing = True       # kv_engine disconnects clients that cannot understand these
                return []
            if status == Status.LOCKED:
                status = Status.KEY_EEXISTS
            elif status == Status.NOT_LOCKED:
                status = Status.ETMPFAIL
        value = b""
        datatype = 0
        if context and xerror:
            value = json.dumps({"error": {"context": context}}).encode("utf-8")
            datatype = DATATYPE_JSON if self.has(Feature.JSON) else 0
        return [response(req.opcode, status, req.opaque, value=value, datatype=datatype)]

    def einval(self, req, why):
        return self.error(req, Status.EINVAL, why)

    def json_datatype(self):
        return DATATYPE_JSON if self.has(Feature.JSON) else 0

    def nmv(self, req):
        """NOT_MY_VBUCKET carrying the current config (``$HOST`` left in)."""
        cfg = self.bucket.config(self.node).encode("utf-8")
        stats = self.server.stats
        stats["not_my_vbucket"] = stats.get("not_my_vbucket", 0) + 1
        self.pushed_rev = max(self.pushed_rev, self.state.rev)
        return [response(req.opcode, Status.NOT_MY_VBUCKET, req.opaque, value=cfg,
                         datatype=self.json_datatype())]

    def mutation_extras(self, vb, item):
        if not self.has(Feature.MUTATION_SEQNO):
            return b""
        vbuuid = self.bucket.vbuuid(vb) if self.bucket.type == COUCHBASE else 0
        return _SEQNO.pack(vbuuid, item.seqno)

    def _store_for(self, req, role="active"):
        """(store, vb) for a key command, or (None, error packets) when the node does not own it."""
        b = self.bucket
        if b.type == COUCHBASE:
            vb = req.vbucket
            if b.vb_state(self.node, vb) != role:
                return None, self.nmv(req)
            return b.store_of(self.node, vb), vb
        if not b.serves(self.node):
            return None, self.nmv(req)
        return b.stores[self.node], 0

    def _locked(self, item):
        return item.lock_until and item.lock_until > self.state.now()

    def _commit(self, store, vb, key, value, flags, datatype, expiry, deleted=False):
        b = self.bucket
        it = Item(value, flags, datatype, self.state.next_cas(), expiry,
                  b.next_seqno(self.node, vb), deleted)
        old = store.get(key)
        if old is not None:
            it.revno = old.revno + 1
        store[key] = it
        b.after_mutation(self.node, vb, key, it)
        return it

    def _check_cas(self, req, cur):
        """None if the mutation may go ahead, else the error packets (lock and CAS rules)."""
        if cur is not None and self._locked(cur):
            if req.cas != cur.lock_cas:
                return self.error(req, Status.LOCKED)
            return None
        if req.cas:
            if cur is None:
                return self.error(req, Status.KEY_ENOENT)
            if cur.cas != req.cas:
                return self.error(req, Status.KEY_EEXISTS)
        return None

    def _frames(self, req):
        """(preserve_ttl, error packets or None) from the request's framing extras."""
        preserve = False
        for fid, data in req.frames:
            if fid == FRAME_BARRIER:
                continue
            if fid == FRAME_PRESERVE_TTL:
                preserve = True
            elif fid == FRAME_DURABILITY:
                return False, self.error(req, Status.NOT_SUPPORTED, "durable writes are not supported")
            else:
                return False, self.error(req, Status.UNKNOWN_FRAME_INFO)
        return preserve, None

    def _mutation_target(self, req):
        """(preserve_ttl, store, vbucket, None) for a mutation of req.key, or
        (False, None, None, the error reply): framing extras, then the key's store."""
        preserve, err = self._frames(req)
        if err:
            return False, None, None, err
        store, vb = self._store_for(req)
        if store is None:
            return False, None, None, vb
        return preserve, store, vb, None

    def _existing(self, req, store, missing=Status.KEY_ENOENT):
        """(the live item, None) for a mutation of an existing key whose CAS (if
        given) matches, or (None, the error reply: ``missing`` when there is none)."""
        cur = self.state.live(store, req.key)
        if cur is None:
            return None, self.error(req, missing)
        return cur, self._check_cas(req, cur)

    def _mutated(self, req, quiet, vb, it, value=b""):
        """The reply to a mutation that made ``it`` (none for a quiet one)."""
        if quiet:
            return []
        return self.ok(req, cas=it.cas, extras=self.mutation_extras(vb, it), value=value)

    def _value_datatype(self, req):
        """(stored datatype, error) for a value the client sent."""
        dt = req.datatype
        if dt & ~DATATYPE_JSON or (dt & DATATYPE_JSON and not self.has(Feature.JSON)):
            return 0, self.einval(req, "datatype not negotiated")
        return (DATATYPE_JSON if _looks_json(req.value) else 0), None

    def _read_reply(self, req, it, with_key, cas=None):
        dt = it.datatype & self.json_datatype()
        return [response(req.opcode, 0, req.opaque, cas=it.cas if cas is None else cas,
                         extras=_FLAGS.pack(it.flags), key=req.key if with_key else b"",
                         value=it.value, datatype=dt)]

    # -- dispatch -----------------------------------------------------------------------------
    def handle(self, req):
        op = req.opcode
        entry = _HANDLERS.get(op)
        if entry is None:
            log.debug("node %d: unknown opcode 0x%02x (%s)", self.node, op, OPCODE_NAMES.get(op, "?"))
            return self.error(req, Status.UNKNOWN_COMMAND)
        handler, needs = entry
        if self.user is None and op not in _PRE_AUTH:
            return self.error(req, Status.EACCESS, "authenticate first")
        if needs != _SESSION:
            if self.bucket is None:
                return self.error(req, Status.NO_BUCKET)
            if needs == _KEYED and not req.key:
                return self.einval(req, "key required")
        stats = self.server.stats
        stats[op] = stats.get(op, 0) + 1
        return handler(self, req)

    # -- session commands ---------------------------------------------------------------------
    def hello(self, req):
        if len(req.value) % 2:
            return self.einval(req, "odd feature list")
        self.agent = req.key.decode("utf-8", "replace")
        wanted = [struct.unpack(">H", req.value[i:i + 2])[0] for i in range(0, len(req.value), 2)]
        accepted = []
        for f in wanted:
            if f in self.server.features and f not in accepted:
                if f == Feature.CLUSTERMAP_CHANGE_NOTIFICATION and Feature.DUPLEX not in wanted:
                    continue
                accepted.append(f)
        refused = [f for f in wanted if f not in accepted]
        log.debug("node %d: HELLO %r accepted %s refused %s", self.node, self.agent,
                  ["0x%02x" % f for f in accepted], ["0x%02x" % f for f in refused])
        self.features = frozenset(accepted)
        if Feature.TCPNODELAY in self.features:
            sock = self.writer.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:
                    pass
        return self.ok(req, value=b"".join(struct.pack(">H", f) for f in accepted))

    def noop(self, req):
        return self.ok(req)

    def version(self, req):
        return self.ok(req, value=VERSION)

    def verbosity(self, req):
        if len(req.extras) != 4:
            return self.einval(req, "extras must be 4 bytes")
        return self.ok(req)

    def quit(self, req):
        self.closing = True
        return [] if req.opcode == Op.QUITQ else self.ok(req)

    def get_error_map(self, req):
        if len(req.value) != 2 or req.key or req.extras:
            return self.einval(req, "value must be a u16 version")
        version = struct.unpack(">H", req.value)[0]
        if version == 0:
            return self.einval(req, "version 0")
        return self.ok(req, value=error_map_json(version).encode("utf-8"), datatype=self.json_datatype())

    def sasl_list_mechs(self, req):
        return self.ok(req, value=" ".join(sasl.MECHANISMS).encode("ascii"))

    def sasl_auth(self, req):
        name = req.key.decode("ascii", "replace")
        mech = sasl.mechanism(self.state.creds, name)
        self.user = None
        self.bucket = None
        if mech is None:
            self.mech = None
            return self.error(req, Status.AUTH_ERROR, "unknown mechanism")
        self.mech = mech
        return self._sasl_result(req, *mech.start(req.value))

    def sasl_step(self, req):
        if self.mech is None or req.key.decode("ascii", "replace") != self.mech.name:
            return self.einval(req, "no authentication in progress for this mechanism")
        return self._sasl_result(req, *self.mech.step(req.value))

    def _sasl_result(self, req, outcome, data):
        if outcome == "continue":
            return [response(req.opcode, Status.AUTH_CONTINUE, req.opaque, value=data)]
        mech, self.mech = self.mech, None
        if outcome == "ok":
            self.user = mech.user
            log.debug("node %d: %s authenticated with %s", self.node, self.user, mech.name)
            # kv_engine selects the bucket named like the user, for clients that never send SELECT_BUCKET
            b = self.state.buckets.get(self.user)
            if b is not None and self.state.may_access(self.user, b.name):
                self.bucket = b
            return self.ok(req, value=data)
        return self.error(req, Status.AUTH_ERROR,
                          "Authentication failed. This could be due to invalid credentials or if the "
                          "user is not defined.")

    def select_bucket(self, req):
        if req.key == NO_BUCKET_NAME:
            self.bucket = None
            return self.ok(req)
        name = req.key.decode("utf-8", "replace")
        if self.user is None or not self.state.may_access(self.user, name):
            return self.error(req, Status.EACCESS, "no such bucket or no access")
        self.bucket = self.state.buckets[name]
        return self.ok(req)

    def get_cluster_config(self, req):
        if req.key or req.value or len(req.extras) not in (0, 16):
            return self.einval(req, "no key or value; extras 0 or 16 bytes")
        if req.extras and not self.has(Feature.GET_CLUSTER_CONFIG_WITH_KNOWN_VERSION):
            return self.einval(req, "known-version extras not negotiated")
        if self.bucket is not None:
            cfg = self.bucket.config(self.node)
        elif self.state.is_admin(self.user):
            cfg = self.state.global_config(self.node)
        else:
            return self.error(req, Status.NO_BUCKET)
        if req.extras:
            epoch, rev = struct.unpack(">qq", req.extras)
            if (epoch, rev) >= (self.state.rev_epoch, self.state.rev):
                return self.ok(req)
        self.pushed_rev = max(self.pushed_rev, self.state.rev)
        return self.ok(req, value=cfg.encode("utf-8"), datatype=self.json_datatype())

    # -- reads --------------------------------------------------------------------------------
    def get(self, req):
        op = _QUIET.get(req.opcode, req.opcode)
        quiet = op != req.opcode
        if req.extras or req.value:
            return self.einval(req, "GET takes a key only")
        store, vb = self._store_for(req)
        if store is None:
            return vb
        it = self.state.live(store, req.key)
        stats = self.server.stats
        if it is None:
            stats["get_misses"] = stats.get("get_misses", 0) + 1
            if quiet:
                return []
            key = req.key if op == Op.GETK else b""
            return [response(req.opcode, Status.KEY_ENOENT, req.opaque, key=key)]
        stats["get_hits"] = stats.get("get_hits", 0) + 1
        cas = 0xffffffffffffffff if self._locked(it) else it.cas
        return self._read_reply(req, it, op == Op.GETK, cas=cas)

    def _live_item(self, req, role="active"):
        """(the live item of req.key on this node's ``role`` copy, None), or (None, the
        error reply: NOT_MY_VBUCKET, KEY_ENOENT)."""
        store, vb = self._store_for(req, role=role)
        if store is None:
            return None, vb
        it = self.state.live(store, req.key)
        if it is None:
            return None, self.error(req, Status.KEY_ENOENT)
        return it, None

    def get_replica(self, req):
        if self.bucket.type != COUCHBASE:
            return self.error(req, Status.NOT_SUPPORTED)
        if req.extras or req.value:
            return self.einval(req, "GET_REPLICA takes a key only")
        it, err = self._live_item(req, role="replica")
        if err:
            return err
        return self._read_reply(req, it, False)

    def get_locked(self, req):
        if self.bucket.type != COUCHBASE:
            return self.error(req, Status.NOT_SUPPORTED)
        if len(req.extras) not in (0, 4) or req.value:
            return self.einval(req, "extras 0 or 4 bytes")
        it, err = self._live_item(req)
        if err:
            return err
        if self._locked(it):
            return self.error(req, LOCKED_TMPFAIL)
        seconds = _FLAGS.unpack(req.extras)[0] if req.extras else 0
        if seconds == 0 or seconds > self.server.lock_max:
            seconds = self.server.lock_default
        it.cas = self.state.next_cas()
        it.lock_cas = it.cas
        it.lock_until = self.state.now() + seconds
        return self._read_reply(req, it, False)

    def unlock_key(self, req):
        if self.bucket.type != COUCHBASE:
            return self.error(req, Status.NOT_SUPPORTED)
        if req.extras or req.value:
            return self.einval(req, "UNLOCK takes a key and a CAS")
        it, err = self._live_item(req)
        if err:
            return err
        if not self._locked(it):
            return self.error(req, Status.NOT_LOCKED)
        if req.cas != it.lock_cas:
            return self.error(req, LOCKED_TMPFAIL)
        it.lock_until = 0
        return self.ok(req, cas=it.cas)

    def get_meta(self, req):
        """Metadata, also of a deleted document: deleted, flags, expiry, rev seqno (+ datatype, v2)."""
        if self.bucket.type != COUCHBASE:
            return self.error(req, Status.NOT_SUPPORTED)
        if len(req.extras) > 1 or req.value:
            return self.einval(req, "extras 0 or 1 byte")
        store, vb = self._store_for(req)
        if store is None:
            return vb
        self.state.live(store, req.key)        # applies expiry: an expired item reads as deleted
        it = store.get(req.key)
        if it is None:
            return self.error(req, Status.KEY_ENOENT)
        extras = struct.pack(">IIIQ", 1 if it.deleted else 0, it.flags, int(it.expiry), it.revno)
        if req.extras == b"\x02":
            extras += struct.pack(">B", it.datatype & self.json_datatype())
        return self.ok(req, cas=it.cas, extras=extras)

    # -- mutations ----------------------------------------------------------------------------
    def store(self, req):
        op = _QUIET.get(req.opcode, req.opcode)
        quiet = op != req.opcode
        if len(req.extras) != 8:
            return self.einval(req, "extras must be 8 bytes")
        if len(req.value) > MAX_VALUE:
            return self.error(req, Status.E2BIG)
        if op == Op.ADD and req.cas:
            return self.einval(req, "ADD with a CAS")
        datatype, err = self._value_datatype(req)
        if err:
            return err
        preserve, store, vb, err = self._mutation_target(req)
        if err:
            return err
        flags, exp = _STORE.unpack(req.extras)
        cur = self.state.live(store, req.key)
        if op == Op.ADD and cur is not None:
            return self.error(req, Status.KEY_EEXISTS)
        if op == Op.REPLACE and cur is None:
            return self.error(req, Status.KEY_ENOENT)
        err = self._check_cas(req, cur)
        if err:
            return err
        expiry = cur.expiry if (preserve and cur is not None) else self.state.expiry_to_abs(exp)
        it = self._commit(store, vb, req.key, req.value, flags, datatype, expiry)
        return self._mutated(req, quiet, vb, it)

    def delete(self, req):
        quiet = req.opcode == Op.DELETEQ
        if req.extras or req.value:
            return self.einval(req, "DELETE takes a key only")
        _preserve, store, vb, err = self._mutation_target(req)
        if err:
            return err
        cur, err = self._existing(req, store)
        if err:
            return err
        it = self._commit(store, vb, req.key, b"", cur.flags, 0, 0, deleted=True)
        return self._mutated(req, quiet, vb, it)

    def arithmetic(self, req):
        op = _QUIET.get(req.opcode, req.opcode)
        quiet = op != req.opcode
        if len(req.extras) != 20 or req.value:
            return self.einval(req, "extras must be 20 bytes")
        _preserve, store, vb, err = self._mutation_target(req)
        if err:
            return err
        delta, initial, exp = _ARITH.unpack(req.extras)
        cur = self.state.live(store, req.key)
        if cur is None:
            if req.cas:
                return self.error(req, Status.KEY_ENOENT)
            if exp == 0xffffffff:
                return self.error(req, Status.KEY_ENOENT)
            new, flags, expiry = initial, 0, self.state.expiry_to_abs(exp)
        else:
            err = self._check_cas(req, cur)
            if err:
                return err
            digits = cur.value.strip()
            if not digits or len(digits) > 20 or not digits.isdigit() or int(digits) >= 1 << 64:
                return self.error(req, Status.DELTA_BADVAL)
            old = int(digits)
            if op == Op.INCR:
                new = (old + delta) & 0xffffffffffffffff
            else:
                new = max(old - delta, 0)
            flags, expiry = cur.flags, cur.expiry
        it = self._commit(store, vb, req.key, str(new).encode("ascii"), flags, DATATYPE_JSON, expiry)
        return self._mutated(req, quiet, vb, it, value=_U64.pack(new))

    def concat(self, req):
        op = _QUIET.get(req.opcode, req.opcode)
        quiet = op != req.opcode
        if req.extras:
            return self.einval(req, "APPEND/PREPEND take no extras")
        _preserve, store, vb, err = self._mutation_target(req)
        if err:
            return err
        cur, err = self._existing(req, store, missing=Status.NOT_STORED)
        if err:
            return err
        value = cur.value + req.value if op == Op.APPEND else req.value + cur.value
        if len(value) > MAX_VALUE:
            return self.error(req, Status.E2BIG)
        dt = DATATYPE_JSON if _looks_json(value) else 0
        it = self._commit(store, vb, req.key, value, cur.flags, dt, cur.expiry)
        return self._mutated(req, quiet, vb, it)

    def touch(self, req):
        op = _QUIET.get(req.opcode, req.opcode)
        quiet = op != req.opcode
        if len(req.extras) != 4 or req.value:
            return self.einval(req, "extras must be 4 bytes")
        store, vb = self._store_for(req)
        if store is None:
            return vb
        cur = self.state.live(store, req.key)
        if cur is None:
            return [] if quiet else self.error(req, Status.KEY_ENOENT)
        if self._locked(cur):
            return self.error(req, Status.LOCKED)
        expiry = self.state.expiry_to_abs(_FLAGS.unpack(req.extras)[0])
        it = self._commit(store, vb, req.key, cur.value, cur.flags, cur.datatype, expiry)
        if op == Op.TOUCH:
            return self.ok(req, cas=it.cas)
        return self._read_reply(req, it, False)     # GATQ, like GETQ, is quiet only on a miss

    def flush(self, req):
        if len(req.extras) not in (0, 4) or (req.extras and _FLAGS.unpack(req.extras)[0]):
            return self.einval(req, "FLUSH takes no delay")
        if self.bucket.type == COUCHBASE:
            return self.error(req, Status.NOT_SUPPORTED, "flush couchbase buckets over REST")
        self.bucket.stores[self.node].clear()
        return [] if req.opcode == Op.FLUSHQ else self.ok(req)

    # -- observe ------------------------------------------------------------------------------
    def observe(self, req):
        b = self.bucket
        if b.type != COUCHBASE:
            return self.error(req, Status.NOT_SUPPORTED)
        v = req.value
        out = []
        i = 0
        while i < len(v):
            if i + 4 > len(v):
                return self.einval(req, "truncated observe entry")
            vb, klen = struct.unpack(">HH", v[i:i + 4])
            key = v[i + 4:i + 4 + klen]
            if len(key) != klen:
                return self.einval(req, "truncated observe key")
            i += 4 + klen
            if b.vb_state(self.node, vb) == "dead":
                return self.nmv(req)
            it = b.stores[self.node].get(vb, {}).get(key)
            if it is not None and not it.deleted:
                self.state.live(b.stores[self.node][vb], key)   # applies expiry
            if it is None:
                st, cas = 0x80, 0
            elif it.deleted:
                st, cas = (0x80 if it.persisted else 0x81), it.cas
            else:
                st, cas = (0x01 if it.persisted else 0x00), it.cas
            out.append(struct.pack(">HH", vb, klen) + key + struct.pack(">BQ", st, cas))
        ttp = _ms(self.state.persist_queue.delay)
        ttr = _ms(self.state.replicate_queue.delay)
        return self.ok(req, cas=(ttp << 32) | ttr, value=b"".join(out))

    def observe_seqno(self, req):
        b = self.bucket
        if b.type != COUCHBASE:
            return self.error(req, Status.NOT_SUPPORTED)
        if len(req.value) != 8:
            return self.einval(req, "value must be the vbuuid (8 bytes)")
        vb = req.vbucket
        if b.vb_state(self.node, vb) == "dead":
            return self.nmv(req)
        uuid = _U64.unpack(req.value)[0]
        log_ = b.failover_log[vb]
        persisted = b.persisted[self.node].get(vb, 0)
        current = b.high[self.node].get(vb, 0)
        for k, (entry_uuid, _start) in enumerate(log_):
            if entry_uuid == uuid and k > 0:
                last = log_[k - 1][1]
                body = struct.pack(">BHQQQQQ", 1, vb, log_[0][0], persisted, current, uuid, last)
                return self.ok(req, value=body)
        return self.ok(req, value=struct.pack(">BHQQQ", 0, vb, log_[0][0], persisted, current))

    # -- stats --------------------------------------------------------------------------------
    def stat(self, req):
        group = req.key.decode("utf-8", "replace").strip()
        pairs = self.server.stat_group(self, group)
        if pairs is None:
            return self.error(req, Status.KEY_ENOENT)
        out = [response(req.opcode, 0, req.opaque, key=k.encode("utf-8"), value=str(v).encode("utf-8"))
               for k, v in pairs]
        out.append(response(req.opcode, 0, req.opaque))
        return out


def _ms(delay):
    if delay == float("inf"):
        return 0xffffffff
    return min(int(delay * 1000), 0xffffffff)


# what a handler needs before it runs
_SESSION, _BUCKET, _KEYED = "session", "bucket", "keyed"


def _build_handlers():
    """opcode -> (Session method, what it needs: a session only, a bucket, or a bucket and a key)."""
    S = Session
    table = {
        _SESSION: {
            Op.HELLO: S.hello, Op.NOOP: S.noop, Op.VERSION: S.version, Op.VERBOSITY: S.verbosity,
            Op.QUIT: S.quit, Op.QUITQ: S.quit, Op.GET_ERROR_MAP: S.get_error_map,
            Op.SASL_LIST_MECHS: S.sasl_list_mechs, Op.SASL_AUTH: S.sasl_auth, Op.SASL_STEP: S.sasl_step,
            Op.SELECT_BUCKET: S.select_bucket, Op.GET_CLUSTER_CONFIG: S.get_cluster_config,
        },
        _BUCKET: {
            Op.OBSERVE: S.observe, Op.OBSERVE_SEQNO: S.observe_seqno, Op.STAT: S.stat,
            Op.FLUSH: S.flush, Op.FLUSHQ: S.flush,
        },
        _KEYED: {
            Op.GET: S.get, Op.GETQ: S.get, Op.GETK: S.get, Op.GETKQ: S.get,
            Op.GET_REPLICA: S.get_replica, Op.GET_LOCKED: S.get_locked, Op.UNLOCK_KEY: S.unlock_key,
            Op.GET_META: S.get_meta,
            Op.SET: S.store, Op.SETQ: S.store, Op.ADD: S.store, Op.ADDQ: S.store,
            Op.REPLACE: S.store, Op.REPLACEQ: S.store, Op.DELETE: S.delete, Op.DELETEQ: S.delete,
            Op.INCR: S.arithmetic, Op.INCRQ: S.arithmetic, Op.DECR: S.arithmetic, Op.DECRQ: S.arithmetic,
            Op.APPEND: S.concat, Op.APPENDQ: S.concat, Op.PREPEND: S.concat, Op.PREPENDQ: S.concat,
            Op.TOUCH: S.touch, Op.GAT: S.touch, Op.GATQ: S.touch,
            # sub-document commands: mock/subdoc.py
            Op.SUBDOC_MULTI_LOOKUP: subdoc.multi_lookup,
            Op.SUBDOC_MULTI_MUTATION: subdoc.multi_mutation,
        },
    }
    table[_KEYED].update((op, subdoc.single) for op in subdoc.SINGLE_OPCODES)
    return dict((op, (fn, needs)) for needs, ops in table.items() for op, fn in ops.items())


_HANDLERS = _build_handlers()


class KVServer(object):
    """The KV port of one node: accepts connections, applies faults, runs sessions."""

    def __init__(self, state, faults, node, host="127.0.0.1"):
        self.state = state
        self.faults = faults
        self.node = node
        self.host = host
        self.sessions = set()
        self.server = None
        self.stats = {}
        self.total_connections = 0
        self.started = 0.0
        self.lock_default = LOCK_DEFAULT
        self.lock_max = LOCK_MAX
        self.features = SUPPORTED_FEATURES     # what HELLO may accept on this node
        self.ssl = None             # an ssl.SSLContext: also listen with TLS (kvSSL)
        self.tls_server = None

    def named_stats(self):
        """Request counters by opcode name, plus get_hits / get_misses / not_my_vbucket."""
        return dict((OPCODE_NAMES.get(k, "0x%02x" % k) if isinstance(k, int) else k, v)
                    for k, v in self.stats.items())

    @property
    def port(self):
        return self.state.nodes[self.node].kv_port

    async def start(self):
        loop = asyncio.get_event_loop()
        self.server = await asyncio.start_server(self._serve, self.host, self.port, reuse_address=True,
                                                 limit=1 << 20)
        if self.ssl is not None:
            node = self.state.nodes[self.node]
            self.tls_server = await asyncio.start_server(self._serve, self.host, node.kv_ssl_port,
                                                         reuse_address=True, limit=1 << 20,
                                                         ssl=self.ssl, ssl_handshake_timeout=10)
            node.kv_ssl_port = self.tls_server.sockets[0].getsockname()[1]
        self.state.nodes[self.node].running = True
        self.started = loop.time()

    async def stop(self):
        """Stop listening and drop every connection (a crashed node)."""
        self.state.nodes[self.node].running = False
        servers = [x for x in (self.server, self.tls_server) if x is not None]
        for x in servers:
            x.close()
        for s in list(self.sessions):
            s.closed = True
            s.writer.close()
        for x in servers:
            await x.wait_closed()
        self.server = self.tls_server = None

    async def _serve(self, reader, writer):
        s = Session(self, writer)
        self.sessions.add(s)
        self.total_connections += 1
        try:
            while not s.closing and not s.closed:
                hdr = await reader.readexactly(HEADER_LEN)
                if hdr[0] == MAGIC_CLIENT_RES and s.has(Feature.DUPLEX):
                    # a duplex client's reply to one of our server requests: nothing to do
                    await reader.readexactly(struct.unpack(">I", hdr[8:12])[0])
                    continue
                try:
                    fields = parse_header(hdr)
                    body = await reader.readexactly(fields[7]) if fields[7] else b""
                    req = decode_request(fields, body)
                    if len(req.key) > MAX_KEY:
                        raise ProtocolError("key longer than 250 bytes")
                    if req.magic == MAGIC_ALT_REQ and not s.has(Feature.ALT_REQUEST_SUPPORT):
                        raise ProtocolError("flexible framing not negotiated")
                except ProtocolError as e:
                    log.debug("node %d: malformed request: %s", self.node, e)
                    opaque = getattr(e, "opaque", None)
                    if opaque is None:
                        opaque = struct.unpack(">I", hdr[12:16])[0]
                    writer.write(response(hdr[1], Status.EINVAL, opaque))
                    break
                await self._process(s, req)
                if writer.transport.get_write_buffer_size() > (4 << 20):
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self.sessions.discard(s)
            s.closed = True
            try:
                writer.close()
            except Exception:   # noqa: BLE001  (the loop may be going away)
                pass

    async def _process(self, s, req):
        delay, action = self.faults.take(self.node, req.opcode)
        if delay:
            await asyncio.sleep(delay)
            if s.closed:
                return
        if action is not None and action.kind == "status":
            if action.status == Status.NOT_MY_VBUCKET and s.bucket is not None:
                packets = s.nmv(req)
            else:
                packets = [response(req.opcode, action.status, req.opaque)]
        else:
            try:
                packets = s.handle(req)
            except Exception:   # noqa: BLE001  (a bug in the mock: say so instead of hanging the client)
                log.exception("node %d: internal error handling %r", self.node, req)
                packets = [response(req.opcode, Status.EINTERNAL, req.opaque)]
        if s.closed or not packets:
            return
        data = b"".join(packets)
        if action is not None:
            if action.kind == "drop":
                return
            if action.kind == "garbage":
                data = b"\xde\xad" + os.urandom(22)
            elif action.kind == "truncate":
                s.writer.write(data[:max(1, min(len(data) - 1, HEADER_LEN // 2 + len(data) // 4))])
                s.closing = True
                return
        s.writer.write(data)

    # -- server push --------------------------------------------------------------------------
    def push_configs(self):
        """Send the new config to every session that asked for change notifications."""
        rev = self.state.rev
        for s in list(self.sessions):
            if s.closed or not (s.has(Feature.DUPLEX) and s.has(Feature.CLUSTERMAP_CHANGE_NOTIFICATION)):
                continue
            if s.pushed_rev >= rev or s.user is None:
                continue
            if s.bucket is not None:
                key, cfg = s.bucket.name.encode("utf-8"), s.bucket.config(self.node)
            elif self.state.is_admin(s.user):
                key, cfg = b"", self.state.global_config(self.node)
            else:
                continue
            if s.has(Feature.GET_CLUSTER_CONFIG_WITH_KNOWN_VERSION):
                extras = struct.pack(">qq", self.state.rev_epoch, rev)
            else:
                extras = struct.pack(">I", rev)
            s.pushed_rev = rev
            s.writer.write(server_request(SERVER_CLUSTERMAP_CHANGE_NOTIFICATION, extras=extras, key=key,
                                          value=cfg.encode("utf-8"), datatype=DATATYPE_JSON))

    # -- STAT groups --------------------------------------------------------------------------
    def stat_group(self, s, group):
        b = s.bucket
        words = group.split()
        name = words[0] if words else ""
        if name == "":
            return self._general_stats(s)
        if name == "vbucket" and b.type == COUCHBASE:
            return [("vb_%d" % vb, b.vb_state(self.node, vb)) for vb in range(b.nvb)
                    if b.vb_state(self.node, vb) != "dead"]
        if name == "uuid":
            return [("uuid", b.uuid)]
        if name == "memory":
            return self._memory_stats(s)
        if name == "tap":     # ep-engine before 5.0; no TAP streams here
            return [("ep_tap_count", 0), ("ep_tap_total_fetched", 0), ("ep_tap_bg_fetched", 0),
                    ("ep_tap_deletes", 0)]
        if name == "key" and len(words) >= 2 and b.type == COUCHBASE:
            key = words[1].encode("utf-8")
            vb = int(words[2]) if len(words) > 2 and words[2].isdigit() else b.vbucket_of(key)
            it = self.state.live(b.stores[self.node].get(vb, {}), key)
            if it is None or b.vb_state(self.node, vb) == "dead":
                return None
            return [("key_is_dirty", str(not it.persisted).lower()), ("key_exptime", int(it.expiry)),
                    ("key_flags", it.flags), ("key_cas", it.cas),
                    ("key_vb_state", b.vb_state(self.node, vb))]
        return None

    def _memory_stats(self, s):
        """ep-engine's "memory" group, from the sizes of the copies this node holds."""
        b = s.bucket
        if b.type == COUCHBASE:
            items = [(k, it) for vbs in b.stores[self.node].values() for k, it in vbs.items()
                     if not it.deleted]
        else:
            items = [(k, it) for k, it in b.stores[self.node].items() if not it.deleted]
        values = sum(len(it.value) for _, it in items)
        keys = sum(len(k) for k, _ in items)
        overhead = 56 * len(items)
        used = values + keys + overhead
        return [("mem_used", used), ("ep_kv_size", values + keys), ("ep_value_size", values),
                ("ep_overhead", overhead), ("ep_max_size", 100 * 1024 * 1024),
                ("ep_mem_low_wat", 75 * 1024 * 1024), ("ep_mem_high_wat", 85 * 1024 * 1024)]

    def _general_stats(self, s):
        b = s.bucket
        loop = asyncio.get_event_loop()
        now = self.state.now()
        if b.type == COUCHBASE:
            active = replica = items = 0
            for vb in range(b.nvb):
                st = b.vb_state(self.node, vb)
                if st == "active":
                    active += 1
                    items += sum(1 for it in b.stores[self.node].get(vb, {}).values()
                                 if not it.deleted and not (it.expiry and it.expiry <= now))
                elif st == "replica":
                    replica += 1
        else:
            active = replica = 0
            items = sum(1 for it in b.stores[self.node].values()
                        if not it.deleted and not (it.expiry and it.expiry <= now))
        st = self.stats
        get_ops = sum(st.get(o, 0) for o in (Op.GET, Op.GETQ, Op.GETK, Op.GETKQ))
        set_ops = sum(st.get(o, 0) for o in (Op.SET, Op.SETQ, Op.ADD, Op.ADDQ, Op.REPLACE, Op.REPLACEQ))
        return [
            ("pid", os.getpid()), ("uptime", int(loop.time() - self.started)), ("time", int(now)),
            ("version", VERSION.decode()), ("curr_connections", len(self.sessions)),
            ("total_connections", self.total_connections), ("curr_items", items),
            ("vb_active_num", active), ("vb_replica_num", replica),
            ("cmd_get", get_ops), ("cmd_set", set_ops),
            ("get_hits", st.get("get_hits", 0)), ("get_misses", st.get("get_misses", 0)),
            ("ep_bucket_type", "persistent" if b.type == COUCHBASE else "memcached"),
        ]
