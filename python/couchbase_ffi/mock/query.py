"""The mock's query service: ``POST /query/service`` on a port per query node.

It is not a N1QL engine.  It records every request for tests to inspect,
answers the statements a test registered (rows, errors, HTTP status,
delays, broken responses), and answers a small built-in subset from the KV
data (``SELECT RAW META().id FROM b``, ``SELECT META().id FROM b``,
``SELECT [RAW] COUNT(*) FROM b``, ``SELECT * FROM b USE KEYS ...``).
Anything else gets a N1QL syntax error (code 3000, HTTP 400) that says so.
See docs/mock.md, "Query service".

The port advertises itself in every config's ``nodesExt`` as ``n1ql``.
Basic credentials (or the body's ``creds``) of a known user are required:
401 with error 10000 otherwise.
"""
import asyncio
import json
import math
import os
import re
import time
from urllib.parse import parse_qs

from couchbase_ffi.mock import rowstream
from couchbase_ffi.mock.rest import ServiceServer, basic_auth
from couchbase_ffi.mock.state import COUCHBASE

_FAULTS = ("close", "garbage", "truncate")


class Registration(object):
    """One registered answer: for ``statement`` (exact, surrounding spaces and a final
    ``;`` ignored), on ``node`` (None = any), ``count`` times (None = until cleared)."""

    def __init__(self, statement, rows=None, errors=None, http_status=None, status=None,
                 delay=0.0, fault=None, count=None, node=None, metrics=None, warnings=None,
                 row_delay=0.0, repeat=None, cut_after=None, cut=None, chunked=False):
        if not isinstance(statement, str) or not statement.strip():
            raise ValueError("statement must be a non-empty string")
        if fault is not None and fault not in _FAULTS:
            raise ValueError("fault must be one of %s" % (", ".join(_FAULTS),))
        if isinstance(delay, str):
            delay = float(delay)      # "inf" over HTTP: never answer
        if delay < 0:
            raise ValueError("delay must be >= 0")
        if errors is not None:
            if not isinstance(errors, list) or not all(isinstance(e, dict) for e in errors):
                raise ValueError("errors must be a list of objects like {\"code\": 3000, \"msg\": ...}")
        if rows is not None and not isinstance(rows, list):
            raise ValueError("rows must be a list")
        self.statement = normalize(statement)
        self.rows = rows if rows is not None else []
        self.errors = errors
        self.http_status = int(http_status) if http_status is not None else None
        self.status = status
        self.delay = float(delay)
        self.fault = fault
        self.count = None if count is None else int(count)
        self.node = None if node is None else int(node)
        self.metrics = metrics or {}
        self.warnings = warnings
        # streamed answers (mock/rowstream.py)
        self.stream = rowstream.RowStream(row_delay, repeat, cut_after, cut, chunked)

    def describe(self):
        out = {"statement": self.statement, "rows": len(self.rows), "errors": self.errors,
               "http_status": self.http_status, "delay": _json_num(self.delay),
               "fault": self.fault, "count": self.count, "node": self.node}
        out.update(self.stream.describe())
        return out


def _json_num(v):
    return "inf" if v == float("inf") else v


def normalize(statement):
    s = statement.strip()
    while s.endswith(";"):
        s = s[:-1].rstrip()
    return s


def http_status_for(code):
    """The HTTP status the query service answers for a N1QL error code (by range, as
    the query service maps them)."""
    if code in (10000, 13014):
        return 401
    if code == 1000:
        return 403
    if 3000 <= code < 4000:
        return 400
    if 4000 <= code < 5000:
        return 404
    return 500


class QueryService(object):
    """The registrations and the request log, shared by every query node's server."""

    def __init__(self, state):
        self.state = state
        self.registrations = []     # newest first
        self.requests = []

    def register(self, **kw):
        reg = Registration(**kw)
        self.registrations.insert(0, reg)
        return reg.describe()

    def match(self, statement, node):
        for reg in self.registrations:
            if reg.statement == statement and (reg.node is None or reg.node == node):
                if reg.count is not None:
                    reg.count -= 1
                    if reg.count <= 0:
                        self.registrations.remove(reg)
                return reg
        return None

    def clear(self):
        self.registrations = []
        self.requests = []


