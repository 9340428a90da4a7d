"""N1QL queries with the couchbase 2.x API (``couchbase.n1ql``)::

    from couchbase_ffi.n1ql import N1QLQuery, CONSISTENCY_REQUEST
    q = N1QLQuery("SELECT name FROM `travel` WHERE city = $1", "Reno")
    q.consistency = CONSISTENCY_REQUEST
    for row in bucket.n1ql_query(q):
        print(row["name"])

``N1QLQuery`` builds the request body the query service takes (statement,
``args``, ``$name`` parameters, ``scan_consistency``, ``timeout``, any raw
option via ``set_option``); ``encoded`` is that body as JSON.  A
``N1QLRequest`` (what ``Bucket.n1ql_query`` returns) runs it when first
iterated (or on ``execute()``, ``get_single_result()``, ``meta``): one
POST /query/service to a query node (libcbffi's ``cbffi_query_stream``, the
nodes in turn).

Rows are streamed: the core splits the response as it arrives and the
iterator yields each row as soon as it is in, before the rest of the response
has arrived, in memory bounded independently of the result size: at most 4 MiB
of rows not yet yielded (``CBFFI_STREAM_HOLD_MAX``: the core stops reading
until the iterator catches up; the server is held back by TCP), plus one row,
plus the response's metadata.  ``http_max_response`` (connection string,
default 64 MiB) bounds each row and the metadata, not the whole result.  The
metadata (``meta``, ``metrics``, ``errors``) comes after the last row, so it is
known once the rows have been read, as in 2.x.  Other operations may run on
the Bucket between two rows.  Leaving the loop early (``break``, or dropping the
iterator) cancels the request: the connection is closed and nothing of it
reaches later operations (on PyPy, once the garbage collector finalizes the
iterator; ``get_single_result()`` cancels at once).

Errors: a N1QL error in the response is a :class:`N1QLError` (``rc`` 0 for
HTTP 200; ``n1ql_errcode`` the server's code, ``objextra`` its error object)
raised after the rows; with a non-2xx status it is also an ``HTTPError``
(rc 0x3B, as 2.x), an ``AuthError`` for 401/403, a ``TimeoutError`` for
the server's timeout (1080).  The client's own timeout (``n1ql_timeout``,
or a shorter ``N1QLQuery.timeout``) is a ``TimeoutError``; no query node is
a ``NotSupportedError``; a row (or the metadata) over the bound is a
``TooBigError``; a broken response a ``NetworkError`` / ``ProtocolError``.
Failures that come mid-stream (a server that goes silent, a connection cut,
malformed JSON, a row too large) are raised after the rows that arrived
before them.

Prepared statements (``N1QLQuery.adhoc = False``, couchbase_ffi._prepared):
the statement is prepared once per Bucket (an LRU cache of 5000 statements)
and executed by name from then on, with the query's own args and options.
With a cluster map whose clusterCapabilities list
``enhancedPreparedStatements`` (6.5+) the first execution is one request,
``PREPARE <statement>`` with ``auto_execute``; otherwise a ``PREPARE``, then
the execution with ``prepared`` and ``encoded_plan``.  A plan the service
lost (4040, 4050, 4070; 5000 for a dropped index) is prepared again once,
transparently; a failed PREPARE raises its N1QLError, as an adhoc query
would.  On an async Bucket the PREPARE is a request of its own, then the
execution, both on the loop; a query started before the first cluster map
takes the second flow.  A prepared execution streams its rows as an adhoc
query does (the older flow's PREPARE, which answers the plan, is read whole).
"""
import json

from couchbase_ffi import _prepared
from couchbase_ffi import exceptions as E

CONSISTENCY_REQUEST = "request_plus"
CONSISTENCY_NONE = "none"
REQUEST_PLUS = CONSISTENCY_REQUEST
NOT_BOUNDED = "not_bounded"
STATEMENT_PLUS = "statement_plus"
UNBOUNDED = CONSISTENCY_NONE
CONSISTENCY_UNBOUNDED = NOT_BOUNDED

PROFILE_OFF = "off"
PROFILE_PHASES = "phases"
PROFILE_TIMINGS = "timings"
VALID_PROFILES = [PROFILE_OFF, PROFILE_TIMINGS, PROFILE_PHASES]

_SERVER_TIMEOUT = 1080      # the query service ran out of time


