"""The mock's view service: the capi port of every node (nodesExt ``capi`` /
``capiSSL``, and ``couchApiBase`` in the bucket config's ``nodes``).

Design documents: ``PUT`` / ``GET`` / ``DELETE /<bucket>/_design/<name>``, kept
per bucket; ``dev_<name>`` and ``<name>`` are separate documents (publishing is
the client's GET + PUT + DELETE, as 2.x does it).

Views: ``GET /<bucket>/_design/<ddoc>/_view/<view>?<params>`` and ``POST`` with
``{"keys": [...]}``.  The mock runs no JavaScript.  A view is answered, in this
order:

1. from a result a test registered for (ddoc, view) (``MockCluster.view_register``:
   rows, total_rows, errors, HTTP status / error, delay), whether or not the
   design document exists;
2. from the KV data, when the view's map function is one of the built-in forms
   (see ``BUILTIN_FORMS`` and docs/mock.md), with the key/range/limit/skip/
   descending parameters and the ``_count`` / ``_sum`` / ``_stats`` reduces applied as the
   view engine does;
3. otherwise: HTTP 500 ``{"error": "unsupported_map", "reason": ...}`` saying so.

Every request is recorded (``MockCluster.view_requests``).
"""
import asyncio
import json
import math
import re
import zlib
from urllib.parse import parse_qsl, unquote, urlsplit

from couchbase_ffi.mock import rowstream
from couchbase_ffi.mock.rest import ServiceServer, basic_auth
from couchbase_ffi.mock.state import COUCHBASE

# ---- the built-in map functions --------------------------------------------------------------

_IDENT = r"[A-Za-z_$][A-Za-z0-9_$]*"
_FIELD = r"doc\.(%s(?:\.%s)*)" % (_IDENT, _IDENT)
_EXPR = r"(meta\.id|%s|null|-?\d+(?:\.\d+)?|\"[^\"\\]*\")" % (_FIELD,)
_MAP_RE = re.compile(
    r"^function\s*\(\s*doc\s*,\s*meta\s*\)\s*\{\s*"
    r"(?:if\s*\(\s*" + _FIELD + r"\s*\)\s*(?:\{\s*)?)?"
    r"emit\s*\(\s*" + _EXPR + r"\s*,\s*" + _EXPR + r"\s*\)\s*;?\s*(\}\s*)?\}\s*$")

BUILTIN_FORMS = (
    "function (doc, meta) { emit(meta.id, VALUE); }",
    "function (doc, meta) { emit(doc.FIELD, VALUE); }",
    "function (doc, meta) { if (doc.FIELD) emit(KEY, VALUE); }",
)

_UNDEF = object()


def _field(doc, path):
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return _UNDEF
        doc = doc[part]
    return doc


def compile_map(src):
    """A function (doc_id, decoded JSON or _UNDEF for non-JSON) -> [(key, value)], or None
    if ``src`` is not one of the built-in forms."""
    if not isinstance(src, str):
        return None
    m = _MAP_RE.match(src.strip())
    if not m:
        return None
    guard = m.group(1)
    groups = m.groups()
    key_expr, key_field = groups[1], groups[2]
    val_expr, val_field = groups[3], groups[4]
    if m.group(6) is not None and guard is None:
        return None     # an unbalanced '}'

    def ev(expr, field, doc_id, doc):
        if expr == "meta.id":
            return doc_id
        if field is not None:
            if not isinstance(doc, dict):
                return _UNDEF
            return _field(doc, field)
        return json.loads(expr)

    def run(doc_id, doc):
        if guard is not None:
            g = _field(doc, guard) if isinstance(doc, dict) else _UNDEF
            if g is _UNDEF or not _truthy(g):
                return []
        k = ev(key_expr, key_field, doc_id, doc)
        v = ev(val_expr, val_field, doc_id, doc)
        if k is _UNDEF and key_field is not None and not isinstance(doc, dict):
            return []    # not a JSON object (see docs/mock.md)
        return [(None if k is _UNDEF else k, None if v is _UNDEF else v)]
    return run


def _truthy(v):
    return not (v is None or v is False or v == 0 or v == "")


# ---- collation (CouchDB's order; strings by code point, see docs/mock.md) ---------------------

def _rank(v):
    if v is None:
        return 0
    if v is False:
        return 1
    if v is True:
        return 2
    if isinstance(v, (int, float)):
        return 3
    if isinstance(v, str):
        return 4
    if isinstance(v, list):
        return 5
    return 6


