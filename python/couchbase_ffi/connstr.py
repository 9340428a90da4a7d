"""Connection strings as the couchbase 2.x ``couchbase.connstr`` module has them.

``ConnectionString`` parses and rebuilds a connection string (scheme, hosts,
bucket, options - each option a list of values, as ``parse_qs`` gives) and
may be passed to ``Bucket`` instead of a string.  ``convert_1x_args`` turns
the 1.x ``host=``/``port=`` constructor arguments into a connection string.

``for_client`` is what the Bucket does with a connection string before the
C core parses it: libcouchbase options that change nothing a client of
this library can observe are dropped (see ``IGNORED_OPTIONS``); the ones it
honours differently are returned separately.
"""
import copy

from urllib.parse import urlparse, parse_qs, urlencode

# libcouchbase 2.x connection-string options this client accepts and ignores:
# tuning, logging, tracing and metadata that change nothing a caller can observe
# here (the TLS options, ssl= / truststorepath= / certpath=, go to the core).
IGNORED_OPTIONS = frozenset((
    "detailed_errcodes", "client_string", "fetch_mutation_tokens", "enable_mutation_tokens",
    "dur_mutation_tokens", "compression", "compression_min_size", "compression_min_ratio",
    "tcp_nodelay", "tcp_keepalive", "config_node_timeout",
    "config_cache_ro", "http_poolsize", "http_urlmode", "error_map",
    "select_bucket", "log_redaction", "enable_tracing", "tracing_orphaned_queue_flush_interval",
    "tracing_orphaned_queue_size", "tracing_threshold_queue_flush_interval",
    "tracing_threshold_queue_size", "tracing_threshold_kv", "tracing_threshold_n1ql",
    "tracing_threshold_view", "tracing_threshold_fts", "tracing_threshold_analytics",
    "console_log_level", "console_log_file", "dnssrv", "ipv6", "retry_backoff",
    "retry_interval", "wait_for_config", "unsafe_optimize", "max_redirects",
    "randomize_nodes", "vb_noguess", "cbas_timeout", "fts_timeout",
))

# Options the Bucket applies itself (a timeout kind of libcbffi, or an attribute).
BUCKET_OPTIONS = frozenset(("durability_timeout", "durability_interval", "views_timeout",
                            "n1ql_timeout", "http_timeout", "config_cache"))


def is_tls(connstr):
    """Whether the connection string asks for TLS: couchbases://, or ssl=on / no_verify."""
    if isinstance(connstr, ConnectionString):
        connstr = connstr.encode()
    p = ConnectionString.parse(connstr)
    ssl = p.get_option("ssl")
    if ssl is not None:
        return ssl in ("on", "no_verify")
    return p.scheme.lower() == "couchbases"


def for_client(connstr):
    """(the connection string for the C core, {option: value} the Bucket applies).

    ``connstr`` may be a str or a ConnectionString; anything else is refused
    with TypeError."""
    if isinstance(connstr, ConnectionString):
        connstr = connstr.encode()
    if not isinstance(connstr, str):
        raise TypeError("a connection string (str or ConnectionString) is required, got %r"
                        % (connstr,))
    base, sep, query = connstr.partition("?")
    if not sep:
        return connstr, {}
    kept, applied = [], {}
    for part in query.split("&"):
        name = part.partition("=")[0]
        if name in IGNORED_OPTIONS:
            continue
        if name in BUCKET_OPTIONS:
            applied[name] = part.partition("=")[2]
            continue
        kept.append(part)
    return (base + "?" + "&".join(kept) if kept else base), applied


def mutation_tokens_asked(connstr):
    """True if the connection string turns on mutation tokens: either of
    ``fetch_mutation_tokens`` or ``enable_mutation_tokens`` = true/1/on/yes."""
    if isinstance(connstr, ConnectionString):
        connstr = connstr.encode()
    if not isinstance(connstr, str):
        return False
    on = False
    for part in connstr.partition("?")[2].split("&"):
        name, _, value = part.partition("=")
        if name in ("fetch_mutation_tokens", "enable_mutation_tokens"):
            on = on or value.strip().lower() in ("1", "true", "on", "yes")
    return on