class N1QLError(E.CouchbaseError):
    """The query service reported an error; ``objextra`` is its error object
    (``{"code": 3000, "msg": ...}``) and ``n1ql_errcode`` its code."""

    @property
    def n1ql_errcode(self):
        return (self.objextra or {}).get("code")


class N1QLHTTPError(N1QLError, E.HTTPError):
    """A N1QL error that came with a non-2xx HTTP status (rc 0x3B, HTTP_ERROR)."""
    rc = 0x3B


class N1QLAuthError(N1QLError, E.AuthError):
    """A N1QL error with HTTP 401/403: credentials refused, or no access."""
    rc = 0x02


class N1QLTimeoutError(N1QLError, E.TimeoutError):
    """The query service's own timeout passed (error 1080)."""
    rc = 0x17


class AlreadyQueriedError(E.CouchbaseError):
    """The request already ran: make a new one to run it again."""


class MissingTokenError(E.CouchbaseError):
    """A result without a mutation token was given to a MutationState."""


class MutationState(object):
    """Scan vectors for ``N1QLQuery.consistent_with`` (at_plus consistency):
    ``{bucket: {"<vbucket>": [seqno, "<vbuuid>"]}}``.

    ``add_results`` takes the results of mutations (``rv._mutinfo``: a Bucket
    opened with ``fetch_mutation_tokens=true`` on couchbase://; a MultiResult
    counts as all its results); a result without a token raises
    MissingTokenError (or, with ``quiet=True``, makes it return False).
    ``add_all(bucket)`` takes the newest token of each vbucket the Bucket
    mutated.  For a vbucket given twice the higher seqno is kept."""

    def __init__(self, *docs):
        self._sv = {}
        if docs:
            self.add_results(*docs)

    def _add_scanvec(self, mutinfo):
        vb, uuid, seq, bucket = mutinfo
        vbs = self._sv.setdefault(bucket, {})
        cur = vbs.get(str(vb))
        if cur is None or cur[1] != str(uuid) or cur[0] < seq:
            vbs[str(vb)] = [seq, str(uuid)]

    def add_results(self, *rvs, **kwargs):
        if not rvs:
            raise MissingTokenError.pyexc(message="No results passed")
        flat = []
        for rv in rvs:
            if isinstance(rv, dict):    # a MultiResult: each of its results
                flat.extend(rv.values())
            else:
                flat.append(rv)
        for rv in flat:
            mi = getattr(rv, "_mutinfo", None)
            if not mi:
                if kwargs.get("quiet"):
                    return False
                raise MissingTokenError.pyexc(message="Result does not contain token")
            self._add_scanvec(mi)
        return True

    def add_all(self, bucket, quiet=False):
        added = False
        name = bucket.bucket
        for vb, uuid, seq in bucket._mutinfo():
            self._add_scanvec((vb, uuid, seq, name))
            added = True
        if not added and not quiet:
            raise MissingTokenError("Bucket object contains no tokens!")
        return added

    def encode(self):
        return json.dumps(self._sv)

    @classmethod
    def decode(cls, s):
        o = cls()
        o._sv = json.loads(s)
        return o

    def __repr__(self):
        return repr(self._sv)

    def __bool__(self):
        return bool(self._sv)

    __nonzero__ = __bool__


