"""View queries with the couchbase 2.x API (``couchbase.views.iterator``)::

    from couchbase_ffi.views.iterator import View
    from couchbase_ffi.views.params import Query, STALE_OK
    for row in bucket.query("beer", "by_name", limit=10, stale=STALE_OK):
        print(row.key, row.value, row.docid)

A :class:`View` sends one request when first iterated: ``GET
/<bucket>/_design/<design>/_view/<view>?<params>`` to a node's capi port
(libcbffi's ``cbffi_view_stream``), or a ``POST`` with ``{"keys": [...]}``
when ``keys`` would make the URL long, within the Bucket's ``views_timeout``.
The rows are streamed: each is yielded as a :class:`ViewRow` ``(key, value,
docid, doc)`` as soon as it has arrived, in bounded memory (at most 4 MiB of
rows not yet yielded; ``http_max_response`` bounds each row and the rest of
the response, not the whole result).  ``include_docs=True`` fills ``doc`` with
the ValueResult of a ``get_multi`` (quiet) per page of rows (``streaming``
rows per page when it is a number, else 100: a page is yielded once it is
full, or at the end); a document that is gone leaves ``doc`` None.  Leaving
the loop early cancels the request.

After iterating: ``indexed_rows`` is the response's total_rows (it comes
with the metadata, after the rows), ``errors`` the engine's inline errors,
``raw`` the HttpResult of the request (its ``value``: the response without
its rows); ``rows_returned`` counts the rows yielded so far.

Errors: a non-2xx answer (a missing design document or view, a parameter
the server refused) is :class:`HTTPError` (rc 0x3B) with ``objextra`` the
server's ``{"error", "reason"}``, 401/403 :class:`AuthError`; inline errors
are :class:`ViewEngineError` after the rows unless ``on_error="continue"``
(then a warning); the client's timeout :class:`TimeoutError`; a stream that
breaks (a cut connection, malformed JSON, a row over ``http_max_response``)
:class:`NetworkError` / :class:`ProtocolError` / :class:`TooBigError` after
the rows that arrived before.  Bad parameters are :class:`ArgumentError`
when the View is made.
"""
import json
import warnings
from collections import namedtuple
from urllib.parse import quote

from couchbase_ffi import exceptions as E
from couchbase_ffi.views.params import Query, UNSPEC, make_dvpath, make_options_string  # noqa: F401

ViewRow = namedtuple("ViewRow", ("key", "value", "docid", "doc"))

# a longer query string moves ``keys`` into a POST body
MAX_GET_URI_LENGTH = 2048
_DEFAULT_PAGE = 100
_KEYS = "keys"


class AlreadyQueriedError(E.CouchbaseError):
    """The View already ran: make a new one to query again."""


class RowProcessor(object):
    """Turns a page of rows into ``rowclass`` instances, fetching the documents for
    include_docs (``handle_rows(rows, bucket, include_docs)`` -> an iterable)."""

    def __init__(self, rowclass=ViewRow):
        self.rowclass = rowclass

    def handle_rows(self, rows, connection, include_docs):
        docs = None
        if include_docs:
            ids = [r["id"] for r in rows if r.get("id") is not None]
            docs = connection.get_multi(ids, quiet=True) if ids else {}
        out = []
        for r in rows:
            doc = None
            if docs is not None:
                got = docs.get(r.get("id"))
                doc = got if got is not None and got.success else None
            out.append(self.rowclass(r.get("key"), r.get("value"), r.get("id"), doc))
        return out


def view_path(design, view):
    return "/_design/%s/_view/%s" % (quote(design, safe=""), quote(view, safe=""))


def request_of(query, design, view):
    """(method, path, body bytes) of a view query."""
    path = view_path(design, view)
    qs = query.encoded
    if _KEYS in query._wire and len(path) + len(qs) + 1 > MAX_GET_URI_LENGTH:
        qs = query._pairs(skip=(_KEYS,))
        body = json.dumps({"keys": json.loads(query._wire[_KEYS])}).encode("utf-8")
        return "POST", path + ("?" + qs if qs else ""), body
    return "GET", path + ("?" + qs if qs else ""), b""