class QueryServer(ServiceServer):
    """One node's query port.  HTTP plumbing from RestServer; only the dispatch differs."""
    PORT_ATTR, SSL_PORT_ATTR = "query_port", "query_ssl_port"

    # -- one request --------------------------------------------------------------------------
    def _creds(self, headers, body):
        """(user, authorized): Basic credentials, else the body's ``creds`` list."""
        login = basic_auth(headers)
        pairs = [login] if login else []
        creds = body.get("creds") if isinstance(body, dict) else None
        if isinstance(creds, list):
            for c in creds:
                if isinstance(c, dict):
                    pairs.append((str(c.get("user", "")), str(c.get("pass", ""))))
        for user, pw in pairs:
            if self.state.creds.check_plain(user, pw):
                return user, True
        return (pairs[0][0] if pairs else None), False

    async def _dispatch(self, writer, method, target, headers, raw, keep):
        started = time.monotonic()
        path = target.split("?", 1)[0].rstrip("/")
        if path != "/query/service" and path != "/query":
            await self._send(writer, 404, {"errors": [{"code": 1010, "msg": "no such endpoint"}]},
                             close=not keep)
            return False
        if method != "POST":
            await self._send(writer, 405, {"errors": [{"code": 1010, "msg":
                             "the mock's query service takes POST only"}]}, close=not keep)
            return False
        ctype = headers.get("content-type", "")
        try:
            if ctype.startswith("application/x-www-form-urlencoded"):
                body = dict((k, v[-1]) for k, v in parse_qs(raw.decode("utf-8")).items())
            else:
                body = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            body = None
        user, authorized = self._creds(headers, body)
        rec = {"node": self.node, "user": user, "authorized": authorized, "content_type": ctype,
               "body": body}
        if isinstance(body, dict):
            rec.update(statement=body.get("statement"), args=body.get("args"),
                       named=dict((k, v) for k, v in body.items() if k.startswith("$")),
                       scan_consistency=body.get("scan_consistency"),
                       scan_vectors=body.get("scan_vectors"), timeout=body.get("timeout"),
                       client_context_id=body.get("client_context_id"),
                       readonly=body.get("readonly"), creds=body.get("creds"))
        self.service.requests.append(rec)
        ctx = body.get("client_context_id") if isinstance(body, dict) else None
        # "metrics": false (what SDKs send unless asked for metrics) leaves them out
        show = not (isinstance(body, dict) and body.get("metrics") in (False, "false"))
        ctx = (ctx, show)
        if not authorized:
            return await self._answer(writer, keep, started, ctx, [], [
                {"code": 10000, "msg": "Authentication failed"}], 401, "fatal")
        if not isinstance(body, dict) or not isinstance(body.get("statement"), str):
            return await self._answer(writer, keep, started, ctx, [], [
                {"code": 1050, "msg": "No statement or prepared value"}], 400, "fatal")
        statement = normalize(body["statement"])
        reg = self.service.match(statement, self.node)
        if reg is not None:
            return await self._registered(writer, keep, started, ctx, reg, rec)
        try:
            rows = self._builtin(statement, body, user)
        except _N1QLError as e:
            return await self._answer(writer, keep, started, ctx, [], [
                {"code": e.code, "msg": e.msg}], http_status_for(e.code), "fatal")
        if rows is None:
            return await self._answer(writer, keep, started, ctx, [], [
                {"code": 3000, "msg": "syntax error - the couchbase_ffi mock's query service "
                 "does not know this statement; register an answer for it (docs/mock.md)"}],
                400, "fatal")
        return await self._answer(writer, keep, started, ctx, rows, None, 200, "success")

    async def _registered(self, writer, keep, started, ctx, reg, rec):
        if reg.delay:
            if math.isinf(reg.delay):
                await asyncio.Event().wait()     # silent until the client gives up
            await asyncio.sleep(reg.delay)
        if reg.fault == "close":
            return True
        if reg.fault == "garbage":
            writer.write(b"\xde\xad this is not HTTP \xbe\xef\r\n\r\n")
            await writer.drain()
            return True
        errors = reg.errors
        status = reg.status or ("success" if not errors else "errors")
        http = reg.http_status or (200 if not errors else http_status_for(
            int(errors[0].get("code", 5000))))
        if reg.fault == "truncate":
            payload = self._payload(started, ctx, reg.rows, errors, status, reg.metrics,
                                    reg.warnings)
            head = ("HTTP/1.1 %d OK\r\nContent-Type: application/json\r\nContent-Length: %d"
                    "\r\n\r\n" % (http, len(payload))).encode("latin-1")
            writer.write(head + payload[:max(1, len(payload) // 2)])
            await writer.drain()
            return True
        if reg.stream.active:
            doc = self._doc(started, ctx, [], errors, status, reg.metrics, reg.warnings,
                            reg.stream.count(reg.rows), reg.stream.repeat or 1, reg.rows)
            head, tail = rowstream.split_around(doc, "results", (",", ":"))
            return await rowstream.send(writer, http, head, tail, reg.rows, reg.stream, keep,
                                        rec)
        return await self._answer(writer, keep, started, ctx, reg.rows, errors, http, status,
                                  reg.metrics, reg.warnings)

    def _payload(self, started, ctx, rows, errors, status, metrics=None, warnings=None):
        """The response body, fields in the query service's order.  ``ctx`` is
        (client_context_id, whether to include the metrics)."""
        return json.dumps(self._doc(started, ctx, rows, errors, status, metrics, warnings),
                          separators=(",", ":")).encode("utf-8")

    def _doc(self, started, ctx, rows, errors, status, metrics=None, warnings=None,
             nrows=None, repeat=1, counted=None):
        """_payload's object; the metrics count ``nrows`` rows, ``counted`` sent
        ``repeat`` times (a streamed answer's), when given."""
        ctx, show_metrics = ctx
        elapsed = "%.3fms" % ((time.monotonic() - started) * 1000)
        out = {"requestID": os.urandom(16).hex()}
        if ctx is not None:
            out["clientContextID"] = ctx
        out["signature"] = {"*": "*"}
        out["results"] = rows
        if errors:
            out["errors"] = errors
        if warnings:
            out["warnings"] = warnings
        out["status"] = status
        counted = rows if counted is None else counted
        m = {"elapsedTime": elapsed, "executionTime": elapsed,
             "resultCount": len(rows) if nrows is None else nrows,
             "resultSize": len(json.dumps(counted, separators=(",", ":"))) * repeat}
        if errors:
            m["errorCount"] = len(errors)
        if warnings:
            m["warningCount"] = len(warnings)
        m.update(metrics or {})
        if show_metrics:
            out["metrics"] = m
        return out

    async def _answer(self, writer, keep, started, ctx, rows, errors, http, status,
                      metrics=None, warnings=None):
        await self._send(writer, http, self._payload(started, ctx, rows, errors, status, metrics,
                                                     warnings), close=not keep)
        return False

    # -- the built-in statements, answered from the KV data -----------------------------------
    _KS = r"`?([A-Za-z0-9_.%-]+)`?"
    _IDS = re.compile(r"(?is)^select\s+(raw\s+)?meta\s*\(\s*\)\s*\.\s*id\s+from\s+" + _KS + r"$")
    _COUNT = re.compile(r"(?is)^select\s+(raw\s+)?count\s*\(\s*\*\s*\)\s+from\s+" + _KS + r"$")
    _KEYS = re.compile(r"(?is)^select\s+\*\s+from\s+" + _KS + r"\s+use\s+keys\s+(.+)$")

    def _builtin(self, statement, body, user):
        m = self._IDS.match(statement)
        if m:
            ids = sorted(k.decode("utf-8", "replace") for k, _ in self._docs(m.group(2), user))
            return ids if m.group(1) else [{"id": k} for k in ids]
        m = self._COUNT.match(statement)
        if m:
            n = sum(1 for _ in self._docs(m.group(2), user))
            return [n] if m.group(1) else [{"$1": n}]
        m = self._KEYS.match(statement)
        if m:
            name, spec = m.group(1), m.group(2).strip()
            keys = self._keys_of(spec, body)
            b = self._bucket(name, user)
            rows = []
            for k in keys:
                got = b.get_doc(k.encode("utf-8"))
                if got is None:
                    continue
                try:
                    value = json.loads(got[0].decode("utf-8"))
                except (ValueError, UnicodeDecodeError):
                    continue    # not JSON: left out (see docs/mock.md)
                rows.append({name: value})
            return rows
        return None

    @staticmethod
    def _keys_of(spec, body):
        if spec.startswith("$"):
            name = spec[1:]
            if name.isdigit():
                args = body.get("args") or []
                i = int(name) - 1
                if not 0 <= i < len(args):
                    raise _N1QLError(5010, "Error evaluating USE KEYS: no value for %s" % spec)
                value = args[i]
            elif "$" + name in body:
                value = body["$" + name]
            else:
                raise _N1QLError(5010, "Error evaluating USE KEYS: no value for %s" % spec)
        else:
            try:
                value = json.loads(spec)
            except ValueError:
                raise _N1QLError(3000, "syntax error - USE KEYS takes a JSON string or array "
                                 "here (the mock's built-in subset)")
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(k, str) for k in value):
            return value
        raise _N1QLError(5010, "USE KEYS takes a string or an array of strings")

    def _bucket(self, name, user):
        b = self.state.buckets.get(name)
        if b is None or b.type != COUCHBASE:
            raise _N1QLError(12003, "Keyspace not found in CB datastore: default:%s" % name)
        if not self.state.may_access(user, name):
            raise _N1QLError(13014, "User does not have credentials to run SELECT queries on "
                             "default:%s. Add role query_select on default:%s to allow the "
                             "statement to run." % (name, name))
        return b

    def _docs(self, name, user):
        """(key, Item) of every live document, from the active copies."""
        b = self._bucket(name, user)
        for vb, chain in enumerate(b.chains):
            node = chain[0]
            if node < 0:
                continue
            store = b.stores[node].get(vb)
            if not store:
                continue
            for key in list(store):
                it = self.state.live(store, key)
                if it is not None:
                    yield key, it


class _N1QLError(Exception):
    def __init__(self, code, msg):
        Exception.__init__(self, msg)
        self.code = code
        self.msg = msg
