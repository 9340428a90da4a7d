"""N1QL prepared statements: what ``N1QLQuery.adhoc = False`` sends.

A non-adhoc query is planned once per Bucket and then executed by its plan's
name (couchbase 2.x / libcouchbase semantics; see docs/couchbase.md, "N1QL"):

- **Cache.** ``PreparedCache``: statement text -> (name, encoded_plan or None),
  least recently used first out past ``CACHE_SIZE`` (5000, as libcouchbase)
  entries; one per Bucket (``cache_of``), safe to share between threads.
- **Legacy flow** (a cluster map without ``enhancedPreparedStatements``):
  ``{"statement": "PREPARE <statement>"}`` (with the query's timeout and
  cross-bucket creds) answers one row with ``name`` and ``encoded_plan``; the
  query is then sent without ``statement``, with ``prepared`` and
  ``encoded_plan`` and every other option (args, $named, scan_consistency...).
- **Enhanced flow** (clusterCapabilities ``"n1ql"`` lists
  ``enhancedPreparedStatements``, Couchbase 6.5+): the first request is the
  whole query with ``"statement": "PREPARE <statement>"`` and
  ``"auto_execute": true``; its response is the query's answer and names the
  prepared statement in ``prepared``; later executions send ``prepared`` alone.
- **Re-prepare.** An execution answered with a plan error -- 4040 (no such
  prepared statement), 4050 (unrecognized), 4070 (cannot decode), or 5000
  "queryport.indexNotFound" (an index the plan used is gone) -- drops the
  entry, prepares again and retries, once per request; a second failure is the
  answer.  4060 (name taken), 4080 and 4090 (plan and name disagree) are not
  retried (as the Couchbase SDKs' core).  A failed PREPARE is the answer: its
  N1QLError is raised as for an adhoc query.

``Flow`` is the sans-IO part: ``first()`` and ``next(response)`` say what to
send; ``run_sync`` drives it through the sync Bucket, ``start_async`` through
a front-end's Host (``couchbase_ffi._async``).
"""
import json
import threading
import time
from collections import OrderedDict

from couchbase_ffi import exceptions as E

CACHE_SIZE = 5000           # entries per Bucket, as libcouchbase's prepared cache

_REPREPARE = frozenset((4040, 4050, 4070))
_INDEX_GONE = "queryport.indexNotFound"
_PREPARE, _EXECUTE = 1, 2
PREPARE_STEP = _PREPARE     # Flow.step of a PREPARE request (couchbase_ffi.n1ql streams the rest)


class PreparedCache(object):
    """statement -> (name, encoded_plan or None), bounded, least recently used out first."""

    def __init__(self, maxsize=CACHE_SIZE):
        self.maxsize = maxsize
        self._d = OrderedDict()
        self._lock = threading.Lock()

    def get(self, statement):
        with self._lock:
            entry = self._d.get(statement)
            if entry is not None:
                self._d.move_to_end(statement)
            return entry

    def put(self, statement, entry):
        with self._lock:
            self._d[statement] = entry
            self._d.move_to_end(statement)
            while len(self._d) > self.maxsize:
                self._d.popitem(last=False)

    def discard(self, statement, entry=None):
        """Drop the statement's entry (only if it is still ``entry``, when given: a
        concurrent request may have prepared it again meanwhile)."""
        with self._lock:
            if entry is None or self._d.get(statement) == entry:
                self._d.pop(statement, None)

    def clear(self):
        with self._lock:
            self._d.clear()

    def __len__(self):
        return len(self._d)

    def __contains__(self, statement):
        return statement in self._d


def cache_of(bucket):
    """The Bucket's PreparedCache (made on first use)."""
    cache = getattr(bucket, "_n1ql_prepared", None)
    if cache is None:
        cache = bucket._n1ql_prepared = PreparedCache()
    return cache


def enhanced(bucket):
    """True if the Bucket's cluster map says the query service has enhanced prepared
    statements (False before a map is known: the legacy flow works everywhere)."""
    from couchbase_ffi._lowlevel import lib
    c = bucket._enter()
    try:
        caps = lib.cbffi_client_cluster_caps(c)
    finally:
        bucket._leave()
    return bool(caps & lib.CBFFI_CLUSTER_CAP_N1QL_ENHANCED_PREPARED)