class N1QLQuery(object):
    """A N1QL statement and its request options.

    ``N1QLQuery(statement, *positional, **named)``: ``$1, $2...`` take the
    positional values, ``$name`` the named ones (give them without the ``$``),
    as native Python values (they are JSON-encoded with the body)."""

    def __init__(self, query, *args, **kwargs):
        if not isinstance(query, str):
            raise E.ArgumentError("a N1QL statement (str) is required, got %r" % (query,))
        self._adhoc = True
        self._cross_bucket = False
        self._body = {"statement": query}
        if args:
            self._add_pos_args(*args)
        if kwargs:
            self._set_named_args(**kwargs)

    def _set_named_args(self, **kv):
        for k, v in kv.items():
            self._body["$" + k] = v
        return self

    def _add_pos_args(self, *args):
        self._body.setdefault("args", []).extend(args)

    def set_option(self, name, value):
        """Put ``name: value`` in the request body as it is (no checks)."""
        self._body[name] = value

    @property
    def statement(self):
        return self._body["statement"]

    @property
    def consistency(self):
        """scan_consistency: CONSISTENCY_REQUEST ("request_plus"), NOT_BOUNDED,
        CONSISTENCY_NONE ("none", 2.x's name; the service's default is not_bounded)."""
        return self._body.get("scan_consistency", CONSISTENCY_NONE)

    @consistency.setter
    def consistency(self, value):
        self._body["scan_consistency"] = value

    def consistent_with(self, state):
        """at_plus consistency with the mutations in ``state`` (a MutationState)."""
        if self.consistency not in (CONSISTENCY_NONE, NOT_BOUNDED, "at_plus"):
            raise TypeError("consistent_with not valid with other consistency options")
        if not state:
            raise TypeError("Passed empty or invalid state", state)
        self.consistency = "at_plus"
        self._body["scan_vectors"] = state._sv

    @property
    def adhoc(self):
        """True (the default): send the statement as it is.  False: prepare it once per
        Bucket (a cache of the 5000 most recently used statements) and execute the plan
        by name from then on, re-preparing once if the service lost it (see the
        module's docstring)."""
        return self._adhoc

    @adhoc.setter
    def adhoc(self, value):
        self._adhoc = value

    @property
    def cross_bucket(self):
        """Set by Cluster.n1ql_query: the statement may name several buckets."""
        return self._cross_bucket

    @cross_bucket.setter
    def cross_bucket(self, value):
        self._cross_bucket = value

    @property
    def timeout(self):
        """The query's own timeout in seconds (0: none); the request is bounded by
        the lower of this and the Bucket's ``n1ql_timeout``.  Sent as "<n>s"."""
        value = self._body.get("timeout", "0s")
        return float(value[:-1]) if value.endswith("s") else float(value)

    @timeout.setter
    def timeout(self, value):
        if not value:
            self._body.pop("timeout", None)
        else:
            self._body["timeout"] = "%ss" % (float(value),)

    @property
    def metrics(self):
        return self._body.get("metrics", True)

    @metrics.setter
    def metrics(self, value):
        self._body["metrics"] = value

    @property
    def readonly(self):
        """True: the service refuses statements that change data."""
        return self._body.get("readonly", False)

    @readonly.setter
    def readonly(self, value):
        self._body["readonly"] = value

    @property
    def profile(self):
        return self._body.get("profile", PROFILE_OFF)

    @profile.setter
    def profile(self, value):
        if value not in VALID_PROFILES:
            raise TypeError("Profile option must be one of: " + ", ".join(VALID_PROFILES))
        self._body["profile"] = value

    def _int_option(name):
        def get(self):
            return int(self._body.get(name, "0"))

        def put(self, value):
            self._body[name] = str(value)
        return property(get, put)

    scan_cap = _int_option("scan_cap")
    pipeline_batch = _int_option("pipeline_batch")
    pipeline_cap = _int_option("pipeline_cap")
    del _int_option

    @property
    def encoded(self):
        """The request body as JSON (what is sent, before the client adds its
        ``timeout`` when the query has none)."""
        return json.dumps(self._body)

    def __repr__(self):
        return "<%s stmt=%r at 0x%x>" % (type(self).__name__, self._body, id(self))


class _Raw(object):
    """2.x's ``N1QLRequest.raw``: ``value`` (the metadata dict), ``done``,
    plus ``http_status`` and ``body`` (the response bytes, its rows left out:
    ``"results":[]``)."""
    __slots__ = ("value", "done", "http_status", "body")

    def __init__(self):
        self.value = None
        self.done = False
        self.http_status = 0
        self.body = b""


def _request_body(query, bucket):
    """(the body as JSON bytes, the client timeout in microseconds)."""
    body, limit_us = _body_dict(query, bucket)
    try:
        data = json.dumps(body).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise E.ValueFormatError("a N1QL parameter cannot be encoded as JSON: %s" % (exc,),
                                 objextra=body)
    return data, limit_us


def _body_dict(query, bucket):
    """(the request body as a dict, the client timeout in microseconds)."""
    body = dict(query._body)
    limit = bucket.n1ql_timeout
    own = query.timeout
    if own and own < limit:
        limit = own
    if "timeout" not in body:     # the service's timeout follows the client's, as LCB does
        body["timeout"] = "%dus" % int(limit * 1e6)
    creds = getattr(bucket, "_n1ql_creds", None)
    if query.cross_bucket and creds and "creds" not in body:
        body["creds"] = creds
    return body, max(int(limit * 1e6), 1)