def collate(a, b):
    ra, rb = _rank(a), _rank(b)
    if ra != rb:
        return -1 if ra < rb else 1
    if ra in (3, 4):
        return -1 if a < b else (1 if a > b else 0)
    if ra == 5:
        for x, y in zip(a, b):
            c = collate(x, y)
            if c:
                return c
        return -1 if len(a) < len(b) else (1 if len(a) > len(b) else 0)
    if ra == 6:
        ia, ib = list(a.items()), list(b.items())
        for (ka, va), (kb, vb) in zip(ia, ib):
            c = collate(ka, kb) or collate(va, vb)
            if c:
                return c
        return -1 if len(ia) < len(ib) else (1 if len(ia) > len(ib) else 0)
    return 0


class _Key(object):
    __slots__ = ("k", "id")

    def __init__(self, k, doc_id=None):
        self.k = k
        self.id = doc_id

    def cmp(self, other):
        c = collate(self.k, other.k)
        if c or self.id is None or other.id is None:
            return c
        return -1 if self.id < other.id else (1 if self.id > other.id else 0)

    def __lt__(self, other):
        return self.cmp(other) < 0


# ---- parameters -------------------------------------------------------------------------------

class ViewError(Exception):
    def __init__(self, http, error, reason):
        Exception.__init__(self, reason)
        self.http = http
        self.error = error
        self.reason = reason


_JSON_PARAMS = ("key", "keys", "startkey", "endkey", "start_key", "end_key")
_BOOL_PARAMS = ("descending", "inclusive_end", "reduce", "group", "full_set", "debug")
_INT_PARAMS = ("limit", "skip", "group_level", "connection_timeout")
_STR_PARAMS = ("startkey_docid", "endkey_docid", "start_key_doc_id", "end_key_doc_id")


def parse_params(pairs, body):
    """The view parameters as Python values; ViewError (400 query_parse_error) if bad."""
    out = {}
    for k, v in pairs:
        if k in _JSON_PARAMS:
            try:
                out[k] = json.loads(v)
            except ValueError:
                raise ViewError(400, "query_parse_error",
                                "Invalid value for JSON parameter %s: %r" % (k, v))
        elif k in _BOOL_PARAMS:
            if v not in ("true", "false"):
                raise ViewError(400, "query_parse_error",
                                "Invalid value for boolean parameter: %r" % (v,))
            out[k] = v == "true"
        elif k in _INT_PARAMS:
            try:
                n = int(v)
            except ValueError:
                n = -1
            if n < 0:
                raise ViewError(400, "query_parse_error",
                                "Invalid value for integer parameter %s: %r" % (k, v))
            out[k] = n
        elif k in _STR_PARAMS:
            out[k] = v
        elif k == "stale":
            if v not in ("ok", "false", "update_after"):
                raise ViewError(400, "query_parse_error",
                                "Invalid value for parameter stale: %r" % (v,))
            out[k] = v
        elif k == "on_error":
            if v not in ("continue", "stop"):
                raise ViewError(400, "query_parse_error",
                                "Invalid value for parameter on_error: %r" % (v,))
            out[k] = v
        else:
            raise ViewError(400, "query_parse_error", "Invalid URL parameter: %r" % (k,))
    if body:
        if not isinstance(body, dict):
            raise ViewError(400, "bad_request", "the request body is not a JSON object")
        for k, v in body.items():
            if k != "keys":
                raise ViewError(400, "query_parse_error", "Invalid body field: %r" % (k,))
            out["keys"] = v
    if "keys" in out and not isinstance(out["keys"], list):
        raise ViewError(400, "query_parse_error", "`keys` must be an array")
    for a, b in (("start_key", "startkey"), ("end_key", "endkey"),
                 ("start_key_doc_id", "startkey_docid"), ("end_key_doc_id", "endkey_docid")):
        if a in out:
            out[b] = out.pop(a)
    return out


