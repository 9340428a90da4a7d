"""The cluster's REST (management) port: a small HTTP/1.1 server.

ns_server endpoints a client bootstraps from (``/pools``, ``/pools/default``,
``/pools/default/b/<bucket>``, the streaming ``/pools/default/bs/<bucket>``,
``/pools/default/buckets/<bucket>/ddocs`` (the view service's design documents),
``/pools/default/nodeServices``, flush) and the mock's own control endpoints
under ``/mock/`` (see docs/mock.md).  Every request needs HTTP Basic
credentials of a known user (401 otherwise; 404 for a bucket that does not exist
requested with its own name as the login, as pre-5.0 ns_server answered bucket
logins); ``/mock/`` needs an admin.
Configs served here have ``$HOST`` replaced by the address the client
connected to, as ns_server does with its local address.
"""
import asyncio
import base64
import json
import logging
from urllib.parse import parse_qs, unquote, urlsplit

from couchbase_ffi.mock.manage import Refused
from couchbase_ffi.mock.state import COUCHBASE

log = logging.getLogger("couchbase_ffi.mock.rest")

MAX_HEADER = 64 * 1024
MAX_BODY = 1 << 20
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Object Not Found",
            405: "Method Not Allowed", 413: "Request Entity Too Large", 500: "Internal Server Error"}
SEPARATOR = b"\n\n\n\n"


class HttpError(Exception):
    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code = code
        self.message = message


def basic_auth(headers):
    """(user, password) of a request's Basic Authorization header, or None."""
    auth = headers.get("authorization", "")
    if not auth.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(auth[6:].strip()).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password


