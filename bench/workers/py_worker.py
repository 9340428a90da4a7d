"""One benchmark worker: a client family, an operation, a fixed duration.

Prints one JSON line {"ops", "wall", "cpu"} for the measured window (after
warm-up), plus "server_cpu" with --server-pid (the CPU seconds that process,
the memcached under test, used in the window).  Keys are 13 bytes, values 128
bytes; multi operations use 100 keys and count keys.  Runs on CPython and PyPy.
"""
import argparse
import json
import os
import threading
import time

VALUE = b"v" * 128
BATCH = 100


def keys_for(thread, n):
    return ["k%02d%010d" % (thread, i) for i in range(n)]


def make_client(name, port, connstr=None, password=None):
    if name == "cbffi":
        from couchbase_ffi.bucket import Bucket
        from couchbase_ffi import FMT_BYTES
        b = Bucket(connstr or "memcached://127.0.0.1:%d" % port, password=password)
        # bound methods where no argument is added, as for the other clients (a
        # lambda around them would cost cbffi a Python call per operation that
        # pylibmc's mc.get does not pay)
        return {
            "get": b.get,
            "set": lambda k: b.upsert(k, VALUE, format=FMT_BYTES),
            "get_multi": b.get_multi,
            "set_multi": lambda ks: b.upsert_multi(dict.fromkeys(ks, VALUE), format=FMT_BYTES),
        }
    if name in ("pylibmc", "pylibmc-binary"):
        import pylibmc
        mc = pylibmc.Client(["127.0.0.1:%d" % port], binary=name.endswith("binary"))
        return {"get": mc.get, "set": lambda k: mc.set(k, VALUE),
                "get_multi": mc.get_multi,
                "set_multi": lambda ks: mc.set_multi(dict.fromkeys(ks, VALUE))}
    if name == "pymemcache":
        from pymemcache.client.base import Client
        mc = Client(("127.0.0.1", port), no_delay=True, default_noreply=False)
        return {"get": mc.get, "set": lambda k: mc.set(k, VALUE),
                "get_multi": mc.get_many,
                "set_multi": lambda ks: mc.set_many(dict.fromkeys(ks, VALUE))}
    raise SystemExit("unknown client " + name)


def server_cpu(pid):
    """CPU seconds used so far by every thread of process pid (schedstat, ns)."""
    if not pid:
        return 0.0
    total = 0
    base = "/proc/%d/task" % pid
    for tid in os.listdir(base):
        try:
            with open("%s/%s/schedstat" % (base, tid)) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e9


def run_loop(fn, arg_of, stop_at):
    n = 0
    i = 0
    while time.time() < stop_at:
        fn(arg_of(i))
        i += 1
        n += 1
    return n


def worker(args, thread, counts, ready, go):
    """Warm up, signal ready, wait for go, then run the timed loop."""
    ops = make_client(args.client, args.port, args.connstr, args.password)
    multi = args.op.endswith("multi")
    keys = keys_for(thread, 1000)
    for k in keys:
        ops["set"](k)
    fn = ops[args.op]
    if multi:
        batches = [keys[i:i + BATCH] for i in range(0, len(keys), BATCH)]
        arg_of = lambda i: batches[i % len(batches)]  # noqa: E731
    else:
        arg_of = lambda i: keys[i % len(keys)]  # noqa: E731
    run_loop(fn, arg_of, time.time() + args.warmup)
    ready.release()
    go.wait()
    n = run_loop(fn, arg_of, time.time() + args.duration)
    counts[thread] = n * (BATCH if multi else 1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--client", required=True)
    p.add_argument("--op", required=True, choices=["get", "set", "get_multi", "set_multi"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=0, help="0 = the main thread")
    p.add_argument("--server-pid", type=int, default=0)
    p.add_argument("--connstr", default=None, help="cbffi: instead of memcached://127.0.0.1:PORT")
    p.add_argument("--password", default=None)
    args = p.parse_args()
    n = max(args.threads, 1)
    counts = [0] * n
    ready = threading.Semaphore(0)
    go = threading.Event()
    if args.threads == 0:
        # the main thread: warm up, then measure exactly the timed loop
        t = threading.Thread(target=lambda: (ready.acquire(), go.set()))
        t.start()
        holder = {}
        orig_set = go.set

        def start_clock():
            holder["s"] = server_cpu(args.server_pid)
            holder["w"], holder["c"] = time.time(), time.process_time()
            orig_set()
        go.set = start_clock
        worker(args, 0, counts, ready, go)
        wall, cpu = time.time() - holder["w"], time.process_time() - holder["c"]
        scpu = server_cpu(args.server_pid) - holder["s"]
        t.join()
    else:
        ths = [threading.Thread(target=worker, args=(args, i, counts, ready, go))
               for i in range(n)]
        for t in ths:
            t.start()
        for _ in ths:
            ready.acquire()
        s0 = server_cpu(args.server_pid)
        w0, c0 = time.time(), time.process_time()
        go.set()
        for t in ths:
            t.join()
        wall, cpu = time.time() - w0, time.process_time() - c0
        scpu = server_cpu(args.server_pid) - s0
    out = {"ops": sum(counts), "wall": wall, "cpu": cpu}
    if args.server_pid:
        out["server_cpu"] = scpu
    print(json.dumps(out))


if __name__ == "__main__":
    main()