def _with_rows(meta, rows):
    """A streamed answer's meta (bytes, ``"results":[]``) with ``rows`` (JSON bytes) put
    back: the body as the service sent it."""
    try:
        doc = json.loads(meta.decode("utf-8"))
        doc["results"] = [json.loads(r) for r in rows]
        return json.dumps(doc).encode("utf-8")
    except (ValueError, TypeError, UnicodeDecodeError, AttributeError):
        return meta


def _prepared_flow(query, bucket):
    """The requests of a non-adhoc query (couchbase_ffi._prepared): the Bucket's cache,
    the flow its cluster map allows."""
    body, limit_us = _body_dict(query, bucket)
    return _prepared.Flow(body, limit_us, _prepared.cache_of(bucket), _prepared.enhanced(bucket))


def _first_error(errors):
    return errors[0] if errors and isinstance(errors[0], dict) else {}


def _error_message(err, status=None):
    msg = "N1QL Execution failed: %s %s" % (err.get("code"), err.get("msg", ""))
    return msg + (" (HTTP %d)" % status if status else "")


def _outcome(rc, status, body, detail):
    """(rows, meta) of a finished request, or the exception to raise now.  ``body``
    is the final result's value: the response without its streamed rows (``rows``
    are what it still holds: none, unless the server spelt its "results" key
    unusually, so that the core did not stream them).

    A N1QL error in a 2xx response is not raised here: the request raises it
    after its rows, as 2.x did."""
    doc = None
    if body:
        try:
            doc = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            doc = None
    if rc == 0:
        if not isinstance(doc, dict):
            return E.ProtocolError("the query service's response is not a JSON object "
                                   "(HTTP %d, %d bytes)" % (status, len(body)))
        rows = doc.pop("results", None) or []
        return rows, doc
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if rc in (0x3B, 0x02) and errors:
        err = _first_error(errors)
        cls = N1QLAuthError if rc == 0x02 else \
            N1QLTimeoutError if err.get("code") == _SERVER_TIMEOUT else N1QLHTTPError
        exc = cls({"rc": rc, "message": _error_message(err, status), "objextra": err})
        exc.errors = errors
        return exc
    if rc == 0x3B:
        snippet = body[:200].decode("utf-8", "replace")
        return E.HTTPError({"rc": rc, "message": "N1QL request failed with HTTP %d: %s"
                            % (status, snippet or detail)})
    return E.exc_from_rc(rc, message="N1QL request failed: %s" % (detail or E.strerror(rc),))


