"""Cluster and bucket state: nodes, vbucket maps, documents, configs.

Everything here runs on the mock's event-loop thread (the KV and REST servers
and the control API all call in from there), so there are no locks.  Time
comes from ``ClusterState.now()`` (wall clock plus an offset that tests may
advance), and replication / persistence are delayed tasks on the loop.
"""
import json
import os
import time
import zlib

COUCHBASE = "couchbase"
MEMCACHED = "memcached"

THIRTY_DAYS = 30 * 24 * 3600
LOCK_DEFAULT = 15
LOCK_MAX = 30
INF = float("inf")


def as_bytes(key):
    """Keys in the Python API may be str (UTF-8) or bytes."""
    if isinstance(key, bytes):
        return key
    if isinstance(key, bytearray):
        return bytes(key)
    return str(key).encode("utf-8")


def vbucket_of(key, nvbuckets):
    """PROTOCOL.md section 5.4: CRC-32 bits 16-30 modulo the number of vbuckets."""
    return ((zlib.crc32(as_bytes(key)) >> 16) & 0x7fff) % nvbuckets


class BucketSpec(object):
    """What bucket to create: ``BucketSpec("default", "couchbase", password="", replicas=1, vbuckets=1024)``.

    ``type`` is ``"couchbase"`` (vbuckets, replicas, CCCP) or ``"memcached"`` (ketama, no
    replicas; ``replicas`` and ``vbuckets`` are ignored).  ``password`` is the password of the
    user named after the bucket (classic auth); "" means that user logs in with an empty password.
    """

    def __init__(self, name, type=COUCHBASE, password="", replicas=1, vbuckets=1024):
        if type not in (COUCHBASE, MEMCACHED):
            raise ValueError("bucket type must be 'couchbase' or 'memcached', not %r" % (type,))
        if type == COUCHBASE and not 0 <= int(replicas) <= 3:
            raise ValueError("replicas must be 0..3")
        if type == COUCHBASE and not 1 <= int(vbuckets) <= 65535:
            raise ValueError("vbuckets must be 1..65535")
        self.name = name
        self.type = type
        self.password = password or ""
        self.replicas = int(replicas) if type == COUCHBASE else 0
        self.vbuckets = int(vbuckets) if type == COUCHBASE else 0
        self.flush_enabled = True    # REST doFlush allowed (buckets made over REST: as asked)
        self.ram_quota = 100         # MiB per node, as reported (nothing is limited)

    def __repr__(self):
        return "BucketSpec(%r, %r, replicas=%d, vbuckets=%d)" % (
            self.name, self.type, self.replicas, self.vbuckets)


class Item(object):
    """One copy of a document on one node (a tombstone when ``deleted``)."""
    __slots__ = ("value", "flags", "datatype", "cas", "expiry", "seqno", "deleted", "persisted",
                 "lock_until", "lock_cas", "revno")

    def __init__(self, value, flags=0, datatype=0, cas=0, expiry=0, seqno=0, deleted=False):
        self.value = value
        self.flags = flags
        self.datatype = datatype
        self.cas = cas
        self.expiry = expiry          # absolute mock time, 0 = never
        self.seqno = seqno
        self.deleted = deleted
        self.persisted = False
        self.lock_until = 0.0
        self.lock_cas = 0
        self.revno = 1              # how many times the document was written (GET_META's "seqno")

    def replica_copy(self):
        it = Item(self.value, self.flags, self.datatype, self.cas, self.expiry, self.seqno, self.deleted)
        it.revno = self.revno
        return it


class DelayQueue(object):
    """Tasks run after ``delay`` seconds on the loop; ``inf`` freezes them until the delay changes."""

    def __init__(self, loop, delay):
        self.loop = loop
        self.delay = delay
        self.frozen = []
        self._handles = {}
        self._next = 0

    def add(self, fn):
        if self.delay == INF:
            self.frozen.append(fn)
            return
        self._next += 1
        token = self._next

        def run():
            self._handles.pop(token, None)
            fn()
        if self.delay <= 0:
            self._handles[token] = (self.loop.call_soon(run), fn)
        else:
            self._handles[token] = (self.loop.call_later(self.delay, run), fn)

    def set_delay(self, delay):
        self.delay = delay
        if delay == INF:
            for handle, fn in self._handles.values():
                handle.cancel()
                self.frozen.append(fn)
            self._handles.clear()
        else:
            frozen, self.frozen = self.frozen, []
            for fn in frozen:
                self.add(fn)

    def clear(self):
        for handle, _fn in self._handles.values():
            handle.cancel()
        self._handles.clear()
        self.frozen = []


