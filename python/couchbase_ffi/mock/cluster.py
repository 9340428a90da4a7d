"""MockCluster: the user-facing object that owns the loop thread, the servers and the control API.

The cluster runs its own asyncio loop in a daemon thread.  Every control and
introspection method may be called from any thread: it runs on the loop and
waits for the result (the same code serves ``POST /mock/<action>``).
"""
import asyncio
import json
import base64
import ssl
import threading
from urllib.parse import urlencode

from couchbase_ffi.mock.faults import Fault, Faults
from couchbase_ffi.mock.kv import KVServer
from couchbase_ffi.mock.manage import Management
from couchbase_ffi.mock.protocol import Status
from couchbase_ffi.mock.rest import RestServer
from couchbase_ffi.mock.query import QueryServer, QueryService
from couchbase_ffi.mock.views import ViewServer, ViewService
from couchbase_ffi.mock.sasl import Credentials
from couchbase_ffi.mock.state import (
    COUCHBASE, INF, LOCK_DEFAULT, LOCK_MAX, BucketSpec, ClusterState, as_bytes)

_CALL_TIMEOUT = 30.0


def _server_context(tls):
    """An ssl.SSLContext for the mock's TLS ports from ``tls`` (a context, or (cert, key))."""
    if tls is None or isinstance(tls, ssl.SSLContext):
        return tls
    certfile, keyfile = tls
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile, keyfile)
    return ctx


def _status_of(status):
    if isinstance(status, str):
        try:
            return getattr(Status, status.upper())
        except AttributeError:
            return int(status, 0)
    return int(status)


class BucketHandle(object):
    """Introspection of one bucket (``cluster.bucket(name)``); every call is thread-safe."""

    def __init__(self, cluster, name):
        self._cluster = cluster
        self.name = name

    def _b(self):
        return self._cluster._state.buckets[self.name]

    @property
    def type(self):
        return self._b().type

    @property
    def rev(self):
        """The config revision clients currently get for this bucket."""
        return self._cluster._call_fn(lambda: self._cluster._state.rev)

    def vbucket_of(self, key):
        """vbucket of ``key`` (str or bytes); 0 for memcached buckets."""
        b = self._b()
        return b.vbucket_of(key) if b.type == COUCHBASE else 0

    def active_node(self, key):
        """Node index holding the active copy of ``key`` (-1 if the vbucket has none)."""
        b = self._b()
        if b.type != COUCHBASE:
            raise TypeError("memcached buckets have no vbucket map (the client hashes with ketama)")
        return self._cluster._call_fn(lambda: b.active_node(key))

    def replica_nodes(self, key):
        """Node indexes holding replica copies of ``key``, in chain order."""
        b = self._b()
        if b.type != COUCHBASE:
            raise TypeError("memcached buckets have no replicas")
        return self._cluster._call_fn(lambda: b.replica_nodes(key))

    def vbucket_map(self):
        """A copy of the chains: ``[[active, replica1, ...], ...]`` as node indexes (-1 = none)."""
        b = self._b()
        return self._cluster._call_fn(lambda: [list(c) for c in b.chains])

    def seqnos(self, vbucket):
        """Mutation-token state of ``vbucket``: ``{"vbuuid": current uuid, "high": {node:
        seqno}, "persisted": {node: seqno}}`` for the nodes of its chain (what a mutation
        token and OBSERVE_SEQNO are checked against)."""
        b = self._b()
        if b.type != COUCHBASE:
            raise TypeError("memcached buckets have no vbuckets")

        def snap():
            nodes = [n for n in b.chains[vbucket] if n >= 0]
            return {"vbuuid": b.vbuuid(vbucket),
                    "high": dict((n, b.high[n].get(vbucket, 0)) for n in nodes),
                    "persisted": dict((n, b.persisted[n].get(vbucket, 0)) for n in nodes)}
        return self._cluster._call_fn(snap)

    def get_doc(self, key, node=None):
        """``(value bytes, flags, cas)`` of the copy on ``node`` (None: the active copy), or None.

        For memcached buckets ``node`` None means the first node."""
        b = self._b()
        return self._cluster._call_fn(lambda: b.get_doc(key, node))

    def config(self, node=None):
        """The terse config JSON clients get over KV from ``node`` (``$HOST`` left in)."""
        b = self._b()
        return self._cluster._call_fn(lambda: b.config(node))


