#!/usr/bin/env python3
"""The benchmark table: couchbase-ffi on PyPy and CPython beside pylibmc,
pymemcache, the C core alone (``cbffi bench``) and a raw-socket C floor, all
against one memcached this script starts on a free loopback port.

Two placements, because the box has 2 cores: "pinned" (client and server on
core 0: throughput = 1 / (client + server CPU per op), where a client's
efficiency shows) and "free" (no pinning: one sync request costs the wake-up
latency, ~120 us, and every client lands near the same rate).

    /usr/bin/python3 bench/run.py            # short version (~2 min)
    /usr/bin/python3 bench/run.py --full     # longer runs, 3 repetitions, 4-thread rows
Writes bench/out/results.md, results.json and chart.png.
"""
import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "bench", "out")
BUILD = os.path.join(ROOT, "build")
PY = "/usr/bin/python3"
PYPY = "/usr/bin/pypy3"
PYPATH = os.path.join(ROOT, "python") + ":/usr/lib/python3/dist-packages"
WORKER = os.path.join(ROOT, "bench", "workers", "py_worker.py")

# The seed's published figures (couchbase-python-cffi README), ops/s, 0 threads / 4 threads.
SEED = {("Twisted upsert C/T 1/1", "FFI (PyPy)"): 7583,
        ("Twisted upsert C/T 1/1", "FFI (CPython)"): 3502,
        ("Twisted upsert C/T 4/4", "FFI (PyPy)"): 26000,
        ("Twisted upsert C/T 4/4", "FFI (CPython)"): 7500,
        ("Twisted upsert C/T 10/10", "FFI (PyPy)"): 36277,
        ("Twisted upsert C/T 10/10", "FFI (CPython)"): 9273,
        ("sync get", "FFI (PyPy)"): 9440, ("sync upsert", "FFI (PyPy)"): 9440,
        ("sync get", "FFI (CPython)"): 4400, ("sync upsert", "FFI (CPython)"): 4400,
        ("sync get", "Ext (CPython)"): 11200, ("sync upsert", "Ext (CPython)"): 11200}

# (row, client label, seed label, command builder)
def py_cmd(interp, client, op, threads=0):
    return lambda port, d, w: [interp, WORKER, "--client", client, "--op", op, "--port",
                               str(port), "--duration", str(d), "--warmup", str(w),
                               "--threads", str(threads)]


ASYNC_WORKER = os.path.join(ROOT, "bench", "workers", "async_worker.py")


def async_cmd(interp, client, conns, chains):
    return lambda port, d, w: [interp, ASYNC_WORKER, "--client", client, "--port", str(port),
                               "--conns", str(conns), "--chains", str(chains),
                               "--duration", str(d), "--warmup", str(w)]


def cbench(op, batch):
    return lambda port, d, w: [os.path.join(BUILD, "cbffi"), "bench", "-U",
                               "memcached://127.0.0.1:%d" % port, "--op", op, "--batch",
                               str(batch), "--duration", str(d), "--warmup", str(w), "--json"]


def raw(op):
    return lambda port, d, w: [os.path.join(BUILD, "raw_floor"), str(port), op, str(d), str(w)]