class Node(object):
    """One simulated server: a KV port and a membership state."""

    def __init__(self, index, kv_port):
        self.index = index
        self.kv_port = kv_port
        self.failed_over = False
        self.running = False
        self.query_port = 0      # the query service's port (mock/query.py), 0 = none
        self.kv_ssl_port = 0     # TLS ports (MockCluster(tls=...)), 0 = none
        self.query_ssl_port = 0
        self.capi_port = 0       # the view service's port (mock/views.py), 0 = none
        self.capi_ssl_port = 0


class BaseBucket(object):
    def __init__(self, cluster, spec):
        self.cluster = cluster
        self.spec = spec
        self.name = spec.name
        self.password = spec.password
        self.uuid = os.urandom(16).hex()
        self._config_cache = {}

    # -- config -------------------------------------------------------------------------------
    def servers(self):
        """Cluster node indexes that serve this bucket, in serverList order."""
        return [n.index for n in self.cluster.nodes if not n.failed_over]

    def config(self, this_node=None):
        """The terse bucket config as a JSON string with ``$HOST`` left in (PROTOCOL.md 5.2)."""
        key = (self.cluster.rev, this_node)
        got = self._config_cache.get(key)
        if got is None:
            if len(self._config_cache) > 32:
                self._config_cache.clear()
            got = json.dumps(self._config_dict(this_node), separators=(",", ":"))
            self._config_cache[key] = got
        return got

    def _base_config(self, this_node, bucket_type, locator, caps):
        c = self.cluster
        servers = self.servers()
        name = self.name
        return {
            "rev": c.rev, "revEpoch": c.rev_epoch, "name": name,
            "uri": "/pools/default/buckets/%s?bucket_uuid=%s" % (name, self.uuid),
            "streamingUri": "/pools/default/bucketsStreaming/%s?bucket_uuid=%s" % (name, self.uuid),
            "nodes": [self._node_entry(c, i, bucket_type) for i in servers],
            "nodesExt": c.nodes_ext(this_node, servers),
            "nodeLocator": locator, "uuid": self.uuid,
            "ddocs": {"uri": "/pools/default/buckets/%s/ddocs" % name},
            "bucketCapabilitiesVer": "", "bucketCapabilities": caps,
            "bucketType": bucket_type,
            "clusterCapabilitiesVer": [1, 0], "clusterCapabilities": c.cluster_caps,
        }

    def _node_entry(self, c, i, bucket_type):
        entry = {"hostname": "$HOST:%d" % c.rest_port, "ports": {"direct": c.nodes[i].kv_port}}
        if bucket_type == "membase" and c.nodes[i].capi_port:   # views (mock/views.py)
            entry["couchApiBase"] = "http://$HOST:%d/%s" % (c.nodes[i].capi_port, self.name)
        return entry

    def invalidate(self):
        self._config_cache.clear()


class MemcachedBucket(BaseBucket):
    """A memcached-type bucket: every node keeps its own keys; the client hashes (ketama)."""
    type = MEMCACHED

    def __init__(self, cluster, spec):
        BaseBucket.__init__(self, cluster, spec)
        self.stores = dict((n.index, {}) for n in cluster.nodes)
        self.seqnos = dict((n.index, 0) for n in cluster.nodes)

    def _config_dict(self, this_node):
        return self._base_config(this_node, "memcached", "ketama", ["cbhello", "nodesExt"])

    def serves(self, node):
        return not self.cluster.nodes[node].failed_over

    def store_of(self, node, vb):
        return self.stores[node]

    def next_seqno(self, node, vb):
        self.seqnos[node] += 1
        return self.seqnos[node]

    def after_mutation(self, node, vb, key, item):
        item.persisted = True   # nothing to persist or replicate

    def get_doc(self, key, node=None):
        """(value, flags, cas) of the live copy on ``node`` (default: the first server), or None."""
        if node is None:
            node = self.servers()[0] if self.servers() else 0
        it = self.cluster.live(self.stores[node], as_bytes(key))
        return None if it is None else (it.value, it.flags, it.cas)