class RestServer(object):
    """Serves the REST port; ``control`` is an async callable ``(action, params) -> JSON-able``."""

    def __init__(self, state, control, host="127.0.0.1"):
        self.state = state
        self.control = control
        self.host = host
        self.server = None
        self.writers = set()
        self.streams = set()    # asyncio.Event per streaming response
        self.stopping = False
        self.ssl = None          # an ssl.SSLContext: also serve https (mgmtSSL)
        self.tls_server = None
        self.views = None        # the ViewService, for /pools/default/buckets/<b>/ddocs
        self.manage = None       # mock/manage.py: bucket and user management
        state.listeners.append(self.notify)

    async def start(self, port):
        self.server = await asyncio.start_server(self._serve, self.host, port, reuse_address=True)
        self.state.rest_port = self.server.sockets[0].getsockname()[1]
        if self.ssl is not None:
            self.tls_server = await self._start_tls()
            self.state.rest_ssl_port = self.tls_server.sockets[0].getsockname()[1]

    async def _start_tls(self):
        return await asyncio.start_server(self._serve, self.host, 0, reuse_address=True,
                                          ssl=self.ssl, ssl_handshake_timeout=10)

    async def stop(self):
        self.stopping = True
        servers = [x for x in (self.server, self.tls_server) if x is not None]
        for x in servers:
            x.close()
        for w in list(self.writers):
            w.close()
        for ev in list(self.streams):
            ev.set()
        for x in servers:
            await x.wait_closed()
        self.server = self.tls_server = None

    def notify(self):
        for ev in list(self.streams):
            ev.set()

    # -- HTTP plumbing ------------------------------------------------------------------------
    async def _serve(self, reader, writer):
        self.writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.LimitOverrunError:
                    break
                if len(head) > MAX_HEADER:
                    break
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                if len(parts) != 3:
                    await self._send(writer, 400, {"error": "bad request line"}, close=True)
                    break
                method, target, _version = parts
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                try:
                    length = int(headers.get("content-length", "0") or 0)
                except ValueError:
                    length = -1
                if length < 0:
                    await self._send(writer, 400, {"error": "bad Content-Length"}, close=True)
                    break
                if length > MAX_BODY:
                    await self._send(writer, 413, {"error": "body too large"}, close=True)
                    break
                body = await reader.readexactly(length) if length else b""
                keep = headers.get("connection", "").lower() != "close"
                streaming = await self._dispatch(writer, method, target, headers, body, keep)
                if streaming or not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self.writers.discard(writer)
            try:
                writer.close()
            except Exception:   # noqa: BLE001
                pass

    async def _send(self, writer, code, payload, close=False, ctype="application/json"):
        if isinstance(payload, (dict, list)):
            body = json.dumps(payload).encode("utf-8")
        elif isinstance(payload, str):
            body = payload.encode("utf-8")
        else:
            body = payload
        head = ["HTTP/1.1 %d %s" % (code, _REASONS.get(code, "Error")),
                "Content-Type: %s" % ctype, "Content-Length: %d" % len(body),
                "Server: Couchbase Server (couchbase_ffi.mock)", "Cache-Control: no-cache"]
        if code == 401:
            head.append('WWW-Authenticate: Basic realm="Couchbase Server Admin / REST"')
        if close:
            head.append("Connection: close")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()

    def _user(self, headers):
        login = basic_auth(headers)
        return login[0] if login and self.state.creds.check_plain(*login) else None

    def _unknown_bucket_login(self, path, headers):
        """A request for a bucket that does not exist, logging in as that bucket (the
        pre-5.0 scheme, where a bucket's name was its user): ns_server answered 404
        then, which clients report as "no such bucket" rather than wrong credentials."""
        if not (len(path) == 4 and path[:2] == ["pools", "default"] and
                path[2] in ("b", "bs", "buckets", "bucketsStreaming")):
            return False
        name = path[3]
        if name in self.state.buckets:
            return False
        login = basic_auth(headers)
        return login is not None and login[0] == name

    @staticmethod
    def _local_host(writer):
        sock = writer.get_extra_info("sockname")
        host = sock[0] if sock else "127.0.0.1"
        return "[%s]" % host if ":" in host else host

    async def _dispatch(self, writer, method, target, headers, body, keep):
        url = urlsplit(target)
        path = [unquote(p) for p in url.path.split("/") if p]
        query = dict((k, v[-1]) for k, v in parse_qs(url.query).items())
        user = self._user(headers)
        log.debug("%s %s (user %s)", method, target, user)
        try:
            if user is None:
                if self._unknown_bucket_login(path, headers):
                    raise HttpError(404, "")
                raise HttpError(401, "")
            if path[:1] == ["mock"]:
                if not self.state.is_admin(user):
                    raise HttpError(403, {"error": "the mock's control needs an admin user"})
                result = await self._mock(method, path[1:], query, body)
                await self._send(writer, 200, result, close=not keep)
                return False
            if len(path) == 4 and path[:2] == ["pools", "default"] and path[2] in ("bs", "bucketsStreaming"):
                if method != "GET":
                    raise HttpError(405, {"error": "GET only"})
                await self._stream(writer, self._bucket_for(user, path[3]), self._local_host(writer))
                return True
            got = self._management(method, path, user, body)
            if got is not None:
                await self._send(writer, got[1], got[0], close=not keep)
                return False
            payload = self._route(method, path, user, self._local_host(writer))
            await self._send(writer, 200, payload, close=not keep)
        except HttpError as e:
            if e.code == 404 and not e.message:
                await self._send(writer, 404, "Requested resource not found.\r\n", close=not keep,
                                 ctype="text/plain")
            else:
                await self._send(writer, e.code, e.message, close=not keep)
        return False

    # -- ns_server endpoints -------------------------------------------------------------------
    def _management(self, method, path, user, body):
        """(payload, status) of a management endpoint (mock/manage.py), or None."""
        if self.manage is None:
            return None
        if not (path[:3] == ["settings", "rbac", "users"] or (
                path[:3] == ["pools", "default", "buckets"] and (
                    (len(path) == 3 and method == "POST")
                    or (len(path) == 4 and method in ("POST", "DELETE"))))):
            return None
        if not self.state.is_admin(user):
            raise HttpError(403, {"message": "Forbidden. User needs the following permissions",
                                  "permissions": ["cluster.settings!write"]})
        try:
            form = dict((k, v[-1]) for k, v in parse_qs(body.decode("utf-8"),
                                                         keep_blank_values=True).items())
        except UnicodeDecodeError:
            raise HttpError(400, {"errors": {"_": "the form is not UTF-8"}})
        try:
            return self.manage.route(method, path, form)
        except Refused as e:
            if e.code == 404:
                raise HttpError(404, "")
            raise HttpError(e.code, e.body)

    def _bucket_for(self, user, name):
        b = self.state.buckets.get(name)
        if b is None:
            raise HttpError(404, "")
        if not self.state.may_access(user, name):
            raise HttpError(403, {"message": "Forbidden. User needs the following permissions",
                                  "permissions": ["cluster.bucket[%s].settings!read" % name]})
        return b

    def _route(self, method, path, user, host):
        st = self.state
        if method == "POST" and len(path) == 6 and path[:3] == ["pools", "default", "buckets"] \
                and path[4:] == ["controller", "doFlush"]:
            b = self._bucket_for(user, path[3])
            if not b.spec.flush_enabled:
                raise HttpError(400, {"_": "Flush is disabled for the bucket"})
            for store in b.stores.values():
                store.clear()
            return {}
        if method != "GET":
            raise HttpError(405, {"error": "method not allowed"})
        if path == ["pools"]:
            return {"isAdminCreds": st.is_admin(user), "isROAdminCreds": False, "isEnterprise": True,
                    "pools": [{"name": "default", "uri": "/pools/default?uuid=%s" % st.cluster_uuid,
                               "streamingUri": "/poolsStreaming/default?uuid=%s" % st.cluster_uuid}],
                    "settings": {}, "uuid": st.cluster_uuid,
                    "implementationVersion": "7.6.0-0000-enterprise", "componentsVersion": {}}
        if path == ["pools", "default"]:
            return self._pool(host)
        if path == ["pools", "default", "nodeServices"]:
            servers = [n.index for n in st.nodes if not n.failed_over]
            return json.loads(st.global_config(None).replace("$HOST", host)) if servers else {}
        if path == ["pools", "default", "buckets"]:
            return [self._bucket_verbose(b, host) for name, b in sorted(st.buckets.items())
                    if st.may_access(user, name)]
        if len(path) == 5 and path[:3] == ["pools", "default", "buckets"] and path[4] == "ddocs":
            b = self._bucket_for(user, path[3])
            if b.type != COUCHBASE or self.views is None:
                raise HttpError(400, {"error": "no design documents on a %s bucket" % b.type})
            return self.views.listing(b.name)
        if len(path) == 4 and path[:3] == ["pools", "default", "buckets"]:
            return self._bucket_verbose(self._bucket_for(user, path[3]), host)
        if len(path) == 4 and path[:3] == ["pools", "default", "b"]:
            return json.loads(self._bucket_for(user, path[3]).config(None).replace("$HOST", host))
        raise HttpError(404, "")

    def _pool(self, host):
        st = self.state
        nodes = []
        for n in st.nodes:
            if n.failed_over:
                continue
            nodes.append({"hostname": "%s:%d" % (host, st.rest_port), "ports": {"direct": n.kv_port},
                          "status": "healthy" if n.running else "unhealthy",
                          "clusterMembership": "active", "otpNode": "n_%d@%s" % (n.index, host),
                          "services": ["kv"], "version": "7.6.0-0000-enterprise",
                          "thisNode": n.index == 0})
        return {"name": "default", "nodes": nodes, "rebalanceStatus": "none",
                "buckets": {"uri": "/pools/default/buckets?v=%d" % st.rev},
                "nodeStatusesUri": "/nodeStatuses", "clusterName": "couchbase_ffi.mock",
                "balanced": True}

    def _bucket_verbose(self, b, host):
        d = json.loads(b.config(None).replace("$HOST", host))
        d["replicaNumber"] = getattr(b, "num_replicas", 0)
        d["authType"] = "sasl"
        d["basicStats"] = {"itemCount": 0}
        d["controllers"] = {}
        if b.spec.flush_enabled:
            d["controllers"]["flush"] = "/pools/default/buckets/%s/controller/doFlush" % b.name
        quota = b.spec.ram_quota * 1024 * 1024
        d["quota"] = {"ram": quota * len(d.get("nodes", [])), "rawRAM": quota}
        d["proxyPort"] = 0
        # settings SDKs' bucket managers read (their defaults on a real server)
        d.update(evictionPolicy="valueOnly" if b.type == COUCHBASE else "noEviction",
                 conflictResolutionType="seqno", maxTTL=0, compressionMode="passive",
                 durabilityMinLevel="none", storageBackend="couchstore", replicaIndex=False)
        for entry, i in zip(d.get("nodes", []), b.servers()):   # in serverList order
            node = self.state.nodes[i]
            entry["status"] = "healthy" if node.running else "unhealthy"
            entry["version"] = "7.6.0-0000-enterprise"
            entry["services"] = ["kv"] + (["n1ql"] if node.query_port else []) + \
                (["capi"] if node.capi_port else [])
        if b.type != COUCHBASE:
            d["replicaNumber"] = 0
        return d

    async def _stream(self, writer, b, host):
        """Chunked: one terse config per change, each followed by four newlines (as ns_server)."""
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
                     b"Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n\r\n")
        ev = asyncio.Event()
        self.streams.add(ev)
        sent = None
        try:
            while not self.stopping and not writer.is_closing():
                if sent != self.state.rev:
                    sent = self.state.rev
                    data = b.config(None).replace("$HOST", host).encode("utf-8") + SEPARATOR
                    writer.write(b"%x\r\n%s\r\n" % (len(data), data))
                    await writer.drain()
                ev.clear()
                await ev.wait()
        finally:
            self.streams.discard(ev)

    # -- the mock's control -------------------------------------------------------------------
    async def _mock(self, method, path, query, body):
        if method == "GET" and path == ["state"]:
            return await self.control("state", {})
        if method == "GET" and path == ["doc"]:
            return await self.control("doc", query)
        if method != "POST" or len(path) != 1:
            raise HttpError(404, {"error": "unknown control endpoint"})
        try:
            params = json.loads(body.decode("utf-8")) if body.strip() else {}
        except ValueError:
            raise HttpError(400, {"error": "body is not JSON"})
        if not isinstance(params, dict):
            raise HttpError(400, {"error": "body must be a JSON object"})
        try:
            return await self.control(path[0], params)
        except KeyError as e:
            raise HttpError(404, {"error": "unknown action or name: %s" % (e,)})
        except (TypeError, ValueError, IndexError) as e:
            raise HttpError(400, {"error": str(e)})


class ServiceServer(RestServer):
    """One node's port of a service beside the REST port (query, capi): RestServer's
    HTTP plumbing without its config streams; the subclass names the node attributes
    its ports go to (PORT_ATTR, SSL_PORT_ATTR) and dispatches."""
    PORT_ATTR = SSL_PORT_ATTR = None

    def __init__(self, state, service, node, host="127.0.0.1"):
        # not RestServer.__init__: no config streams here
        self.state = state
        self.service = service
        self.node = node
        self.host = host
        self.server = None
        self.writers = set()
        self.streams = set()
        self.stopping = False
        self.ssl = None          # an ssl.SSLContext: also serve https
        self.tls_server = None

    async def start(self, port=0):
        self.server = await asyncio.start_server(self._serve, self.host, port, reuse_address=True)
        node = self.state.nodes[self.node]
        setattr(node, self.PORT_ATTR, self.server.sockets[0].getsockname()[1])
        if self.ssl is not None:
            self.tls_server = await self._start_tls()
            setattr(node, self.SSL_PORT_ATTR, self.tls_server.sockets[0].getsockname()[1])