def run_view(rows, params, reduce_src):
    """Apply the parameters to the map rows [(key, id, value)]; returns the response body."""
    total = len(rows)
    desc = params.get("descending", False)
    rows = sorted(rows, key=lambda r: _Key(r[0], r[1]), reverse=desc)
    if "keys" in params:
        picked = []
        for k in params["keys"]:
            picked.extend(r for r in rows if collate(r[0], k) == 0)
        rows = picked
    if "key" in params:
        rows = [r for r in rows if collate(r[0], params["key"]) == 0]
    sk, ek = params.get("startkey", _UNDEF), params.get("endkey", _UNDEF)
    sd, ed = params.get("startkey_docid"), params.get("endkey_docid")
    incl = params.get("inclusive_end", True)
    sign = -1 if desc else 1

    def after_start(r):
        if sk is _UNDEF:
            return True
        c = _Key(r[0], r[1] if sd is not None else None).cmp(_Key(sk, sd)) * sign
        return c >= 0

    def before_end(r):
        if ek is _UNDEF:
            return True
        c = _Key(r[0], r[1] if ed is not None else None).cmp(_Key(ek, ed)) * sign
        return c <= 0 if incl else c < 0
    rows = [r for r in rows if after_start(r) and before_end(r)]
    do_reduce = reduce_src is not None and params.get("reduce", True)
    if reduce_src is None and ("group" in params or "group_level" in params) and \
            (params.get("group") or params.get("group_level")):
        raise ViewError(400, "query_parse_error", "Invalid URL parameter `group` or "
                        "`group_level` for non-reduce view.")
    if do_reduce:
        out = _reduce(rows, reduce_src, params)
        skip, limit = params.get("skip", 0), params.get("limit")
        out = out[skip:] if limit is None else out[skip:skip + limit]
        return {"rows": out}
    skip, limit = params.get("skip", 0), params.get("limit")
    rows = rows[skip:] if limit is None else rows[skip:skip + limit]
    return {"total_rows": total,
            "rows": [{"id": i, "key": k, "value": v} for k, i, v in rows]}


def _reduce(rows, src, params):
    level = params.get("group_level")
    group = params.get("group", False)
    if not group and not level:
        if not rows:
            return []
        return [{"key": None, "value": _reduce_values(src, [r[2] for r in rows])}]
    out = []
    for k, _i, v in rows:
        gk = k[:level] if level and isinstance(k, list) else k
        if out and collate(out[-1][0], gk) == 0:
            out[-1][1].append(v)
        else:
            out.append((gk, [v]))
    return [{"key": k, "value": _reduce_values(src, vs)} for k, vs in out]


def _reduce_values(src, values):
    if src == "_count":
        return len(values)
    nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(nums) != len(values):
        raise ViewError(500, "error", "reduce function %s: a value is not a number" % (src,))
    if src == "_sum":
        return sum(nums)
    return {"sum": sum(nums), "count": len(nums), "min": min(nums), "max": max(nums),
            "sumsqr": sum(n * n for n in nums)}


_REDUCES = ("_count", "_sum", "_stats")

# ---- the service --------------------------------------------------------------------------------


class Registration(object):
    """A registered answer for (ddoc, view) on ``bucket`` (None = any), ``count`` times."""

    def __init__(self, ddoc, view, rows=None, total_rows=None, errors=None, http_status=None,
                 error=None, reason=None, delay=0.0, count=None, bucket=None, fault=None,
                 row_delay=0.0, repeat=None, cut_after=None, cut=None, chunked=False):
        if not ddoc or not view:
            raise ValueError("ddoc and view are required")
        if rows is not None and not isinstance(rows, list):
            raise ValueError("rows must be a list of {id, key, value} objects")
        if isinstance(delay, str):
            delay = float(delay)
        if delay < 0:
            raise ValueError("delay must be >= 0")
        if fault not in (None, "close", "truncate"):
            raise ValueError("fault must be 'close' or 'truncate'")
        self.ddoc = ddoc[len("_design/"):] if ddoc.startswith("_design/") else ddoc
        self.view = view
        self.rows = rows or []
        self.total_rows = total_rows
        self.errors = errors
        self.http_status = None if http_status is None else int(http_status)
        self.error = error
        self.reason = reason
        self.delay = float(delay)
        self.count = None if count is None else int(count)
        self.bucket = bucket
        self.fault = fault
        # streamed answers (mock/rowstream.py)
        self.stream = rowstream.RowStream(row_delay, repeat, cut_after, cut, chunked)

    def describe(self):
        out = {"ddoc": self.ddoc, "view": self.view, "rows": len(self.rows),
               "http_status": self.http_status, "error": self.error, "count": self.count,
               "bucket": self.bucket, "delay": "inf" if math.isinf(self.delay) else self.delay}
        out.update(self.stream.describe())
        return out