def _http_failure(rc, status, body, detail):
    """The exception for a failed request."""
    doc = None
    try:
        doc = json.loads(body.decode("utf-8")) if body else None
    except (ValueError, UnicodeDecodeError):
        doc = None
    if rc in (0x3B, 0x02):
        if isinstance(doc, dict) and "error" in doc:
            what = "%s: %s" % (doc.get("error"), doc.get("reason"))
        else:
            what = body[:200].decode("utf-8", "replace") or detail
        cls = E.AuthError if rc == 0x02 else E.HTTPError
        exc = cls({"rc": rc, "message": "HTTP %d: %s" % (status, what), "objextra": doc})
        exc.http_status = status
        return exc
    return E.exc_from_rc(rc, message="view request failed: %s" % (detail or E.strerror(rc),))


def decode_response(rc, status, body, detail):
    """The decoded JSON object of a 2xx response, or raise."""
    if rc != 0:
        raise _http_failure(rc, status, body, detail)
    try:
        doc = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        doc = None
    if not isinstance(doc, dict):
        raise E.ProtocolError("the view service's response is not a JSON object "
                              "(HTTP %d, %d bytes)" % (status, len(body)))
    return doc


def _method(method):
    from couchbase_ffi._lowlevel import lib
    return {"GET": lib.CBFFI_HTTP_GET, "POST": lib.CBFFI_HTTP_POST, "PUT": lib.CBFFI_HTTP_PUT,
            "DELETE": lib.CBFFI_HTTP_DELETE}[method]


def _sync_checks(bucket):
    if getattr(bucket, "_host", None) is not None:
        raise E.NotSupportedError("this runs on a synchronous Bucket; an asynchronous one "
                                  "has its own query (queryAll on Twisted)")
    if bucket._pipe is not None:
        raise E.PipelineError("view queries and design documents cannot run inside a "
                              "pipeline")


def stream_sync(bucket, method, path, body, timeout_us=0):
    """One cbffi_view_stream on the built-in loop: a _stream.SyncStream."""
    from couchbase_ffi._lowlevel import lib
    from couchbase_ffi._stream import SyncStream
    _sync_checks(bucket)
    p = path.encode("ascii")
    return SyncStream(bucket, lib.cbffi_view_stream,
                      (_method(method), p, len(p), body, len(body), timeout_us))


def run_sync(bucket, method, path, body, timeout_us=0):
    """One cbffi_view_request through the built-in loop: (rc, status, body, detail)."""
    from couchbase_ffi._lowlevel import lib
    _sync_checks(bucket)
    p = path.encode("ascii")
    return bucket._http_once(lib.cbffi_view_request,
                             (_method(method), p, len(p), body, len(body), timeout_us))


class View(object):
    """One view query on ``parent`` (a Bucket): iterate it for the rows.

    ``View(parent, design, view, row_processor=None, include_docs=False, query=None,
    streaming=False, **params)``: ``query`` (a Query) or ``params`` (its parameters),
    not both.  include_docs with reduce/group/group_level is ArgumentError."""

    def __init__(self, parent, design, view, row_processor=None, include_docs=False,
                 query=None, streaming=False, **params):
        self._parent = parent
        self.design = design
        self.view = view
        self.errors = []
        self.raw = None
        self.rows_returned = 0
        self.indexed_rows = 0
        self.include_docs = include_docs
        self.row_processor = row_processor or RowProcessor()
        if query is not None and params:
            raise E.ArgumentError.pyexc("give either query= or view parameters, not both "
                                        "(use query.update() to add to a Query)")
        self._query = Query.from_any(query) if query is not None else Query.from_any(params)
        if include_docs and (self._query.reduce or self._query.group or
                             self._query.group_level):
            raise E.ArgumentError.pyexc("include_docs is for map-only queries: reduce, "
                                        "group or group_level is set", self._query)
        self._streaming = streaming
        self._ran = False
        self._request = request_of(self._query, design, view)

    @property
    def streaming(self):
        return self._streaming

    @property
    def query(self):
        return self._query

    def _page_size(self):
        s = self._streaming
        return s if isinstance(s, int) and not isinstance(s, bool) and s > 0 else _DEFAULT_PAGE

    def _open(self):
        method, path, body = self._request
        return stream_sync(self._parent, method, path, body)

    def _decoded(self, rc, status, data, detail, path):
        from couchbase_ffi.result import HttpResult
        doc = decode_response(rc, status, data, detail)
        self.raw = HttpResult(rc=0, value=doc, http_status=status, url=path)
        return doc

    def _handle_meta(self, doc):
        self.indexed_rows = doc.get("total_rows", 0)
        errors = doc.get("errors")
        if not errors:
            return
        self.errors.extend(errors)
        if self._query.on_error == "continue":
            warnings.warn("the view engine reported errors: see View.errors")
        else:
            raise E.ViewEngineError.pyexc("the view engine reported errors", self.errors)

    def __iter__(self):
        if self._ran:
            raise AlreadyQueriedError.pyexc("this View already ran: make a new one to "
                                            "query again")
        self._ran = True
        return self._gen()

    def _pages(self, rows, whole):
        """Take the rows to yield now off ``rows``, in pages: with include_docs whole
        pages (``whole``: the rest too); without, everything at once."""
        if not self.include_docs:
            page = rows[:]
            del rows[:]
            return [page] if page else []
        n = self._page_size()
        out = []
        while len(rows) >= n or (whole and rows):
            out.append(rows[:n])
            del rows[:n]
        return out

    def _gen(self):
        loads = json.loads
        handle, parent, docs = self.row_processor.handle_rows, self._parent, self.include_docs
        stream = self._open()
        rows, final = [], None
        try:
            while final is None:
                got, final = stream.next()
                rows.extend(map(loads, got))
                if final is None:
                    for page in self._pages(rows, False):
                        for row in handle(page, parent, docs):
                            self.rows_returned += 1
                            yield row
        finally:
            stream.close()      # a loop left early: cancels the request
        failure = doc = None
        try:
            doc = self._decoded(*(final + (self._request[1],)))
        except E.CouchbaseError as exc:
            failure = exc
        else:
            rows.extend(doc.get("rows") or [])  # what the stream did not split, if any
            self.indexed_rows = doc.get("total_rows", 0)
        for page in self._pages(rows, True):    # rows before a failure come first
            for row in handle(page, parent, docs):
                self.rows_returned += 1
                yield row
        if failure is not None:
            raise failure
        self._handle_meta(doc)

    def __repr__(self):
        return "%s<Design=%s, View=%s, Query=%s, Rows Fetched=%d>" % (
            type(self).__name__, self.design, self.view, self._query, self.rows_returned)