class N1QLRequest(object):
    """One execution of a N1QLQuery on ``parent`` (a Bucket); iterate it for the
    rows.  ``row_factory`` maps each row (default: the decoded JSON as it is).

    ``meta`` (the response without its rows: status, metrics, requestID...) and
    ``metrics`` are RuntimeError until the rows were read, as in 2.x;
    ``meta_lookahead=True`` (or ``meta_retrieve(meta_lookahead=True)``) makes them
    run the request first, keeping its rows for a later iteration.
    ``errors`` lists the service's error objects.  A request runs once:
    iterating it again is AlreadyQueriedError."""

    def __init__(self, params, parent, row_factory=lambda x: x, meta_lookahead=False, **kwargs):
        if isinstance(params, str):
            params = N1QLQuery(params)
        if not isinstance(params, N1QLQuery):
            raise E.ArgumentError("a N1QLQuery or a statement is required, got %r" % (params,))
        self._params = params
        self._parent = parent
        self.row_factory = row_factory
        self.meta_lookahead = meta_lookahead
        self.errors = []
        self._raw = _Raw()
        self._rows = None
        self._iterated = False
        self.buffered_remainder = []

    @property
    def raw(self):
        return self._raw

    def _open(self):
        """Start the request on the synchronous Bucket: a _stream.SyncStream."""
        body, timeout_us = _request_body(self._params, self._parent)
        return self._parent._n1ql_stream(body, timeout_us)


    def _finish(self, rc, status, data, detail):
        """The stream's end: sets the metadata (and the rows still in it) or raises."""
        raw = self._raw
        raw.http_status, raw.body, raw.done = status, data, True
        out = _outcome(rc, status, data, detail)
        if isinstance(out, Exception):
            self._rows = []
            raw.value = {}
            raise out
        self._rows, raw.value = out
        self.errors = list(raw.value.get("errors") or [])

    def _check_errors(self):
        if self.errors:
            err = _first_error(self.errors)
            exc = N1QLError({"message": _error_message(err), "objextra": err})
            exc.errors = self.errors
            raise exc

    @property
    def meta(self):
        return self.meta_retrieve()

    @property
    def metrics(self):
        return self.meta_retrieve().get("metrics", None)

    def meta_retrieve(self, meta_lookahead=None):
        if not self._raw.done:
            if meta_lookahead or self.meta_lookahead:
                self.buffered_remainder = list(self)
            else:
                raise RuntimeError("This property only valid once all rows are received!")
        return self._raw.value if isinstance(self._raw.value, dict) else {}

    def execute(self):
        """Run the statement; raise on failure (for statements whose rows you do not need)."""
        for _ in self:
            pass
        return self

    def get_single_result(self):
        """The first row (through row_factory), or None if there is none.  A response
        still arriving after its first row is not read further: the request is
        cancelled (and ``meta`` stays unknown)."""
        it = iter(self)
        try:
            return next(it, None)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    def __iter__(self):
        if self.buffered_remainder:
            rows, self.buffered_remainder = self.buffered_remainder, []
            return iter(rows)
        if self._iterated:
            raise AlreadyQueriedError("This request has already run: make a new one to run "
                                      "the query again")
        return self._gen()

    def _gen(self):
        self._iterated = True
        if self._params.adhoc:
            yield from self._stream_rows(self._open(), None)
            return
        # a prepared execution (couchbase_ffi._prepared): the older flow's PREPARE is
        # read whole (it answers the plan); every execution streams its rows
        flow = _prepared_flow(self._params, self._parent)
        req = flow.first()
        while req is not None:
            if flow.step == _prepared.PREPARE_STEP and not flow.enhanced:
                out = self._parent._n1ql_run(req[0], req[1])
                nxt = flow.next(out[0], out[1], out[2])
                if nxt is None:         # the PREPARE failed: its error is the answer
                    self._finish(*out)
                    self._check_errors()
                    return
                req = nxt
                continue
            req = yield from self._stream_rows(self._parent._n1ql_stream(req[0], req[1]), flow)

    def _stream_rows(self, stream, flow):
        """Yield the rows of ``stream`` as they arrive, then finish (raising after the
        rows what went wrong).  With a prepared ``flow``: its answer goes to the flow,
        and if that asks for a re-prepare before any row came, return its request
        instead (the stream closed)."""
        factory = self.row_factory
        loads = json.loads
        final, finished, yielded = None, False, False
        # a PREPARE with auto_execute may be answered by a service that ignores
        # auto_execute: one row, the plan.  Its first row waits until a second one
        # (the query's rows, then) or the end says which.
        held = [] if flow is not None and flow.step == _prepared.PREPARE_STEP else None
        try:
            while final is None:
                rows, final = stream.next()
                if held is not None:
                    held.extend(rows)
                    rows = []
                    if len(held) > 1:
                        rows, held = held, None
                if final is not None and flow is not None:
                    data = final[2]
                    if held:                # one row and the end: hand the flow the whole answer
                        data = _with_rows(data, held)
                    nxt = flow.next(final[0], final[1], data)
                    if nxt is not None and not yielded and not rows:
                        return nxt
                    if held:
                        rows, held = held, None
                if final is not None and final[0] == 0:
                    # a success: the metadata is known before the last rows are taken
                    # (get_single_result on a small result leaves meta readable)
                    self._finish(*final)
                    finished = True
                for row in rows:
                    yielded = True
                    yield factory(loads(row))
        finally:
            stream.close()      # a loop left early: cancels the request
        if not finished:
            self._finish(*final)    # a failure: raised after the rows
        for row in self._rows:
            yield factory(row)
        self._check_errors()
        return None

    def __repr__(self):
        return "<%s %r>" % (type(self).__name__, self._params)


# ---- the synchronous Bucket's side ------------------------------------------------------------

def stream_sync(bucket, body, timeout_us):
    """One cbffi_query_stream on the built-in loop: a _stream.SyncStream (its ``next()``
    gives the rows as they arrive, then (rc, status, meta bytes, detail))."""
    from couchbase_ffi._lowlevel import lib
    from couchbase_ffi._stream import SyncStream
    _check_sync(bucket)
    return SyncStream(bucket, lib.cbffi_query_stream, (body, len(body), timeout_us))


def run_sync(bucket, body, timeout_us):
    """One buffered cbffi_query through the built-in loop (the prepared flow's
    requests): (rc, status, body bytes, last error)."""
    from couchbase_ffi._lowlevel import lib
    _check_sync(bucket)
    return bucket._http_once(lib.cbffi_query, (body, len(body), timeout_us))


