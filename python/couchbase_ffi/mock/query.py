"""The mock's query service: ``POST /query/service`` on a port per query node.

It is not a N1QL engine.  It records every request for tests to inspect,
answers the statements a test registered (rows, errors, HTTP status,
delays, broken responses), and answers a small built-in subset from the KV
data (``SELECT RAW META().id FROM b``, ``SELECT META().id FROM b``,
``SELECT [RAW] COUNT(*) FROM b``, ``SELECT * FROM b USE KEYS ...``) and the
index statements of mock/indexes.py (CREATE / DROP / BUILD INDEX,
``system:indexes``).
Anything else gets a N1QL syntax error (code 3000, HTTP 400) that says so.
Prepared statements: ``PREPARE [FORCE] [name FROM|AS] <statement>`` stores
the statement and answers the prepared-statement object (``name``,
``encoded_plan``, ``operator``, ``signature``, ``text``...); a request with
``prepared`` (and perhaps ``encoded_plan``) runs the stored statement with
its own args; ``auto_execute`` runs it at once.  See docs/mock.md, "Query
service".

The port advertises itself in every config's ``nodesExt`` as ``n1ql``.
Basic credentials (or the body's ``creds``) of a known user are required:
401 with error 10000 otherwise.
"""
import asyncio
import base64
import gzip
import json
import math
import os
import re
import time
import uuid
from urllib.parse import parse_qs

from couchbase_ffi.mock.indexes import Indexes, IndexError_, parameter
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


_PREPARE = re.compile(r"(?is)^prepare\s+(force\s+)?(?:(`[^`]+`|\"[^\"]+\"|[A-Za-z_][\w-]*)"
                      r"\s+(?:from|as)\s+)?(.+)$")
# what a statement may start with: never a PREPARE name ("PREPARE DELETE FROM b" has none)
_VERBS = frozenset(("select", "delete", "insert", "update", "upsert", "merge", "with", "explain",
                    "infer", "create", "drop", "alter", "build", "grant", "revoke", "execute",
                    "advise", "update_statistics", "analyze", "begin", "commit", "rollback"))


def _local_name(name):
    """``[host:port]local`` -> ``local`` (the host part says where it was prepared)."""
    if name.startswith("[") and "]" in name:
        return name[name.index("]") + 1:]
    return name


def parse_prepare(statement):
    """(force, local name or None, statement) of a PREPARE statement, or None."""
    m = _PREPARE.match(statement)
    if m is None:
        return None
    force, name, rest = bool(m.group(1)), m.group(2), m.group(3)
    if name is not None and name.lower() in _VERBS:
        m2 = re.match(r"(?is)^prepare\s+(force\s+)?(.+)$", statement)
        name, rest = None, m2.group(2)
    elif name is not None and name[0] in "`\"":
        name = name[1:-1]
    return force, name, normalize(rest)


class Prepared(object):
    """One prepared statement: its local name, the statement it runs, the PREPARE text,
    and its encoded plan (the mock's own: gzip'd JSON in base64, as the service's look)."""

    def __init__(self, local, statement, text, epoch):
        self.local = local
        self.statement = statement
        self.text = text
        self.epoch = epoch
        doc = json.dumps({"name": local, "statement": statement, "text": text, "epoch": epoch},
                         sort_keys=True).encode("utf-8")
        self.encoded_plan = base64.b64encode(gzip.compress(doc, mtime=0)).decode("ascii")

    @classmethod
    def decode(cls, plan, epoch):
        """The Prepared an encoded plan describes, or None (not ours, or an older epoch)."""
        try:
            doc = json.loads(gzip.decompress(base64.b64decode(plan, validate=True)))
            if doc["epoch"] != epoch:
                return None
            return cls(doc["name"], doc["statement"], doc["text"], epoch)
        except (TypeError, ValueError, KeyError, OSError, EOFError):
            return None

    def full_name(self, host, port):
        return "[%s:%d]%s" % (host, port, self.local)

    def describe(self, host, port):
        """The row a PREPARE answers (the fields of the query service's, in its order)."""
        return {"encoded_plan": self.encoded_plan, "featureControls": 12, "indexApiVersion": 4,
                "name": self.full_name(host, port), "namespace": "default",
                "operator": {"#operator": "Sequence", "~children": [
                    {"#operator": "MockStatement", "statement": self.statement}]},
                "queryContext": "", "signature": {"*": "*"}, "text": self.text,
                "useCBO": True}