# ---- the asynchronous Buckets (couchbase_ffi.twisted, couchbase_ffi.asyncio) ----------------

class AsyncViewBase(View):
    """A View on an asynchronous Bucket: ``start()`` schedules the request (streamed:
    its rows are harvested as they arrive); when the response is in, ``on_rows(rows)``
    gets every ViewRow, then ``on_done()``, or ``on_error(exc)`` (after the rows that
    came before a failure).  By default the rows are kept (iterate the View once it is
    done) and the front-end's future (``_fut``) resolves with the View.
    include_docs is NotSupportedError here (it would need get_multi in between)."""

    def __init__(self, *args, **kwargs):
        View.__init__(self, *args, **kwargs)
        if self.include_docs:
            raise E.NotSupportedError("include_docs is not supported on the asynchronous "
                                      "Buckets: get the documents from the rows' docids")
        self._host = self._parent._host
        self._fut = self._host._new_future()
        self._batched = []
        self._started = False
        self.done = False

    def start(self):
        if self._started:
            return self
        from couchbase_ffi._lowlevel import lib
        self._started = self._ran = True
        method, path, body = self._request
        p = path.encode("ascii")
        from couchbase_ffi._stream import StreamState
        self._host.add_stream(lib.cbffi_view_stream,
                              (_method(method), p, len(p), body, len(body), 0),
                              StreamState(self._host, self))
        return self

    def _end(self, rc, status, data, detail, got):
        """The stream ended; ``got`` are the rows it delivered (JSON bytes)."""
        self.done = True
        raw = [json.loads(row) for row in got]
        try:
            doc = self._decoded(rc, status, data, detail, self._request[1])
        except E.CouchbaseError as exc:
            if raw:
                rows = self.row_processor.handle_rows(raw, self._parent, False)
                self.rows_returned = len(rows)
                self.on_rows(rows)
            self.on_error(exc)
            return
        try:
            rows = self.row_processor.handle_rows(raw + (doc.get("rows") or []),
                                                  self._parent, False)
            self.rows_returned = len(rows)
            self.indexed_rows = doc.get("total_rows", 0)
            self.on_rows(rows)
            self._handle_meta(doc)
        except E.CouchbaseError as exc:
            self.on_error(exc)
            return
        self.on_done()

    def on_rows(self, rows):
        self._batched.extend(rows)

    def on_done(self):
        self._host._resolve(self._fut, self)

    def on_error(self, exc):
        self._host._reject(self._fut, exc)

    def __iter__(self):
        if not self.done:
            raise ValueError("the view query has not finished: wait for it first")
        return iter(self._batched)


