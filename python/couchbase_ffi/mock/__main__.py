"""``python -m couchbase_ffi.mock``: run a mock cluster until SIGINT/SIGTERM.

Example::

    python -m couchbase_ffi.mock --nodes 4 --replicas 2 \\
        --bucket default:couchbase:password --bucket cache:memcached: --json
"""
import argparse
import json
import logging
import signal
import sys
import threading

from couchbase_ffi.mock import BucketSpec, MockCluster


def parse_bucket(text, replicas, vbuckets):
    parts = text.split(":", 2)
    name = parts[0]
    btype = parts[1] if len(parts) > 1 and parts[1] else "couchbase"
    password = parts[2] if len(parts) > 2 else ""
    if not name:
        raise argparse.ArgumentTypeError("bucket needs a name: name:type:password")
    return BucketSpec(name, btype, password=password, replicas=replicas, vbuckets=vbuckets)


def parse_user(text):
    name, sep, password = text.partition(":")
    if not name or not sep:
        raise argparse.ArgumentTypeError("--user takes name:password")
    return name, password


def build_parser():
    p = argparse.ArgumentParser(prog="python -m couchbase_ffi.mock",
                                description="Run a mock Couchbase cluster on 127.0.0.1 until interrupted.")
    p.add_argument("--nodes", type=int, default=4, help="number of nodes (default 4)")
    p.add_argument("--replicas", type=int, default=1, help="replicas of couchbase buckets (default 1)")
    p.add_argument("--vbuckets", type=int, default=1024, help="vbuckets of couchbase buckets (default 1024)")
    p.add_argument("--bucket", action="append", default=[], metavar="NAME:TYPE:PASSWORD",
                   help="a bucket (repeatable); TYPE couchbase or memcached; default: default:couchbase:")
    p.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD",
                   help="an admin user (repeatable); default Administrator:password")
    p.add_argument("--kv-base-port", type=int, default=None, help="node i listens on BASE+i (default: free ports)")
    p.add_argument("--rest-port", type=int, default=0, help="REST port (default: a free port)")
    p.add_argument("--persist-delay", type=float, default=0.005, help="seconds before a mutation is persisted")
    p.add_argument("--replicate-delay", type=float, default=0.002, help="seconds before replicas get a mutation")
    p.add_argument("--query-nodes", default=None, metavar="I,J,...",
                   help="the nodes that run the query service (default: every node; '' = none)")
    p.add_argument("--tls-cert", default=None, metavar="PEM",
                   help="server certificate (chain): also serve TLS ports (kvSSL, mgmtSSL, n1qlSSL)")
    p.add_argument("--tls-key", default=None, metavar="PEM", help="the certificate's private key")
    p.add_argument("--refuse-features", default="", metavar="F,G,...",
                   help="HELLO feature codes to refuse although implemented (e.g. 0x0d: no config push)")
    p.add_argument("--no-enhanced-prepared", action="store_true",
                   help="a query service before 6.5: no enhancedPreparedStatements in "
                        "clusterCapabilities, auto_execute refused")
    p.add_argument("--json", action="store_true", help="print one JSON line with ports and connection strings")
    p.add_argument("--debug", action="store_true", help="log protocol details (unknown opcodes, HELLO) to stderr")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="%(asctime)s %(name)s %(message)s")
    try:
        specs = [parse_bucket(b, args.replicas, args.vbuckets) for b in args.bucket] or \
            [BucketSpec("default", replicas=args.replicas, vbuckets=args.vbuckets)]
        users = dict(parse_user(u) for u in args.user) or {"Administrator": "password"}
        query_nodes = None if args.query_nodes is None else \
            [int(n) for n in args.query_nodes.split(",") if n.strip()]
        refuse = [int(f, 0) for f in args.refuse_features.split(",") if f.strip()]
    except (argparse.ArgumentTypeError, ValueError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    cluster = MockCluster(nodes=args.nodes, buckets=specs, users=users, kv_base_port=args.kv_base_port,
                          rest_port=args.rest_port, persist_delay=args.persist_delay,
                          replicate_delay=args.replicate_delay, query_nodes=query_nodes,
                          refuse_features=refuse, enhanced_prepared=not args.no_enhanced_prepared,
                          tls=(args.tls_cert, args.tls_key or args.tls_cert) if args.tls_cert else None)
    cluster.start()
    done = threading.Event()

    def on_signal(signum, frame):
        done.set()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    info = {"kv_ports": cluster.kv_ports, "rest_port": cluster.rest_port,
            "query_ports": cluster.query_ports,
            "buckets": dict((s.name, {"type": s.type, "connstr": cluster.connstr(s.name),
                                      "http_connstr": cluster.http_connstr(s.name)}) for s in specs),
            "users": sorted(users)}
    if args.tls_cert:
        info.update(kv_ssl_ports=cluster.kv_ssl_ports, rest_ssl_port=cluster.rest_ssl_port,
                    query_ssl_ports=cluster.query_ssl_ports)
        for s in specs:
            info["buckets"][s.name]["tls_connstr"] = cluster.tls_connstr(s.name)
    if args.json:
        print(json.dumps(info), flush=True)
    else:
        print("mock cluster: %d nodes, KV ports %s, REST port %d" % (
            args.nodes, cluster.kv_ports, cluster.rest_port))
        for s in specs:
            print("  %-10s %-9s %s" % (s.name, s.type, cluster.connstr(s.name)))
            print("  %-10s %-9s %s" % ("", "", cluster.http_connstr(s.name)))
        print("control: POST http://127.0.0.1:%d/mock/<action> (admin credentials); Ctrl-C stops"
              % cluster.rest_port, flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