def _doc(data):
    try:
        doc = json.loads(data.decode("utf-8")) if data else None
    except (ValueError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def _first_error(doc):
    errors = doc.get("errors") if doc is not None else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return errors[0]
    return None


def plan_gone(rc, data):
    """True if the response says the plan must be prepared again (see the module doc)."""
    if rc not in (0, 0x3B):
        return False
    err = _first_error(_doc(data))
    if err is None:
        return False
    code = err.get("code")
    return code in _REPREPARE or (code == 5000 and _INDEX_GONE in str(err.get("msg", "")))


class Flow(object):
    """The requests of one execution of a non-adhoc query.

    ``body``: the query's request body (a dict with ``statement``, as N1QLQuery
    builds it, the client's ``timeout`` and ``creds`` added); ``limit_us``: the
    client's bound on the whole execution, every request included."""
    __slots__ = ("statement", "body", "cache", "enhanced", "deadline", "retried", "step",
                 "entry")

    def __init__(self, body, limit_us, cache, enhanced):
        self.statement = body["statement"]
        self.body = body
        self.cache = cache
        self.enhanced = enhanced
        self.deadline = time.monotonic() + limit_us / 1e6
        self.retried = False
        self.step = None
        self.entry = None

    def first(self):
        """(body bytes, timeout in microseconds) of the first request."""
        entry = self.cache.get(self.statement)
        return self._prepare() if entry is None else self._execute(entry)

    def next(self, rc, status, data):
        """After a response: None if it is the query's answer, else the next request.
        Raises ProtocolError for a PREPARE answered without a plan."""
        if self.step == _EXECUTE:
            if self.retried or not plan_gone(rc, data):
                return None
            self.retried = True
            self.cache.discard(self.statement, self.entry)
            return self._prepare()
        doc = _doc(data) if rc in (0, 0x3B) else None
        name = doc.get("prepared") if doc is not None else None
        if isinstance(name, str):       # auto_execute: prepared, then executed (or failed to)
            self.cache.put(self.statement, (name, None))
            return None
        if rc != 0 or doc is None or _first_error(doc) is not None:
            return None                 # the PREPARE failed: its error is the answer
        rows = doc.get("results")
        plan = rows[0] if isinstance(rows, list) and len(rows) == 1 else None
        if not (isinstance(plan, dict) and isinstance(plan.get("name"), str)
                and isinstance(plan.get("encoded_plan"), str)):
            if self.enhanced:
                return None     # executed without naming it: the rows are the answer
            raise E.ProtocolError("the query service answered PREPARE without a prepared "
                                  "statement (name and encoded_plan): %s"
                                  % (data[:200].decode("utf-8", "replace"),))
        entry = (plan["name"], plan["encoded_plan"])
        self.cache.put(self.statement, entry)
        return self._execute(entry)

    def _prepare(self):
        self.step = _PREPARE
        text = "PREPARE " + self.statement
        if self.enhanced:
            body = dict(self.body, statement=text, auto_execute=True)
        else:
            body = {"statement": text}
            for k in ("timeout", "creds"):
                if k in self.body:
                    body[k] = self.body[k]
        return self._encode(body)

    def _execute(self, entry):
        self.step = _EXECUTE
        self.entry = entry
        body = dict(self.body)
        del body["statement"]
        body["prepared"] = entry[0]
        if entry[1] is not None:
            body["encoded_plan"] = entry[1]
        return self._encode(body)

    def _encode(self, body):
        try:
            data = json.dumps(body).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise E.ValueFormatError("a N1QL parameter cannot be encoded as JSON: %s" % (exc,),
                                     objextra=body)
        left = int((self.deadline - time.monotonic()) * 1e6)
        return data, max(left, 1)


def run_sync(flow, bucket):
    """Drive ``flow`` through the sync Bucket: (rc, status, body, detail) of its answer."""
    req = flow.first()
    while True:
        rc, status, data, detail = bucket._n1ql_run(req[0], req[1])
        req = flow.next(rc, status, data)
        if req is None:
            return rc, status, data, detail


class _FlowState(object):
    """The Host's view of a prepared execution in flight: each response goes to the
    flow; the next request is scheduled from here, the answer handed to the request
    (``req._end``, as couchbase_ffi.n1ql's _QueryState does)."""
    __slots__ = ("host", "req", "flow", "fut")

    def __init__(self, host, req, flow):
        self.host = host
        self.req = req
        self.flow = flow
        self.fut = req._fut       # what Host.close() fails

    def row(self, r):
        pass

    def end(self, r, what, index):
        from couchbase_ffi._lowlevel import ffi, lib
        data = ffi.unpack(r.value, r.nvalue) if r.nvalue else b""
        detail = ""
        if r.rc:
            detail = ffi.string(lib.cbffi_client_last_error(self.host.c)).decode(
                "utf-8", "replace")
        try:
            nxt = self.flow.next(r.rc, r.status, data)
            if nxt is not None:
                self.schedule(nxt)
                return
        except E.CouchbaseError as exc:
            self.req._raw.done = True
            self.req.on_error(exc)
            return
        self.req._end(r.rc, r.status, data, detail, [])   # the rows are in the body

    def schedule(self, req):
        from couchbase_ffi._lowlevel import lib
        self.host.add_state(lib.cbffi_query, (req[0], len(req[0]), req[1]), self)


def start_async(req, flow):
    """Schedule the first request of ``flow`` for ``req`` (an AsyncN1QLRequest)."""
    _FlowState(req._host, req, flow).schedule(flow.first())
