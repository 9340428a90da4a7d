#!/usr/bin/env python3
"""Interleaved A/B runs of single benchmark rows (bench/workers/py_worker.py), for
comparing two trees (or a tree and a peer client) on a shared, noisy machine:
client CPU per op from the worker's getrusage (process_time) and ops/s, median
and min-max over REPS repetitions taken in turn, variant by variant.

    tools/ab.py --port P [--server-pid PID] --op get|set|get_multi|set_multi \\
        [--reps 7] [--duration 1.5] [--warmup 0.8] [--pin 0] \\
        LABEL=[CLIENT]:PYTHONDIR[:WORKER[:INTERP]] ...

CLIENT defaults to cbffi, WORKER to this tree's py_worker.py, INTERP to
/usr/bin/python3.  PYTHONDIR is put first on PYTHONPATH (a tree's python/ with
its extension built in place).  Against a memcached the caller started, e.g.

    taskset -c 0 memcached -u nobody -l 127.0.0.1 -p 22411 -t 2 -U 0 &
    tools/ab.py --port 22411 --server-pid $! --op get_multi \\
        base=:/tmp/main/python:/tmp/main/bench/workers/py_worker.py new=:python \\
        pypy=:python::/usr/bin/pypy3 pylibmc=pylibmc:python
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "bench", "workers", "py_worker.py")


def parse_variant(spec):
    label, rest = spec.split("=", 1)
    parts = rest.split(":")
    client = parts[0] or "cbffi"
    pdir = parts[1] if len(parts) > 1 else os.path.join(ROOT, "python")
    worker = parts[2] if len(parts) > 2 and parts[2] else WORKER
    interp = parts[3] if len(parts) > 3 and parts[3] else "/usr/bin/python3"
    return label, client, os.path.abspath(pdir), worker, interp


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", required=True)
    ap.add_argument("--server-pid", default="0")
    ap.add_argument("--op", required=True, choices=["get", "set", "get_multi", "set_multi"])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--duration", default="1.5")
    ap.add_argument("--warmup", default="0.8")
    ap.add_argument("--pin", default="0", help="taskset CPU list ('' = no pinning)")
    ap.add_argument("variants", nargs="+")
    a = ap.parse_args()
    variants = [parse_variant(v) for v in a.variants]
    samples = {v[0]: [] for v in variants}
    for _ in range(a.reps):
        for label, client, pdir, worker, interp in variants:
            env = dict(os.environ, PYTHONPATH=pdir + ":/usr/lib/python3/dist-packages")
            cmd = ([ "taskset", "-c", a.pin] if a.pin else []) + [
                interp, worker, "--client", client, "--op", a.op, "--port", a.port,
                "--duration", a.duration, "--warmup", a.warmup, "--server-pid", a.server_pid]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if out.returncode:
                sys.exit("%s failed: %s" % (label, out.stderr.strip()[-500:]))
            d = json.loads(out.stdout.strip().splitlines()[-1])
            samples[label].append((d["cpu"] / d["ops"] * 1e6, d["ops"] / d["wall"],
                                   d.get("server_cpu", 0) / d["ops"] * 1e6))
    unit = "key" if a.op.endswith("multi") else "op"
    for label, client, pdir, worker, interp in variants:
        cpu = sorted(s[0] for s in samples[label])
        rate = sorted(s[1] for s in samples[label])
        srv = statistics.median(s[2] for s in samples[label])
        print("%-14s %-6s %-9s client CPU us/%s %.3f [%.3f-%.3f]  %s/s %.0f [%.0f-%.0f]  "
              "server us/%s %.3f" % (label, os.path.basename(interp), a.op, unit,
                                     statistics.median(cpu), cpu[0], cpu[-1], unit,
                                     statistics.median(rate), rate[0], rate[-1], unit, srv))


if __name__ == "__main__":
    main()