class MockCluster(object):
    """A simulated Couchbase cluster on 127.0.0.1.

    ``MockCluster(nodes=4, buckets=[BucketSpec("default")], users={"Administrator": "password"})``.

    ``users`` maps a user name to a password (an admin: every bucket, the global config, the
    mock's control endpoints) or to ``(password, [bucket, ...])`` (access to those buckets only).
    Every bucket also gets a user named after it with the bucket's password.

    Other keywords: ``kv_ports`` (list, one per node) or ``kv_base_port`` (node i listens on
    base+i), ``rest_port`` (0 = free port), ``persist_delay`` / ``replicate_delay`` (seconds;
    ``float('inf')`` = never), ``lock_default`` / ``lock_max`` (GET_LOCKED timeouts),
    ``host`` (listen address, default 127.0.0.1), ``refuse_features`` (HELLO feature codes to
    refuse although implemented, e.g. ``[Feature.CLUSTERMAP_CHANGE_NOTIFICATION]`` so that clients
    learn of changes only through NOT_MY_VBUCKET and polling), ``tls`` (``(certfile, keyfile)``
    or an ``ssl.SSLContext``: every node also gets a TLS KV port, REST and the query service
    also serve https, advertised in nodesExt as kvSSL / mgmtSSL / n1qlSSL; ``tls_connstr()``),
    ``enhanced_prepared`` (default True: the configs' clusterCapabilities say
    ``{"n1ql": ["enhancedPreparedStatements"]}`` and the query service takes ``auto_execute``;
    False: a query service before 6.5, which refuses ``auto_execute`` with error 1065).
    """

    def __init__(self, nodes=4, buckets=None, users=None, kv_ports=None, kv_base_port=None, rest_port=0,
                 persist_delay=0.005, replicate_delay=0.002, lock_default=LOCK_DEFAULT,
                 lock_max=LOCK_MAX, host="127.0.0.1", refuse_features=(), query_nodes=None,
                 tls=None, enhanced_prepared=True):
        if nodes < 1:
            raise ValueError("nodes must be >= 1")
        if buckets is None:
            buckets = [BucketSpec("default")]
        if users is None:
            users = {"Administrator": "password"}
        names = [b.name for b in buckets]
        if len(set(names)) != len(names):
            raise ValueError("bucket names must be unique")
        if kv_ports is None:
            kv_ports = [kv_base_port + i if kv_base_port else 0 for i in range(nodes)]
        if len(kv_ports) != nodes:
            raise ValueError("kv_ports needs one port per node")
        self.host = host
        self._nodes = nodes
        self._specs = list(buckets)
        self._ports_wanted = list(kv_ports)
        self._rest_wanted = rest_port
        # the nodes with a query service (mock/query.py): None = every node
        self._query_nodes = list(range(nodes)) if query_nodes is None else \
            sorted(set(int(n) for n in query_nodes))
        if any(not 0 <= n < nodes for n in self._query_nodes):
            raise ValueError("query_nodes must be node indexes below %d" % nodes)
        self._query = None
        self._qservers = []
        self._enhanced_prepared = bool(enhanced_prepared)
        self._views = None       # the view service (mock/views.py): every node
        self._vservers = []
        self._delays = (persist_delay, replicate_delay)
        self._locks = (lock_default, lock_max)
        self._refuse = frozenset(int(f) for f in refuse_features)
        self._creds = Credentials()
        self._access = {}
        for spec in self._specs:
            self._creds.add(spec.name, spec.password)
            self._access[spec.name] = set([spec.name])
        for user, pw in users.items():
            if isinstance(pw, (tuple, list)):
                self._creds.add(user, pw[0])
                self._access[user] = set(pw[1])
            else:
                self._creds.add(user, pw)
                self._access[user] = None
        self._loop = None
        self._thread = None
        self._state = None
        self._faults = Faults()
        self._kv = []
        self._rest = None
        self._ssl = _server_context(tls)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self):
        """Start the loop thread and every server; returns self once every port listens."""
        if self._thread is not None:
            raise RuntimeError("already started")
        ready = threading.Event()
        failure = []
        self._thread = threading.Thread(target=self._run, args=(ready, failure),
                                        name="couchbase_ffi.mock", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            self._thread.join(5)
            self._thread = None
            raise failure[0]
        if not ready.is_set():
            raise RuntimeError("the mock cluster did not start in 30 s")
        return self

    def _run(self, ready, failure):
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._startup())
        except BaseException as e:   # noqa: BLE001  (reported to start())
            failure.append(e)
            loop.run_until_complete(self._shutdown())
            loop.close()
            ready.set()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _startup(self):
        loop = asyncio.get_event_loop()
        self._state = ClusterState(loop, self._ports_wanted, 0, self._specs, self._creds, self._access,
                                   self._delays[0], self._delays[1])
        if self._enhanced_prepared:
            self._state.cluster_caps = {"n1ql": ["enhancedPreparedStatements"]}
        self._kv = [KVServer(self._state, self._faults, i, self.host) for i in range(self._nodes)]
        for kv in self._kv:
            kv.lock_default, kv.lock_max = self._locks
            kv.features = kv.features - self._refuse
            kv.ssl = self._ssl
            await kv.start()
            node = self._state.nodes[kv.node]
            node.kv_port = kv.server.sockets[0].getsockname()[1]
        self._query = QueryService(self._state)
        for i in self._query_nodes:
            qs = QueryServer(self._state, self._query, i, self.host)
            qs.ssl = self._ssl
            await qs.start()
            self._qservers.append(qs)
        self._views = ViewService(self._state)
        for i in range(self._nodes):
            vs = ViewServer(self._state, self._views, i, self.host)
            vs.ssl = self._ssl
            await vs.start()
            self._vservers.append(vs)
        self._rest = RestServer(self._state, self.control, self.host)
        self._rest.ssl = self._ssl
        self._rest.views = self._views
        vbs = [s.vbuckets for s in self._specs if s.type == COUCHBASE]
        self._rest.manage = self._manage = Management(self._state, lambda: self._kv, self._views,
                                                      vbs[0] if vbs else 1024)
        await self._rest.start(self._rest_wanted)
        self._state.listeners.append(self._push_all)

    def _push_all(self):
        for kv in self._kv:
            kv.push_configs()

    async def _shutdown(self):
        for kv in self._kv:
            await kv.stop()
        if self._rest is not None:
            await self._rest.stop()
        for qs in self._qservers:
            await qs.stop()
        for vs in self._vservers:
            await vs.stop()
        if self._state is not None:
            self._state.persist_queue.clear()
            self._state.replicate_queue.clear()

    def stop(self):
        """Close every port and end the loop thread.  Calling it twice is harmless."""
        if self._thread is None:
            return
        if self._loop is not None and self._loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(_CALL_TIMEOUT)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_CALL_TIMEOUT)
        self._thread = None

    def __enter__(self):
        return self.start() if self._thread is None else self

    def __exit__(self, *exc):
        self.stop()

    # -- addresses ----------------------------------------------------------------------------
    def _started(self):
        if self._state is None:
            raise RuntimeError("the mock cluster is not started: call start() first")
        return self._state

    @property
    def kv_ports(self):
        """The KV port of each node, by node index."""
        return [n.kv_port for n in self._started().nodes]

    @property
    def rest_port(self):
        """The cluster's REST (mgmt) port."""
        return self._started().rest_port

    @property
    def nodes(self):
        return self._nodes

    def connstr(self, bucket="default", **options):
        """``couchbase://127.0.0.1:p0,...,127.0.0.1:pN/bucket?k=v`` (every node's KV port)."""
        hosts = ",".join("%s:%d" % (self.host, p) for p in self.kv_ports)
        s = "couchbase://%s/%s" % (hosts, bucket)
        if options:
            s += "?" + urlencode(sorted(options.items()))
        return s

    @property
    def kv_ssl_ports(self):
        """The TLS KV port of each node (``tls=`` given), by node index; [] without TLS."""
        return [n.kv_ssl_port for n in self._started().nodes] if self._ssl else []

    @property
    def rest_ssl_port(self):
        """The https REST (mgmtSSL) port; 0 without TLS."""
        return self._started().rest_ssl_port

    @property
    def query_ssl_ports(self):
        """{node index: https query port} (``tls=`` given)."""
        st = self._started()
        return dict((n.index, n.query_ssl_port) for n in st.nodes if n.query_ssl_port)

    def tls_connstr(self, bucket="default", **options):
        """``couchbases://127.0.0.1:s0,...,127.0.0.1:sN/bucket?k=v`` (every node's TLS KV port;
        add ``truststorepath=`` for the CA that signed the mock's certificate)."""
        if not self._ssl:
            raise RuntimeError("the mock cluster has no TLS ports: MockCluster(tls=(cert, key))")
        hosts = ",".join("%s:%d" % (self.host, p) for p in self.kv_ssl_ports)
        s = "couchbases://%s/%s" % (hosts, bucket)
        if options:
            s += "?" + urlencode(sorted(options.items()))
        return s

    def http_connstr(self, bucket="default"):
        """``http://127.0.0.1:<rest port>/bucket`` (bootstrap over REST)."""
        return "http://%s:%d/%s" % (self.host, self.rest_port, bucket)

    def bucket(self, name="default"):
        """A BucketHandle for introspection; KeyError if there is no such bucket."""
        if name not in self._started().buckets:
            raise KeyError(name)
        return BucketHandle(self, name)

    @property
    def rev(self):
        """The current config revision."""
        return self._call_fn(lambda: self._state.rev)

    # -- calling into the loop ----------------------------------------------------------------
    def _call_fn(self, fn):
        if self._loop is None or self._thread is None:
            raise RuntimeError("the mock cluster is not running")
        if threading.current_thread() is self._thread:
            return fn()

        async def run():
            return fn()
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(_CALL_TIMEOUT)

    def _call(self, action, **params):
        if self._loop is None or self._thread is None:
            raise RuntimeError("the mock cluster is not running")
        if threading.current_thread() is self._thread:
            raise RuntimeError("call the control API from another thread, or use POST /mock/")
        return asyncio.run_coroutine_threadsafe(self.control(action, params), self._loop).result(
            _CALL_TIMEOUT)

    async def control(self, action, params):
        """Run one control action on the loop (used by the Python API and ``POST /mock/<action>``)."""
        fn = getattr(self, "_a_" + action, None)
        if fn is None:
            raise KeyError(action)
        return await fn(**params)

    def _node(self, node, allow_none=False):
        if node is None and allow_none:
            return None
        node = int(node)
        if not 0 <= node < self._nodes:
            raise ValueError("no node %d (the cluster has %d)" % (node, self._nodes))
        return node

    def _bucket_obj(self, name):
        return self._state.buckets[name]

    # -- the actions (run on the loop) ---------------------------------------------------------
    async def _a_state(self):
        snap = self._state.snapshot()
        snap["faults"] = [f.describe() for f in self._faults.items]
        snap["delays"] = {"persist": _json_delay(self._state.persist_queue.delay),
                          "replicate": _json_delay(self._state.replicate_queue.delay)}
        return snap

    async def _a_doc(self, bucket="default", key="", node=None):
        got = self._bucket_obj(bucket).get_doc(key, None if node in (None, "") else int(node))
        if got is None:
            return {"found": False}
        value, flags, cas = got
        return {"found": True, "value_base64": base64.b64encode(value).decode("ascii"),
                "flags": flags, "cas": cas}

    async def _a_node_stats(self, node):
        return self._kv[self._node(node)].named_stats()

    async def _a_failover(self, node):
        changed = self._state.failover(self._node(node))
        return {"rev": self._state.rev, "changed": changed}

    async def _a_add_back(self, node):
        changed = self._state.add_back(self._node(node))
        return {"rev": self._state.rev, "changed": changed}

    async def _a_kill_node(self, node):
        await self._kv[self._node(node)].stop()
        return {"node": node, "running": False}

    async def _a_restart_node(self, node):
        kv = self._kv[self._node(node)]
        if kv.server is None:
            await kv.start()
        return {"node": node, "running": True}

    async def _a_move_vbuckets(self, bucket, vbuckets, to_node=None, node=None):
        to = self._node(to_node if to_node is not None else node)
        b = self._bucket_obj(bucket)
        if b.type != COUCHBASE:
            raise ValueError("memcached buckets have no vbuckets")
        if self._state.nodes[to].failed_over:
            raise ValueError("node %d is failed over" % to)
        vbs = [int(v) for v in vbuckets]
        for v in vbs:
            if not 0 <= v < b.nvb:
                raise ValueError("no vbucket %d" % v)
        b.move(vbs, to)
        self._state.bump()
        return {"rev": self._state.rev}

    def _add_fault(self, kind, node, count, opcodes, **kw):
        f = Fault(kind, self._node(node, allow_none=True), opcodes, count, **kw)
        self._faults.add(f)
        return f.describe()

    async def _a_delay(self, node, seconds, opcodes=None, count=None):
        return self._add_fault("delay", node, count, opcodes, seconds=float(seconds))

    async def _a_drop(self, node, count=None, opcodes=None):
        return self._add_fault("drop", node, count, opcodes)

    async def _a_garbage(self, node, count=1, opcodes=None):
        return self._add_fault("garbage", node, count, opcodes)

    async def _a_truncate(self, node, count=1, opcodes=None):
        return self._add_fault("truncate", node, count, opcodes)

    async def _a_inject_status(self, status, count=1, node=None, opcodes=None):
        return self._add_fault("status", node, count, opcodes, status=_status_of(status))

    async def _a_clear_faults(self):
        self._faults.clear()
        return {}

    async def _a_persist(self, bucket, key):
        return {"found": self._persisted(bucket, key, True)}

    async def _a_unpersist(self, bucket, key):
        return {"found": self._persisted(bucket, key, False)}

    def _persisted(self, bucket, key, flag):
        b = self._bucket_obj(bucket)
        if b.type != COUCHBASE:
            raise ValueError("memcached buckets do not persist")
        return b.set_persisted(as_bytes(key), flag)

    async def _a_set_delays(self, persist=None, replicate=None):
        if persist is not None:
            self._state.persist_queue.set_delay(_delay(persist))
        if replicate is not None:
            self._state.replicate_queue.set_delay(_delay(replicate))
        return await self._a_state()

    async def _a_advance_time(self, seconds):
        self._state.time_offset += float(seconds)
        return {"offset": self._state.time_offset}

    async def _a_query_register(self, statement, **kw):
        return self._query.register(statement=statement, **kw)

    async def _a_query_requests(self, clear=False):
        out = [dict(r) for r in self._query.requests]   # as they are now
        if clear:
            self._query.requests = []
        return out

    async def _a_query_indexes(self, bucket=None):
        return self._query.indexes.describe(bucket)

    async def _a_query_index_build_delay(self, seconds):
        seconds = float(seconds)
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self._query.indexes.build_delay = seconds
        return {}

    async def _a_query_clear(self):
        self._query.clear()
        return {}

    async def _a_query_prepared(self):
        return dict((p.local, {"statement": p.statement, "text": p.text,
                               "encoded_plan": p.encoded_plan})
                    for p in self._query.prepared.values())

    async def _a_query_prepared_clear(self, invalidate_plans=False):
        return self._query.prepared_clear(bool(invalidate_plans))

    async def _a_view_register(self, ddoc, view, **kw):
        return self._views.register(ddoc=ddoc, view=view, **kw)

    async def _a_view_requests(self, clear=False):
        out = [dict(r) for r in self._views.requests]
        if clear:
            self._views.requests = []
        return out

    async def _a_view_clear(self):
        self._views.clear()
        return {}

    async def _a_design_docs(self, bucket):
        return json.loads(json.dumps(self._views.ddocs.get(bucket, {})))

    async def _a_bucket_create(self, name, type="couchbase", password="", replicas=1,
                               flush_enabled=True, vbuckets=None):
        return self._manage.create_bucket(name, type, password, replicas, 100, flush_enabled,
                                          vbuckets)

    async def _a_bucket_delete(self, name):
        return self._manage.delete_bucket(name)

    async def _a_flush(self, bucket):
        for store in self._bucket_obj(bucket).stores.values():
            store.clear()
        return {}

    # -- management (docs/mock.md, "Management") ---------------------------------------------------
    def create_bucket(self, name, type="couchbase", password="", replicas=1, flush_enabled=True,
                      vbuckets=None):
        """Add a bucket while the cluster runs (as ``POST /pools/default/buckets`` does);
        ValueError-like refusals come back as mock.manage.Refused."""
        return self._call("bucket_create", name=name, type=type, password=password,
                          replicas=replicas, flush_enabled=flush_enabled, vbuckets=vbuckets)

    def delete_bucket(self, name):
        """Remove a bucket, its data and its connections (``DELETE /pools/default/buckets/b``)."""
        return self._call("bucket_delete", name=name)

    # -- the query service (docs/mock.md, "Query service") ----------------------------------------
    @property
    def query_ports(self):
        """{node index: query port} of the nodes that run the query service."""
        st = self._started()
        return dict((n.index, n.query_port) for n in st.nodes if n.query_port)

    def query_register(self, statement, rows=None, errors=None, http_status=None, status=None,
                       delay=0.0, fault=None, count=None, node=None, metrics=None, warnings=None,
                       row_delay=0.0, repeat=None, cut_after=None, cut=None, chunked=False):
        """Answer ``statement`` with ``rows`` (a list of JSON values) or ``errors`` (a list of
        ``{"code", "msg"}``); ``http_status`` and ``status`` default from them; ``delay`` seconds
        first (``float('inf')``: never answer); ``fault`` "close", "garbage" or "truncate"
        instead of an answer; ``count`` times (None: until query_clear); on ``node`` only.
        The newest registration that matches wins.

        Streamed (chunked) answers, as the query service sends them: ``row_delay`` seconds
        between rows, the rows sent ``repeat`` times over, ``cut`` ("stall", "close",
        "garbage") after ``cut_after`` rows, or ``chunked=True`` alone (mock/rowstream.py).
        The request's log entry then has ``rows_sent`` and ``complete``."""
        return self._call("query_register", statement=statement, rows=rows, errors=errors,
                          http_status=http_status, status=status, delay=delay, fault=fault,
                          count=count, node=node, metrics=metrics, warnings=warnings,
                          row_delay=row_delay, repeat=repeat, cut_after=cut_after, cut=cut,
                          chunked=chunked)

    def query_requests(self, clear=False):
        """The requests the query service received, oldest first (dicts: node, user,
        authorized, statement, args, named, scan_consistency, scan_vectors, timeout,
        client_context_id, readonly, creds, content_type, body)."""
        return self._call("query_requests", clear=clear)

    def query_clear(self):
        """Forget every registration and every recorded request (index definitions stay)."""
        return self._call("query_clear")

    def query_indexes(self, bucket=None):
        """The index definitions the query service holds (``system:indexes`` rows), of
        ``bucket`` or of every bucket."""
        return self._call("query_indexes", bucket=bucket)

    def query_index_build_delay(self, seconds):
        """How long a BUILD INDEX takes before the index is "online" (default 0)."""
        return self._call("query_index_build_delay", seconds=seconds)

    def query_prepared(self):
        """{local name: {"statement", "text", "encoded_plan"}} of the prepared statements
        the query service holds (shared by its nodes, as 6.5+ distributes them)."""
        return self._call("query_prepared")

    def query_prepared_clear(self, invalidate_plans=False):
        """Forget every prepared statement, as a query service restart does: executing a
        name alone then gets 4040; with its ``encoded_plan`` the plan is decoded and kept
        again (as the service does).  ``invalidate_plans``: the encoded plans handed out so
        far stop decoding too (4070, as after an upgrade), so every client must re-prepare.
        Returns ``{"dropped": n, "plan_epoch": e}``."""
        return self._call("query_prepared_clear", invalidate_plans=invalidate_plans)

    # -- the view service (docs/mock.md, "View service") --------------------------------------
    @property
    def capi_ports(self):
        """{node index: view (capi) port}."""
        st = self._started()
        return dict((n.index, n.capi_port) for n in st.nodes if n.capi_port)

    def view_register(self, ddoc, view, rows=None, total_rows=None, errors=None,
                      http_status=None, error=None, reason=None, delay=0.0, count=None,
                      bucket=None, fault=None, row_delay=0.0, repeat=None, cut_after=None,
                      cut=None, chunked=False):
        """Answer ``_design/<ddoc>/_view/<view>`` with ``rows`` (``{"id", "key", "value"}``
        objects, sent as given: no parameter is applied to them), ``total_rows`` (default
        len(rows)) and ``errors`` (a list of ``{"from", "reason"}``); or fail with
        ``http_status`` and ``{"error": error, "reason": reason}``; ``delay`` seconds first
        (``float('inf')``: never answer); ``fault`` "close" / "truncate"; ``count`` times
        (None: until view_clear); on ``bucket`` only (None: any).  Newest wins.  Streamed
        answers: ``row_delay``, ``repeat``, ``cut_after`` / ``cut``, ``chunked``, as for
        query_register."""
        return self._call("view_register", ddoc=ddoc, view=view, rows=rows,
                          total_rows=total_rows, errors=errors, http_status=http_status,
                          error=error, reason=reason, delay=delay, count=count, bucket=bucket,
                          fault=fault, row_delay=row_delay, repeat=repeat, cut_after=cut_after,
                          cut=cut, chunked=chunked)

    def view_requests(self, clear=False):
        """The requests the view service received, oldest first (dicts: node, method, path,
        query, params (the query string, decoded), body, user, authorized, bucket, ddoc,
        view, content_type)."""
        return self._call("view_requests", clear=clear)

    def view_clear(self):
        """Forget every view registration and recorded request (design documents stay)."""
        return self._call("view_clear")

    def design_docs(self, bucket="default"):
        """{name: design document} stored for ``bucket`` (dev_ names included)."""
        return self._call("design_docs", bucket=bucket)

    # -- the Python control API ---------------------------------------------------------------
    def failover(self, node):
        """Fail ``node`` over: it leaves every map, its replicas are promoted; new rev.

        The node keeps listening and answers NOT_MY_VBUCKET (with the new config) to every key.
        Returns the new rev."""
        return self._call("failover", node=node)["rev"]

    def add_back(self, node):
        """Bring a failed-over node back and rebalance (deterministic map, data moved); new rev."""
        return self._call("add_back", node=node)["rev"]

    def kill_node(self, node):
        """Stop listening on the node's KV port and drop its connections (the map is unchanged)."""
        self._call("kill_node", node=node)

    def restart_node(self, node):
        """Listen again on the same port, with the data the node had."""
        self._call("restart_node", node=node)

    def move_vbuckets(self, bucket, vbuckets, to_node):
        """Make ``to_node`` the active of these vbuckets; the old owner answers NOT_MY_VBUCKET. New rev."""
        return self._call("move_vbuckets", bucket=bucket, vbuckets=list(vbuckets), to_node=to_node)["rev"]

    def delay(self, node, seconds, opcodes=None, count=None):
        """Hold matching requests on ``node`` (None: every node) ``seconds`` before executing them.

        Later requests on the same connection wait behind them, as on a slow server."""
        return self._call("delay", node=node, seconds=seconds, opcodes=opcodes, count=count)

    def drop(self, node, count=None, opcodes=None):
        """Execute matching requests but send no reply (None count: until cleared)."""
        return self._call("drop", node=node, count=count, opcodes=opcodes)

    def garbage(self, node, count=1, opcodes=None):
        """Execute, then answer 24 bytes of garbage (bad magic) instead of the reply."""
        return self._call("garbage", node=node, count=count, opcodes=opcodes)

    def truncate(self, node, count=1, opcodes=None):
        """Execute, send only the start of the reply, then close the connection."""
        return self._call("truncate", node=node, count=count, opcodes=opcodes)

    def inject_status(self, status, count=1, node=None, opcodes=None):
        """Answer ``status`` (a number or a name like "ETMPFAIL") without executing.

        NOT_MY_VBUCKET carries the current config, as a real one would."""
        return self._call("inject_status", status=status, count=count, node=node, opcodes=opcodes)

    def clear_faults(self):
        """Remove every delay/drop/garbage/truncate/status fault."""
        self._call("clear_faults")

    def persist(self, bucket, key):
        """Mark every copy of ``key`` persisted now.  Returns whether any copy exists."""
        return self._call("persist", bucket=bucket, key=as_bytes(key))["found"]

    def unpersist(self, bucket, key):
        """Mark every copy of ``key`` not persisted (observe reports 0x00 again)."""
        return self._call("unpersist", bucket=bucket, key=as_bytes(key))["found"]

    def set_delays(self, persist=None, replicate=None):
        """Persistence / replication delay in seconds (None: unchanged; ``float('inf')``: frozen).

        Frozen work resumes (with the new delay) when a finite delay is set again."""
        self._call("set_delays", persist=persist, replicate=replicate)

    def advance_time(self, seconds):
        """Move the mock's clock forward (expiry and lock timeouts), without waiting."""
        self._call("advance_time", seconds=seconds)

    def flush(self, bucket="default"):
        """Delete every document of the bucket on every node."""
        self._call("flush", bucket=bucket)

    def node_stats(self, node):
        """Counters of one node: requests by opcode name, get_hits, get_misses, not_my_vbucket."""
        return self._call("node_stats", node=node)

    def state(self):
        """A JSON-able snapshot: rev, nodes (ports, running, failed over), buckets, faults, delays."""
        return self._call("state")

    def __repr__(self):
        if self._state is None:
            return "<MockCluster nodes=%d (not started)>" % self._nodes
        return "<MockCluster kv=%s rest=%d rev=%d>" % (self.kv_ports, self.rest_port, self._state.rev)


def _delay(v):
    if isinstance(v, str):
        return INF if v.lower() in ("inf", "infinity", "never") else float(v)
    v = float(v)
    if v < 0:
        raise ValueError("delays must be >= 0")
    return v


def _json_delay(v):
    return "inf" if v == INF else v