def _check_sync(bucket):
    if getattr(bucket, "_host", None) is not None:
        raise E.NotSupportedError("a N1QLRequest runs on a synchronous Bucket: an asynchronous "
                                  "one has its own n1ql_query (and n1qlQueryAll on Twisted)")
    if bucket._pipe is not None:
        raise E.PipelineError("n1ql_query() cannot run inside a pipeline")


def n1ql_query(bucket, query, *args, **kwargs):
    """Bucket.n1ql_query: a N1QLRequest (``itercls=`` another class) for ``query``."""
    if not isinstance(query, N1QLQuery):
        query = N1QLQuery(query)
    itercls = kwargs.pop("itercls", N1QLRequest)
    return itercls(query, bucket, *args, **kwargs)


def cluster_n1ql_query(cluster, query, *args, **kwargs):
    """Cluster.n1ql_query: a cross-bucket query through the first open bucket."""
    if not isinstance(query, N1QLQuery):
        query = N1QLQuery(query)
    query.cross_bucket = True
    for name, ref in list(cluster._buckets.items()):
        b = ref()
        if b is not None and not b.closed:
            return b.n1ql_query(query, *args, **kwargs)
        del cluster._buckets[name]
    from couchbase_ffi.cluster import NoBucketError
    raise NoBucketError("Must have at least one active bucket for query")


# ---- the asynchronous Buckets' side (couchbase_ffi.twisted, couchbase_ffi.asyncio) -------------

class AsyncN1QLRequest(N1QLRequest):
    """A N1QLRequest on an asynchronous Bucket: ``start()`` schedules it on the
    Bucket's loop (streamed: the rows are harvested as they arrive); when the
    response is in, ``on_rows(rows)`` gets every row (through row_factory), then
    ``on_done()``, or ``on_error(exc)`` (also after the rows when the service
    reported a N1QL error, or the stream broke after some rows).  Subclasses override
    those, as 2.x's did.  By default the rows are kept (iterate the request
    once it is done) and the front-end's future (``_fut``) resolves with the
    request itself, or fails with the exception."""

    def __init__(self, params, parent, row_factory=lambda x: x, **kwargs):
        N1QLRequest.__init__(self, params, parent, row_factory, **kwargs)
        self._host = parent._host
        self._fut = self._host._new_future()
        self._batched = []
        self._started = False

    def start(self):
        if self._started:
            return self
        from couchbase_ffi._lowlevel import lib
        self._started = self._iterated = True
        if not self._params.adhoc:     # PREPARE first (or not), then execute: _prepared
            _prepared.start_async(self, _prepared_flow(self._params, self._parent))
            return self
        body, timeout_us = _request_body(self._params, self._parent)
        from couchbase_ffi._stream import StreamState
        self._host.add_stream(lib.cbffi_query_stream, (body, len(body), timeout_us),
                              StreamState(self._host, self))
        return self

    def _end(self, rc, status, data, detail, rows):
        """The stream ended; ``rows`` are the rows it delivered (JSON bytes)."""
        factory, loads = self.row_factory, json.loads
        try:
            self._finish(rc, status, data, detail)
        except E.CouchbaseError as exc:
            if rows:        # what arrived before the failure, then the failure
                self.on_rows([factory(loads(row)) for row in rows])
            self.on_error(exc)
            return
        self.on_rows([factory(loads(row)) for row in rows] +
                     [factory(row) for row in self._rows])
        try:
            self._check_errors()
        except N1QLError as exc:
            self.on_error(exc)
            return
        self.on_done()

    def on_rows(self, rows):
        self._batched.extend(rows)

    def on_done(self):
        self._host._resolve(self._fut, self)

    def on_error(self, exc):
        self._host._reject(self._fut, exc)

    @property
    def done(self):
        return self._raw.done

    def meta_retrieve(self, meta_lookahead=None):
        if not self._raw.done:
            raise RuntimeError("This property only valid once all rows are received!")
        return self._raw.value if isinstance(self._raw.value, dict) else {}

    def __iter__(self):
        if not self._raw.done:
            raise ValueError("the request has not finished: wait for it first")
        return iter(self._batched)

    def execute(self):
        raise E.NotSupportedError("execute() blocks: wait for the request's future instead")

    def get_single_result(self):
        return next(iter(self), None)