class ViewService(object):
    """Design documents, registrations and the request log, shared by every capi server."""

    def __init__(self, state):
        self.state = state
        self.ddocs = {}           # bucket -> {name: design document}
        self.revs = {}            # bucket -> {name: "<n>-<hex>"}
        self.registrations = []   # newest first
        self.requests = []

    def register(self, **kw):
        reg = Registration(**kw)
        self.registrations.insert(0, reg)
        return reg.describe()

    def match(self, bucket, ddoc, view):
        for reg in self.registrations:
            if reg.ddoc == ddoc and reg.view == view and reg.bucket in (None, bucket):
                if reg.count is not None:
                    reg.count -= 1
                    if reg.count <= 0:
                        self.registrations.remove(reg)
                return reg
        return None

    def clear(self):
        self.registrations = []
        self.requests = []

    def store(self, bucket, name, doc):
        self.ddocs.setdefault(bucket, {})[name] = doc
        revs = self.revs.setdefault(bucket, {})
        n = int(revs.get(name, "0-").split("-", 1)[0]) + 1
        crc = zlib.crc32(json.dumps(doc, sort_keys=True).encode("utf-8")) & 0xffffffff
        revs[name] = "%d-%08x" % (n, crc)
        return revs[name]

    def drop(self, bucket, name):
        self.revs.get(bucket, {}).pop(name, None)
        return self.ddocs.get(bucket, {}).pop(name, None)

    def listing(self, bucket):
        """``GET /pools/default/buckets/<bucket>/ddocs`` on the REST port: every design
        document (dev_ ones too), as ns_server lists them."""
        rows = []
        for name, doc in sorted(self.ddocs.get(bucket, {}).items()):
            ctl = "/pools/default/buckets/%s/ddocs/_design%%2F%s/controller/" % (bucket, name)
            rows.append({"doc": {"meta": {"id": "_design/" + name,
                                          "rev": self.revs.get(bucket, {}).get(name, "1-0")},
                                 "json": doc},
                         "controllers": {"compact": ctl + "compactView",
                                         "setUpdateMinChanges": ctl + "setUpdateMinChanges"}})
        return {"rows": rows}