def rows(full):
    r = []
    for name, op, mop in (("sync get", "get", None), ("sync upsert", "set", None)):
        r += [(name, "couchbase-ffi (PyPy)", "FFI (PyPy)", py_cmd(PYPY, "cbffi", op)),
              (name, "couchbase-ffi (CPython)", "FFI (CPython)", py_cmd(PY, "cbffi", op)),
              (name, "pylibmc (CPython)", "Ext (CPython)", py_cmd(PY, "pylibmc", op)),
              (name, "pymemcache (PyPy)", None, py_cmd(PYPY, "pymemcache", op)),
              (name, "cbffi bench (C core)", None, cbench(op, 1)),
              (name, "raw socket loop (C floor)", None, raw(op))]
        if full:
            r += [(name, "pylibmc binary (CPython)", None, py_cmd(PY, "pylibmc-binary", op)),
                  (name, "pymemcache (CPython)", None, py_cmd(PY, "pymemcache", op))]
    for name, op, cop in (("get_multi 100 (keys/s)", "get_multi", "get"),
                          ("upsert_multi 100 (keys/s)", "set_multi", "set")):
        r += [(name, "couchbase-ffi (PyPy)", None, py_cmd(PYPY, "cbffi", op)),
              (name, "couchbase-ffi (CPython)", None, py_cmd(PY, "cbffi", op)),
              (name, "pylibmc (CPython)", None, py_cmd(PY, "pylibmc", op)),
              (name, "pymemcache (PyPy)", None, py_cmd(PYPY, "pymemcache", op)),
              (name, "cbffi bench (C core)", None, cbench(cop, 100))]
    ct = ((1, 1), (4, 4), (10, 10)) if full else ((10, 10),)
    for c, t in ct:
        name = "Twisted upsert C/T %d/%d" % (c, t)
        r += [(name, "couchbase-ffi (PyPy)", "FFI (PyPy)", async_cmd(PYPY, "cbffi-twisted", c, t)),
              (name, "couchbase-ffi (CPython)", "FFI (CPython)",
               async_cmd(PY, "cbffi-twisted", c, t)),
              (name, "twisted.protocols.memcache (PyPy)", None,
               async_cmd(PYPY, "twisted-memcache", c, t)),
              (name, "twisted.protocols.memcache (CPython)", None,
               async_cmd(PY, "twisted-memcache", c, t)),
              # the least a pure-Python Twisted client does per op: the reactor's floor
              (name, "twisted minimal protocol (PyPy)", None,
               async_cmd(PYPY, "twisted-minimal", c, t)),
              (name, "twisted minimal protocol (CPython)", None,
               async_cmd(PY, "twisted-minimal", c, t))]
        name = "asyncio upsert C/T %d/%d" % (c, t)
        r += [(name, "couchbase-ffi (PyPy)", None, async_cmd(PYPY, "cbffi-asyncio", c, t)),
              (name, "couchbase-ffi (CPython)", None, async_cmd(PY, "cbffi-asyncio", c, t))]
    if full:
        for name, op in (("sync upsert, 4 threads", "set"), ("sync get, 4 threads", "get")):
            r += [(name, "couchbase-ffi (PyPy)", None, py_cmd(PYPY, "cbffi", op, 4)),
                  (name, "couchbase-ffi (CPython)", None, py_cmd(PY, "cbffi", op, 4)),
                  (name, "pylibmc (CPython)", None, py_cmd(PY, "pylibmc", op, 4))]
    return r


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_memcached(port, pinned):
    cmd = ["/usr/bin/memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-t", "2"]
    if os.geteuid() == 0:
        cmd += ["-u", "nobody"]
    if pinned:
        cmd = ["taskset", "-c", "0"] + cmd
    proc = subprocess.Popen(cmd)
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            return proc
        except OSError:
            time.sleep(0.01)
    proc.kill()
    raise SystemExit("memcached did not start")


def build_floor():
    src = os.path.join(ROOT, "bench", "workers", "raw_floor.c")
    subprocess.check_call(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
                           os.path.join(BUILD, "raw_floor"), src])


def run_one(cmd, pinned):
    if pinned:
        cmd = ["taskset", "-c", "0"] + cmd
    env = dict(os.environ, PYTHONPATH=PYPATH)
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return None, "timed out"
    if out.returncode != 0:
        return None, (out.stderr.strip().splitlines() or ["exit %d" % out.returncode])[-1]
    try:
        r = json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None, "no result line"
    return r, None


def measure(full, placements, only):
    d, w, reps = (5.0, 3.0, 3) if full else (1.5, 1.0, 1)
    table = []
    plan = [(p, row) for p in placements for row in rows(full)
            if (not only or only in row[0] + " " + row[1])
            and (full or p == "free" or "C/T" not in row[0])]
    t0 = time.time()
    for pl in placements:
        port = free_port()
        mc = start_memcached(port, pl == "pinned")
        try:
            mine = [row for p, row in plan if p == pl]
            samples = {i: [] for i in range(len(mine))}
            errors = {}
            for rep in range(reps):  # interleaved repetitions
                for i, (name, label, seed, cmd) in enumerate(mine):
                    done = sum(len(v) for v in samples.values()) + len(errors)
                    sys.stderr.write("\r[%s %d/%d] %-26s %-28s (%.0f s)   " % (
                        pl, done + 1, len(mine) * reps, name[:26], label[:28], time.time() - t0))
                    sys.stderr.flush()
                    r, err = run_one(cmd(port, d, w), pl == "pinned")
                    if r and r["ops"] > 0:
                        samples[i].append(r)
                    else:
                        errors[i] = err or "no operations completed"
            for i, (name, label, seed, cmd) in enumerate(mine):
                rates = [s["ops"] / s["wall"] for s in samples[i]]
                cpus = [s["cpu"] / s["ops"] * 1e6 for s in samples[i]]
                table.append({"row": name, "client": label, "placement": pl, "seed": seed,
                              "rate": statistics.median(rates) if rates else None,
                              "min": min(rates) if rates else None,
                              "max": max(rates) if rates else None,
                              "cpu_us": statistics.median(cpus) if cpus else None,
                              "error": None if rates else errors.get(i)})
        finally:
            mc.kill()
            mc.wait()
    sys.stderr.write("\n")
    return table


def ratio(a, b):
    return "%.2fx" % (a / b) if a and b else "-"


def markdown(table, info):
    lines = ["# couchbase-ffi benchmark", "", info, "",
             "| row | client | placement | ops/s median [min-max] | client CPU us/op | "
             "vs pylibmc (CPython) | vs seed |", "|---|---|---|---|---|---|---|"]
    for t in table:
        ref = next((x["rate"] for x in table if x["row"] == t["row"] and
                    x["placement"] == t["placement"] and x["client"] == "pylibmc (CPython)"), None)
        if t["rate"] is None:
            cell = "n/a (%s)" % t["error"]
        else:
            cell = "%.0f [%.0f-%.0f]" % (t["rate"], t["min"], t["max"])
        cpu = "%.1f" % t["cpu_us"] if t["cpu_us"] else "-"
        seed = SEED.get((t["row"], t["seed"])) if t["seed"] else None
        lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            t["row"], t["client"], t["placement"], cell, cpu, ratio(t["rate"], ref),
            ratio(t["rate"], seed) if seed else "-"))
    lines += ["", "## Targets", ""] + targets(table)
    return "\n".join(lines) + "\n"