class ConnectionString(object):
    """A parsed connection string: ``scheme``, ``hosts`` (list), ``bucket`` and
    ``options`` (name -> list of values).  ``str()``/``encode()`` rebuild it.

    ``ConnectionString(bucket=, hosts=, options=, scheme=)`` as in 2.1+, or
    ``ConnectionString("couchbase://...")`` (a whole string, as 2.0 took it),
    or ``ConnectionString.parse("couchbase://...")``."""

    def __init__(self, bucket="default", hosts=None, options=None, scheme="couchbase"):
        if isinstance(bucket, str) and "://" in bucket and hosts is None and options is None:
            # 2.0's ConnectionString(connstr) parsed its one argument (2.1+ has
            # parse() for that; a bucket name cannot contain "/")
            parsed = self.parse(bucket)
            bucket, hosts, options, scheme = (parsed.bucket, parsed.hosts, parsed.options,
                                              parsed.scheme)
        self.bucket = bucket
        self.options = copy.copy(options) if options else {}
        self.hosts = copy.copy(hosts) if hosts else []
        self.scheme = scheme

    @classmethod
    def parse(cls, ss):
        """A ConnectionString holding the parts of the string ``ss``."""
        parsed = urlparse(ss)
        path = parsed.path.split("?", 1)[0]
        if path.startswith("/"):
            path = path[1:]
        return cls(bucket=path, options=parse_qs(parsed.query), scheme=parsed.scheme,
                   hosts=parsed.netloc.split(","))

    @classmethod
    def from_hb(cls, host, bucket):
        """couchbase://host/bucket."""
        return cls.parse("couchbase://%s/%s" % (host, bucket))

    @property
    def implicit_port(self):
        """The port a host without one gets (-1 for an unknown scheme)."""
        return {"http": 8091, "couchbase": 11210, "couchbases": 11207,
                "memcached": 11211}.get(self.scheme, -1)

    def get_option(self, optname, default=None):
        values = self.options.get(optname)
        return values[0] if values else default

    def set_option(self, optname, value):
        self.options[optname] = [value]

    def clear_option(self, optname):
        self.options.pop(optname, None)

    def encode(self):
        """The connection string (forward slashes in option values left as they are)."""
        out = "%s://%s" % (self.scheme, ",".join(self.hosts))
        if self.bucket:
            out += "/" + self.bucket
        if self.options:
            first = {k: v[0] for k, v in self.options.items() if v}
            out += "?" + urlencode(first).replace("%2F", "/")
        return out

    def __str__(self):
        return self.encode()

    def __repr__(self):
        return "ConnectionString(%r)" % (self.encode(),)


def _host_port(host, port):
    return host if port is None else "%s:%s" % (host, port)


def convert_1x_args(bucket, **kwargs):
    """The 2.x keyword arguments for 1.x's ``Connection(bucket, host=, port=, ...)``:
    ``host`` (a name, or a list of names or (name, port) pairs) and ``port``
    become an http:// ``connection_string`` unless one is already given."""
    host = kwargs.pop("host", "localhost")
    port = kwargs.pop("port", None)
    if isinstance(bucket, str) and "://" in bucket:
        # a whole connection string where the bucket goes (2.0-era callers of
        # Couchbase.connect(connstr)): a bucket name cannot contain "/"
        kwargs.setdefault("connection_string", bucket)
    elif "connstr" not in kwargs and "connection_string" not in kwargs:
        if isinstance(host, (list, tuple)):
            hosts = [_host_port(*h) if isinstance(h, (list, tuple)) else h for h in host]
        else:
            hosts = [_host_port(host, port)]
        kwargs["connection_string"] = "http://%s/%s" % (",".join(hosts), bucket)
    return kwargs