class CouchbaseBucket(BaseBucket):
    """A couchbase-type bucket: vbuckets, an active and replica copies, seqnos, persistence."""
    type = COUCHBASE

    def __init__(self, cluster, spec):
        BaseBucket.__init__(self, cluster, spec)
        self.nvb = spec.vbuckets
        self.num_replicas = spec.replicas
        self.chains = self.build_map(self.servers())
        # per node: vb -> {key: Item}
        self.stores = dict((n.index, {}) for n in cluster.nodes)
        self.high = dict((n.index, {}) for n in cluster.nodes)        # node -> vb -> high seqno
        self.persisted = dict((n.index, {}) for n in cluster.nodes)   # node -> vb -> persisted seqno
        self.failover_log = [[(self._new_vbuuid(), 0)] for _ in range(self.nvb)]  # newest first

    @staticmethod
    def _new_vbuuid():
        return int.from_bytes(os.urandom(8), "big") >> 1 or 1

    def build_map(self, servers):
        """Deterministic chains: actives round-robin, replicas rotated over the other servers."""
        k = len(servers)
        chains = []
        for vb in range(self.nvb):
            if k == 0:
                chains.append([-1] * (self.num_replicas + 1))
                continue
            a = vb % k
            others = [servers[(a + 1 + t) % k] for t in range(k - 1)]
            rot = (vb // k) % (k - 1) if k > 1 else 0
            chain = [servers[a]]
            for j in range(self.num_replicas):
                chain.append(others[(j + rot) % (k - 1)] if j < k - 1 else -1)
            chains.append(chain)
        return chains

    def _config_dict(self, this_node):
        servers = self.servers()
        pos = dict((n, i) for i, n in enumerate(servers))
        c = self._base_config(this_node, "membase", "vbucket", ["cbhello", "touch", "cccp", "nodesExt"])
        c["vBucketServerMap"] = {
            "hashAlgorithm": "CRC", "numReplicas": self.num_replicas,
            "serverList": ["$HOST:%d" % self.cluster.nodes[i].kv_port for i in servers],
            "vBucketMap": [[pos.get(n, -1) for n in chain] for chain in self.chains],
        }
        return c

    # -- introspection ----------------------------------------------------------------------
    def vbucket_of(self, key):
        """The vbucket of ``key`` (str or bytes)."""
        return vbucket_of(key, self.nvb)

    def active_node(self, key):
        """Index of the node holding the active copy of ``key`` (-1 if none)."""
        return self.chains[self.vbucket_of(key)][0]

    def replica_nodes(self, key):
        """Indexes of the nodes holding replica copies of ``key``."""
        return [n for n in self.chains[self.vbucket_of(key)][1:] if n >= 0]

    def live_docs(self):
        """(key, Item) of every live document, from the active copies."""
        for vb, chain in enumerate(self.chains):
            node = chain[0]
            if node < 0:
                continue
            store = self.stores[node].get(vb)
            if not store:
                continue
            for key in list(store):
                it = self.cluster.live(store, key)
                if it is not None:
                    yield key, it

    def get_doc(self, key, node=None):
        """(value, flags, cas) of the live copy on ``node`` (None: the active copy), or None."""
        key = as_bytes(key)
        vb = self.vbucket_of(key)
        if node is None:
            node = self.chains[vb][0]
            if node < 0:
                return None
        it = self.cluster.live(self.stores[node].get(vb, {}), key)
        return None if it is None else (it.value, it.flags, it.cas)

    # -- roles ------------------------------------------------------------------------------
    def vb_state(self, node, vb):
        if vb >= self.nvb:
            return "dead"
        chain = self.chains[vb]
        if chain[0] == node:
            return "active"
        if node in chain[1:]:
            return "replica"
        return "dead"

    def store_of(self, node, vb):
        return self.stores[node].setdefault(vb, {})

    def vbuuid(self, vb):
        return self.failover_log[vb][0][0]

    def next_seqno(self, node, vb):
        s = self.high[node].get(vb, 0) + 1
        self.high[node][vb] = s
        return s

    # -- replication and persistence --------------------------------------------------------
    def after_mutation(self, node, vb, key, item):
        """Schedule persistence on the active and replication (then persistence) on replicas."""
        c = self.cluster
        seqno = item.seqno
        c.persist_queue.add(lambda: self._persist(node, vb, key, seqno))
        snapshot = item.replica_copy()
        for r in self.chains[vb][1:]:
            if r >= 0:
                c.replicate_queue.add(lambda r=r: self._replicate(r, vb, key, snapshot))

    def _replicate(self, node, vb, key, snap):
        if node not in self.chains[vb][1:]:
            return
        store = self.store_of(node, vb)
        cur = store.get(key)
        if cur is not None and cur.seqno >= snap.seqno:
            return
        it = snap.replica_copy()
        store[key] = it
        if self.high[node].get(vb, 0) < it.seqno:
            self.high[node][vb] = it.seqno
        self.cluster.persist_queue.add(lambda: self._persist(node, vb, key, it.seqno))

    def _persist(self, node, vb, key, seqno):
        it = self.stores[node].get(vb, {}).get(key)
        if it is not None and it.seqno == seqno:
            it.persisted = True
        if self.persisted[node].get(vb, 0) < seqno:
            self.persisted[node][vb] = seqno

    def set_persisted(self, key, flag):
        """Mark every copy of ``key`` persisted (or not)."""
        key = as_bytes(key)
        vb = self.vbucket_of(key)
        found = False
        for node in self.stores:
            it = self.stores[node].get(vb, {}).get(key)
            if it is None:
                continue
            found = True
            it.persisted = flag
            if flag and self.persisted[node].get(vb, 0) < it.seqno:
                self.persisted[node][vb] = it.seqno
        return found

    # -- topology ---------------------------------------------------------------------------
    def failover(self, node):
        """Drop ``node`` from every chain; promote the first surviving replica where it was active."""
        for vb, chain in enumerate(self.chains):
            if node not in chain:
                continue
            was_active = chain[0] == node
            rest = [n for n in chain if n != node and n >= 0]
            rest += [-1] * (len(chain) - len(rest))
            self.chains[vb] = rest
            if was_active and rest[0] >= 0:
                self.failover_log[vb].insert(0, (self._new_vbuuid(), self.high[rest[0]].get(vb, 0)))

    def move(self, vbs, to_node):
        """Make ``to_node`` the active of each vbucket in ``vbs`` (takeover: it gets the active's data)."""
        for vb in vbs:
            chain = list(self.chains[vb])
            old = chain[0]
            if old == to_node:
                continue
            if to_node in chain:
                i = chain.index(to_node)
                chain[0], chain[i] = to_node, old
            else:
                chain[0] = to_node
            self._take_over(vb, old, chain)

    def rebalance(self):
        """Rebuild the map for the current servers, moving data where chains changed."""
        new = self.build_map(self.servers())
        for vb in range(self.nvb):
            if new[vb] != self.chains[vb]:
                self._take_over(vb, self.chains[vb][0], new[vb])

    def _take_over(self, vb, old_active, chain):
        old_chain = self.chains[vb]
        if old_active >= 0:
            src = self.stores[old_active].get(vb, {})
            for n in chain:
                if n >= 0 and n != old_active and (n == chain[0] or n not in old_chain):
                    self.stores[n][vb] = dict((k, it.replica_copy()) for k, it in src.items())
                    self.high[n][vb] = self.high[old_active].get(vb, 0)
                    self.persisted[n][vb] = self.persisted[old_active].get(vb, 0)
                    for k, it in self.stores[n][vb].items():
                        it.persisted = src[k].persisted
            if old_active not in chain:
                self.stores[old_active].pop(vb, None)
        for n in old_chain:
            if n >= 0 and n not in chain:
                self.stores[n].pop(vb, None)
        self.chains[vb] = chain
        if chain[0] != old_active and chain[0] >= 0:
            self.failover_log[vb].insert(0, (self._new_vbuuid(), self.high[chain[0]].get(vb, 0)))


class ClusterState(object):
    """Nodes, buckets, users, the config revision, the clock and the delayed-task queues."""

    def __init__(self, loop, kv_ports, rest_port, specs, creds, access, persist_delay, replicate_delay):
        self.loop = loop
        self.nodes = [Node(i, p) for i, p in enumerate(kv_ports)]
        self.rest_port = rest_port
        self.rest_ssl_port = 0   # https REST (MockCluster(tls=...)), 0 = none
        self.rev = 1
        self.rev_epoch = 1
        self.cluster_uuid = os.urandom(16).hex()
        # the configs' clusterCapabilities (MockCluster(enhanced_prepared=...) sets "n1ql")
        self.cluster_caps = {}
        self.time_offset = 0.0
        self._last_cas = 0
        self.creds = creds
        self.access = access                 # user -> None (every bucket) or set of bucket names
        self.persist_queue = DelayQueue(loop, persist_delay)
        self.replicate_queue = DelayQueue(loop, replicate_delay)
        self.listeners = []                  # callables run after every config change
        self.buckets = {}
        for spec in specs:
            cls = CouchbaseBucket if spec.type == COUCHBASE else MemcachedBucket
            self.buckets[spec.name] = cls(self, spec)

    # -- time, cas ----------------------------------------------------------------------------
    def now(self):
        return time.time() + self.time_offset

    def next_cas(self):
        cas = max(self._last_cas + 1, time.time_ns() + int(self.time_offset * 1e9))
        self._last_cas = cas
        return cas

    def expiry_to_abs(self, exp):
        """Relative up to 30 days, absolute Unix time above (PROTOCOL.md 2.2); 0 = never."""
        if exp == 0:
            return 0
        if exp <= THIRTY_DAYS:
            return self.now() + exp
        return float(exp)

    def live(self, store, key):
        """The live Item for ``key`` in ``store`` (None if missing, deleted or expired)."""
        it = store.get(key)
        if it is None or it.deleted:
            return None
        if it.expiry and it.expiry <= self.now():
            it.deleted = True
            it.value = b""
            it.lock_until = 0
            return None
        return it

    # -- access -------------------------------------------------------------------------------
    def may_access(self, user, bucket_name):
        if user is None or bucket_name not in self.buckets:
            return False
        allowed = self.access.get(user, ())
        return allowed is None or bucket_name in allowed or "*" in allowed

    def is_admin(self, user):
        return user is not None and self.access.get(user, ()) is None

    # -- configs ------------------------------------------------------------------------------
    def nodes_ext(self, this_node, servers):
        out = []
        for i in servers:
            entry = {"services": {"mgmt": self.rest_port, "kv": self.nodes[i].kv_port}}
            if self.nodes[i].query_port:
                entry["services"]["n1ql"] = self.nodes[i].query_port
            # TLS ports, as Couchbase Server lists them (PROTOCOL.md 5.2)
            if self.nodes[i].kv_ssl_port:
                entry["services"]["kvSSL"] = self.nodes[i].kv_ssl_port
            if self.rest_ssl_port:
                entry["services"]["mgmtSSL"] = self.rest_ssl_port
            if self.nodes[i].query_ssl_port:
                entry["services"]["n1qlSSL"] = self.nodes[i].query_ssl_port
            if self.nodes[i].capi_port:
                entry["services"]["capi"] = self.nodes[i].capi_port
            if self.nodes[i].capi_ssl_port:
                entry["services"]["capiSSL"] = self.nodes[i].capi_ssl_port
            if i == this_node:
                entry["thisNode"] = True
            else:
                entry["hostname"] = "$HOST"
            out.append(entry)
        return out

    def global_config(self, this_node=None):
        servers = [n.index for n in self.nodes if not n.failed_over]
        return json.dumps({"rev": self.rev, "revEpoch": self.rev_epoch,
                           "nodesExt": self.nodes_ext(this_node, servers),
                           "clusterCapabilitiesVer": [1, 0],
                           "clusterCapabilities": self.cluster_caps},
                          separators=(",", ":"))

    def bump(self):
        """A config change: new rev, then tell the listeners (KV push, REST streaming)."""
        self.rev += 1
        for b in self.buckets.values():
            b.invalidate()
        for fn in list(self.listeners):
            fn()

    # -- topology -----------------------------------------------------------------------------
    def failover(self, node):
        n = self.nodes[node]
        if n.failed_over:
            return False
        if all(m.failed_over for m in self.nodes if m is not n):
            raise ValueError("cannot fail over the last node")
        n.failed_over = True
        for b in self.buckets.values():
            if b.type == COUCHBASE:
                b.failover(node)
        self.bump()
        return True

    def add_back(self, node):
        n = self.nodes[node]
        if not n.failed_over:
            return False
        n.failed_over = False
        for b in self.buckets.values():
            if b.type == COUCHBASE:
                b.rebalance()
        self.bump()
        return True

    def snapshot(self):
        """A JSON-able summary for ``GET /mock/state``."""
        out = {"rev": self.rev, "revEpoch": self.rev_epoch, "rest_port": self.rest_port,
               "time_offset": self.time_offset,
               "rest_ssl_port": self.rest_ssl_port,
               "nodes": [{"index": n.index, "kv_port": n.kv_port, "kv_ssl_port": n.kv_ssl_port,
                          "running": n.running,
                          "failed_over": n.failed_over} for n in self.nodes],
               "buckets": {}}
        for name, b in self.buckets.items():
            d = {"type": b.type}
            if b.type == COUCHBASE:
                d.update(vbuckets=b.nvb, replicas=b.num_replicas)
            out["buckets"][name] = d
        return out