def get(table, row, client, pl):
    return next((t["rate"] for t in table if t["row"] == row and t["client"] == client
                 and t["placement"] == pl), None)


def targets(table):
    out = []
    for pl in sorted({t["placement"] for t in table}):
        for row in sorted({t["row"] for t in table if t["placement"] == pl}):
            pypy = get(table, row, "couchbase-ffi (PyPy)", pl)
            cpy = get(table, row, "couchbase-ffi (CPython)", pl)
            peers = [x for x in (get(table, row, "pylibmc (CPython)", pl),
                                 get(table, row, "pymemcache (PyPy)", pl)) if x]
            lm = get(table, row, "pylibmc (CPython)", pl)
            if pypy and peers:
                r = pypy / max(peers)
                out.append("- %s, %s: PyPy vs best Python peer %.2fx (target 1.1x): %s"
                           % (row, pl, r, "met" if r >= 1.1 else "missed"))
            if cpy and lm:
                r = cpy / lm
                out.append("- %s, %s: CPython vs pylibmc %.2fx (target 1.0x): %s"
                           % (row, pl, r, "met" if r >= 1.0 else "missed"))
            floor = get(table, row, "raw socket loop (C floor)", pl)
            if pl == "pinned" and floor and pypy:
                r = pypy / floor
                out.append("- %s, pinned: PyPy vs raw C floor %.2fx (target 0.95x): %s"
                           % (row, r, "met" if r >= 0.95 else "missed"))
            for interp in ("PyPy", "CPython"):
                ours = get(table, row, "couchbase-ffi (%s)" % interp, pl)
                tm = get(table, row, "twisted.protocols.memcache (%s)" % interp, pl)
                if ours and tm:
                    r = ours / tm
                    out.append("- %s, %s: %s vs twisted.protocols.memcache %.2fx (target 2x): %s"
                               % (row, pl, interp, r, "met" if r >= 2 else "missed"))
            core = get(table, row, "cbffi bench (C core)", pl)
            if pl == "pinned" and floor and core:
                r = core / floor
                out.append("- %s, pinned: C core vs raw C floor %.2fx (target 1.0x): %s"
                           % (row, r, "met" if r >= 1.0 else "missed"))
    return out


def chart(table, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    groups = [(r, p) for r in dict.fromkeys(t["row"] for t in table)
              for p in ("pinned", "free") if any(t["row"] == r and t["placement"] == p
                                                 for t in table)]
    clients = list(dict.fromkeys(t["client"] for t in table))
    fig, axes = plt.subplots(len(groups), 1, figsize=(10, 2.6 * len(groups)), squeeze=False)
    for ax, (row, pl) in zip(axes[:, 0], groups):
        vals = [get(table, row, c, pl) or 0 for c in clients]
        ax.barh(range(len(clients)), vals,
                color=["#d62728" if c.startswith("couchbase-ffi") else "#7f7f7f" for c in clients])
        ax.set_yticks(range(len(clients)))
        ax.set_yticklabels(clients, fontsize=8)
        ax.set_title("%s - %s" % (row, pl), fontsize=10)
        ax.set_xlabel("ops/s" if "keys" not in row else "keys/s", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return True


def machine_info():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mcv = subprocess.run(["/usr/bin/memcached", "-V"], capture_output=True, text=True).stdout.strip()
    pypy = subprocess.run([PYPY, "-c", "import sys; print(sys.version.split()[0], "
                           "sys.pypy_version_info[:3])"], capture_output=True, text=True).stdout.strip()
    return ("Machine: %d cores (%s), %s; client and server share it. %s; CPython %s; PyPy %s. "
            "Keys 13 bytes, values 128 bytes; multi rows use 100 keys and report keys/s. "
            "pinned = client and server both `taskset -c 0`; free = no pinning."
            % (os.cpu_count(), cpu, platform.platform(), mcv, platform.python_version(), pypy))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--placement", choices=["pinned", "free", "both"], default="both")
    ap.add_argument("--only", default="")
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args()
    if not os.path.exists(os.path.join(BUILD, "cbffi")):
        raise SystemExit("build first: ./scripts/build.sh")
    build_floor()
    placements = ["pinned", "free"] if a.placement == "both" else [a.placement]
    table = measure(a.full, placements, a.only)
    os.makedirs(a.out, exist_ok=True)
    md = markdown(table, machine_info())
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(md)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(table, f, indent=1)
    has_chart = chart(table, os.path.join(a.out, "chart.png"))
    print(md)
    print("wrote %s/results.md, results.json%s" % (a.out, ", chart.png" if has_chart else ""))


if __name__ == "__main__":
    main()