class QueryService(object):
    """The registrations and the request log, shared by every query node's server."""

    def __init__(self, state):
        self.state = state
        self.registrations = []     # newest first
        self.requests = []
        self.indexes = Indexes(state)   # index definitions (mock/indexes.py)
        self.prepared = {}          # local name -> Prepared
        self.plan_epoch = 0         # encoded plans of an older epoch do not decode (4070)

    def register(self, **kw):
        reg = Registration(**kw)
        self.registrations.insert(0, reg)
        return reg.describe()

    def match(self, statement, node, consume=True):
        for reg in self.registrations:
            if reg.statement == statement and (reg.node is None or reg.node == node):
                if consume and reg.count is not None:
                    reg.count -= 1
                    if reg.count <= 0:
                        self.registrations.remove(reg)
                return reg
        return None

    def clear(self):
        self.registrations = []
        self.requests = []

    # -- prepared statements (shared by every query node, as 6.5+ distributes them) ----------
    def prepare(self, local, statement, text, force):
        """The Prepared for ``local`` (None: a name made from the statement), created or
        found; raises _N1QLError 4060 for a name taken by another statement."""
        if local is None:
            local = str(uuid.uuid5(uuid.NAMESPACE_OID, statement))
        got = self.prepared.get(local)
        if got is not None and got.statement != statement:
            raise _N1QLError(4060, "Unable to add name: duplicate name: %s" % local)
        if got is None or force:
            got = self.prepared[local] = Prepared(local, statement, text, self.plan_epoch)
        return got

    def lookup(self, name, plan):
        """The Prepared that a request's ``prepared`` (and ``encoded_plan``) names, or
        _N1QLError as the query service answers: 4040 unknown name, 4070 a plan it cannot
        decode, 4090 a plan of another name, 4080 a plan that is not the name's."""
        local = _local_name(name)
        got = self.prepared.get(local)
        if plan is None:
            if got is None:
                raise _N1QLError(4040, "No such prepared statement: %s" % name)
            return got
        decoded = Prepared.decode(plan, self.plan_epoch)
        if decoded is None:
            raise _N1QLError(4070, "Unable to decode prepared statement")
        if decoded.local != local:
            raise _N1QLError(4090, "Mismatching name in encoded plan, expecting: %s, found: %s"
                             % (local, decoded.local))
        if got is None:     # decoded and kept, as the query service does
            got = self.prepared[local] = decoded
        elif got.encoded_plan != plan:
            raise _N1QLError(4080, "Encoded plan parameter does not match encoded plan of %s"
                             % name)
        return got

    def prepared_clear(self, invalidate_plans=False):
        """Forget every prepared statement; ``invalidate_plans``: the encoded plans handed
        out so far stop decoding too (4070), as after an upgrade."""
        n = len(self.prepared)
        self.prepared = {}
        if invalidate_plans:
            self.plan_epoch += 1
        return {"dropped": n, "plan_epoch": self.plan_epoch}


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
                       readonly=body.get("readonly"), creds=body.get("creds"),
                       prepared=body.get("prepared"), encoded_plan=body.get("encoded_plan"),
                       auto_execute=body.get("auto_execute"))
        self.service.requests.append(rec)
        ctx = body.get("client_context_id") if isinstance(body, dict) else None
        # "metrics": false (what SDKs send unless asked for metrics) leaves them out
        show = not (isinstance(body, dict) and body.get("metrics") in (False, "false"))
        ctx = (ctx, show, None)
        if not authorized:
            return await self._answer(writer, keep, started, ctx, [], [
                {"code": 10000, "msg": "Authentication failed"}], 401, "fatal")
        statement = body.get("statement") if isinstance(body, dict) else None
        prepared = body.get("prepared") if isinstance(body, dict) else None
        if not isinstance(statement, str) and not isinstance(prepared, str):
            return await self._answer(writer, keep, started, ctx, [], [
                {"code": 1050, "msg": "No statement or prepared value"}], 400, "fatal")
        if "auto_execute" in body and \
                "enhancedPreparedStatements" not in self.state.cluster_caps.get("n1ql", ()):
            # a service without enhanced prepared statements (before 6.5) knows no such field
            return await self._answer(writer, keep, started, ctx, [], [
                {"code": 1065, "msg": "Unrecognized parameter in request: auto_execute"}],
                400, "fatal")
        try:
            if isinstance(statement, str):
                statement = normalize(statement)
                parsed = parse_prepare(statement)
                # a registration of the PREPARE text itself answers it as registered
                if parsed is not None and self.service.match(statement, self.node,
                                                             consume=False) is None:
                    return await self._prepare(writer, keep, started, ctx, parsed, body, user,
                                               rec)
            else:
                got = self.service.lookup(prepared, body.get("encoded_plan"))
                statement = got.statement
            return await self._execute(writer, keep, started, ctx, statement, body, user, rec)
        except _N1QLError as e:
            return await self._answer(writer, keep, started, ctx, [], [
                {"code": e.code, "msg": e.msg}], http_status_for(e.code), "fatal")

    async def _execute(self, writer, keep, started, ctx, statement, body, user, rec=None):
        """Run ``statement`` (what a request or a prepared statement holds) with the
        request's parameters: a registration, a built-in, else a syntax error."""
        reg = self.service.match(statement, self.node)
        if reg is not None:
            return await self._registered(writer, keep, started, ctx, reg, rec)
        rows = self._builtin(statement, body, user)
        if rows is None:
            raise _N1QLError(3000, "syntax error - the couchbase_ffi mock's query service "
                             "does not know this statement; register an answer for it "
                             "(docs/mock.md)")
        return await self._answer(writer, keep, started, ctx, rows, None, 200, "success")

    async def _prepare(self, writer, keep, started, ctx, parsed, body, user, rec=None):
        """PREPARE: plan the statement (a registration whose first error is a parse or plan
        error, 3000-4999, fails here as the service fails at planning; a built-in checks its
        keyspace; anything else is a syntax error), store it, answer its description, or
        with ``auto_execute`` run it and name it in the response's ``prepared``."""
        force, local, statement = parsed
        reg = self.service.match(statement, self.node, consume=False)
        if reg is not None:
            errors = reg.errors
            code = int(errors[0].get("code", 5000)) if errors else 0
            if 3000 <= code < 5000:
                return await self._answer(writer, keep, started, ctx, [], errors,
                                          reg.http_status or http_status_for(code),
                                          reg.status or "errors")
        else:
            keyspace = self._builtin_keyspace(statement)
            if keyspace is None:
                raise _N1QLError(3000, "syntax error - the couchbase_ffi mock's query service "
                                 "does not know the statement to prepare; register an answer "
                                 "for it (docs/mock.md)")
            self._bucket(keyspace, user)
        got = self.service.prepare(local, statement, body["statement"], force)
        port = self.state.rest_port
        if body.get("auto_execute") in (True, "true"):
            ctx = (ctx[0], ctx[1], got.full_name(self.host, port))
            return await self._execute(writer, keep, started, ctx, statement, body, user, rec)
        return await self._answer(writer, keep, started, ctx, [got.describe(self.host, port)],
                                  None, 200, "success")

    async def _registered(self, writer, keep, started, ctx, reg, rec=None):
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
        (client_context_id, whether to include the metrics, the name of the statement a
        PREPARE with auto_execute prepared, or None)."""
        return json.dumps(self._doc(started, ctx, rows, errors, status, metrics, warnings),
                          separators=(",", ":")).encode("utf-8")

    def _doc(self, started, ctx, rows, errors, status, metrics=None, warnings=None,
             nrows=None, repeat=1, counted=None):
        """_payload's object; the metrics count ``nrows`` rows, ``counted`` sent
        ``repeat`` times (a streamed answer's), when given."""
        ctx, show_metrics, prepared = ctx
        elapsed = "%.3fms" % ((time.monotonic() - started) * 1000)
        out = {"requestID": os.urandom(16).hex()}
        if ctx is not None:
            out["clientContextID"] = ctx
        out["signature"] = {"*": "*"}
        if prepared is not None:
            out["prepared"] = prepared
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

    def _builtin_keyspace(self, statement):
        """The keyspace of a built-in statement (what a PREPARE checks), or None."""
        for rx in (self._IDS, self._COUNT):
            m = rx.match(statement)
            if m:
                return m.group(2)
        m = self._KEYS.match(statement)
        return m.group(1) if m else None

    def _builtin(self, statement, body, user):
        try:
            rows = self.service.indexes.run(statement, body, lambda ks: self._bucket(ks, user))
        except IndexError_ as e:
            raise _N1QLError(e.code, e.msg)
        if rows is not None:
            return rows
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
            try:
                value = parameter(body, spec)
            except LookupError:
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
        return self._bucket(name, user).live_docs()


class _N1QLError(Exception):
    def __init__(self, code, msg):
        Exception.__init__(self, msg)
        self.code = code
        self.msg = msg