class ViewServer(ServiceServer):
    """One node's capi port (HTTP plumbing from RestServer)."""
    PORT_ATTR, SSL_PORT_ATTR = "capi_port", "capi_ssl_port"

    def _login(self, headers):
        login = basic_auth(headers)
        if login is None:
            return None, False
        return login[0], self.state.creds.check_plain(*login)

    async def _fail(self, writer, keep, http, error, reason):
        await self._send(writer, http, {"error": error, "reason": reason}, close=not keep)
        return False

    async def _dispatch(self, writer, method, target, headers, raw, keep):
        url = urlsplit(target)
        parts = [unquote(p) for p in url.path.split("/") if p]
        pairs = parse_qsl(url.query, keep_blank_values=True)
        user, ok = self._login(headers)
        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
            bad_body = False
        except (ValueError, UnicodeDecodeError):
            body, bad_body = None, True
        rec = {"node": self.node, "method": method, "path": url.path, "query": url.query,
               "params": dict(pairs), "body": body, "user": user, "authorized": ok,
               "content_type": headers.get("content-type", "")}
        if len(parts) >= 3 and parts[1] == "_design":
            rec.update(bucket=parts[0], ddoc=parts[2],
                       view=parts[4] if len(parts) == 5 and parts[3] == "_view" else None)
        self.service.requests.append(rec)
        if len(parts) < 3 or parts[1] != "_design" or len(parts) not in (3, 5) or \
                (len(parts) == 5 and parts[3] != "_view"):
            return await self._fail(writer, keep, 404, "not_found", "no such endpoint on the "
                                    "couchbase_ffi mock's view service")
        bname, ddoc = parts[0], parts[2]
        b = self.state.buckets.get(bname)
        if not ok or not self.state.may_access(user, bname):
            if ok and b is None:
                return await self._fail(writer, keep, 404, "not_found", "no_such_bucket")
            return await self._fail(writer, keep, 401, "unauthorized",
                                    "you need bucket credentials (Basic auth) for %s" % bname)
        if b is None or b.type != COUCHBASE:
            return await self._fail(writer, keep, 404, "not_found", "no_such_bucket")
        if bad_body:
            return await self._fail(writer, keep, 400, "bad_request", "invalid UTF-8 JSON")
        docs = self.service.ddocs.setdefault(bname, {})
        if len(parts) == 3:
            return await self._design(writer, keep, method, bname, docs, ddoc, body)
        if method not in ("GET", "POST"):
            return await self._fail(writer, keep, 405, "method_not_allowed",
                                    "views take GET or POST")
        reg = self.service.match(bname, ddoc, parts[4])
        if reg is not None:
            return await self._registered(writer, keep, reg, rec)
        try:
            out = self._compute(b, docs, ddoc, parts[4], pairs,
                                body if method == "POST" else None)
        except ViewError as e:
            return await self._fail(writer, keep, e.http, e.error, e.reason)
        await self._send(writer, 200, out, close=not keep)
        return False

    async def _design(self, writer, keep, method, bucket, docs, name, body):
        if method == "GET":
            doc = docs.get(name)
            if doc is None:
                return await self._fail(writer, keep, 404, "not_found", "missing")
            await self._send(writer, 200, doc, close=not keep)
            return False
        if method == "DELETE":
            if self.service.drop(bucket, name) is None:
                return await self._fail(writer, keep, 404, "not_found", "missing")
            await self._send(writer, 200, {"ok": True, "id": "_design/" + name}, close=not keep)
            return False
        if method != "PUT":
            return await self._fail(writer, keep, 405, "method_not_allowed",
                                    "design documents take GET, PUT or DELETE")
        views = body.get("views", {}) if isinstance(body, dict) else None
        if not isinstance(views, dict) or not all(
                isinstance(v, dict) and isinstance(v.get("map"), str) for v in views.values()):
            return await self._fail(writer, keep, 400, "invalid_design_document",
                                    "a design document is an object whose \"views\" maps "
                                    "names to {\"map\": source[, \"reduce\": source]}")
        self.service.store(bucket, name, body)
        await self._send(writer, 201, {"ok": True, "id": "_design/" + name}, close=not keep)
        return False

    async def _registered(self, writer, keep, reg, rec):
        if reg.delay:
            if math.isinf(reg.delay):
                await asyncio.Event().wait()
            await asyncio.sleep(reg.delay)
        if reg.fault == "close":
            return True
        if reg.error is not None or (reg.http_status or 200) >= 300:
            return await self._fail(writer, keep, reg.http_status or 500, reg.error or "error",
                                    reg.reason or "registered failure")
        out = {"total_rows": reg.stream.count(reg.rows) if reg.total_rows is None
               else reg.total_rows, "rows": reg.rows}
        if reg.errors:
            out["errors"] = reg.errors
        if reg.stream.active:
            head, tail = rowstream.split_around(out, "rows", None)
            return await rowstream.send(writer, reg.http_status or 200, head, tail, reg.rows,
                                        reg.stream, keep, rec, separators=None)
        if reg.fault == "truncate":
            payload = json.dumps(out).encode("utf-8")
            writer.write(("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          "Content-Length: %d\r\n\r\n" % len(payload)).encode("latin-1")
                         + payload[:max(1, len(payload) // 2)])
            await writer.drain()
            return True
        await self._send(writer, reg.http_status or 200, out, close=not keep)
        return False

    def _compute(self, b, docs, ddoc, view, pairs, body):
        doc = docs.get(ddoc)
        if doc is None:
            raise ViewError(404, "not_found", "Design document _design/%s not found" % ddoc)
        spec = (doc.get("views") or {}).get(view)
        if spec is None:
            raise ViewError(404, "not_found", "missing_named_view")
        params = parse_params(pairs, body)
        fn = compile_map(spec.get("map"))
        reduce_src = spec.get("reduce")
        if fn is None or (reduce_src is not None and reduce_src.strip() not in _REDUCES):
            raise ViewError(500, "unsupported_map",
                            "the couchbase_ffi mock runs no JavaScript: _design/%s/_view/%s "
                            "is not one of its built-in forms (docs/mock.md); register a "
                            "result for it (MockCluster.view_register)" % (ddoc, view))
        if reduce_src is not None:
            reduce_src = reduce_src.strip()
        rows = []
        for key, it in b.live_docs():
            doc_id = key.decode("utf-8", "replace")
            try:
                value = json.loads(it.value.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                value = _UNDEF
            for k, v in fn(doc_id, value):
                rows.append((k, doc_id, v))
        return run_view(rows, params, reduce_src)


