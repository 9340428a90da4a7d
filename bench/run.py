#!/usr/bin/env python3
"""The benchmark table: couchbase-ffi on PyPy and CPython beside pylibmc,
pymemcache, the C core alone (``cbffi bench``) and a raw-socket C floor, all
against one memcached this script starts on a free loopback port.

Two placements, because the box has 2 cores: "pinned" (client and server on
core 0: throughput = 1 / (client + server CPU per op), where a client's
efficiency shows) and "free" (no pinning: client and server may run on
different cores; then a synchronous request pays a cross-core wake-up, which
in a VM can cost tens of microseconds when the host has descheduled the idle
vCPU, so free rates are noisy and bimodal: read their min-max).

Every worker reports its client CPU and, sampled from /proc/PID/task/*/schedstat
over the same window, the server's CPU: both per operation (per key in the
multi rows) beside each rate.

    /usr/bin/python3 bench/run.py            # short version (~2 min: 2 interleaved repetitions of 0.5 s)
    /usr/bin/python3 bench/run.py --full     # every cell in both placements, 3 repetitions of 5 s
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

# (row, client label, seed label, command builder); a builder takes
# (port, duration, warmup, server pid)
def py_cmd(interp, client, op, threads=0):
    return lambda port, d, w, spid: [interp, WORKER, "--client", client, "--op", op, "--port",
                                     str(port), "--duration", str(d), "--warmup", str(w),
                                     "--threads", str(threads), "--server-pid", str(spid)]


ASYNC_WORKER = os.path.join(ROOT, "bench", "workers", "async_worker.py")


def async_cmd(interp, client, conns, chains):
    # the async worker does not sample the server: its rows show no server CPU
    return lambda port, d, w, spid: [interp, ASYNC_WORKER, "--client", client, "--port", str(port),
                               "--conns", str(conns), "--chains", str(chains),
                               "--duration", str(d), "--warmup", str(w)]


def cbench(op, batch):
    return lambda port, d, w, spid: [os.path.join(BUILD, "cbffi"), "bench", "-U",
                                     "memcached://127.0.0.1:%d" % port, "--op", op, "--batch",
                                     str(batch), "--duration", str(d), "--warmup", str(w),
                                     "--keys", "1000", "--server-pid", str(spid), "--json"]


def raw(op):
    return lambda port, d, w, spid: [os.path.join(BUILD, "raw_floor"), str(port), op, str(d),
                                     str(w), str(spid)]


def libmc(op, protocol):
    return lambda port, d, w, spid: [os.path.join(BUILD, "libmc_bench"), str(port), op,
                                     protocol, str(d), str(w), str(spid)]


# couchbase:// rows run against the mock cluster (4 nodes, 1 replica, pure Python)
# that measure() starts beside memcached; MOCK holds its connection string and pid.
MOCK = {}
MOCK_PASSWORD = "benchpw"


def cb_py_cmd(interp, op):
    return lambda port, d, w, spid: [interp, WORKER, "--client", "cbffi", "--op", op,
                                     "--port", "0", "--duration", str(d), "--warmup", str(w),
                                     "--threads", "0", "--server-pid", str(MOCK["pid"]),
                                     "--connstr", MOCK["connstr"], "--password", MOCK_PASSWORD]


def cb_cbench(op, batch):
    return lambda port, d, w, spid: [os.path.join(BUILD, "cbffi"), "bench", "-U", MOCK["connstr"],
                                     "-P", MOCK_PASSWORD, "--op", op, "--batch", str(batch),
                                     "--duration", str(d), "--warmup", str(w), "--keys", "1000",
                                     "--server-pid", str(MOCK["pid"]), "--json"]


def start_mock(pinned):
    cmd = [PY, "-m", "couchbase_ffi.mock", "--nodes", "4", "--replicas", "1", "--bucket",
           "default:couchbase:" + MOCK_PASSWORD, "--json"]
    if pinned:
        cmd = ["taskset", "-c", "0"] + cmd
    env = dict(os.environ, PYTHONPATH=PYPATH)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
    info = json.loads(proc.stdout.readline())
    MOCK.update(connstr=info["buckets"]["default"]["connstr"], pid=proc.pid)
    return proc


LIBMC_TEXT = "libmemcached (C, text)"
LIBMC_BIN = "libmemcached (C, binary)"


def rows(full):
    r = []
    for name, op, mop in (("sync get", "get", None), ("sync upsert", "set", None)):
        r += [(name, "couchbase-ffi (PyPy)", "FFI (PyPy)", py_cmd(PYPY, "cbffi", op)),
              (name, "couchbase-ffi (CPython)", "FFI (CPython)", py_cmd(PY, "cbffi", op)),
              (name, "pylibmc (CPython)", "Ext (CPython)", py_cmd(PY, "pylibmc", op)),
              (name, "pymemcache (PyPy)", None, py_cmd(PYPY, "pymemcache", op)),
              (name, "cbffi bench (C core)", None, cbench(op, 1)),
              (name, LIBMC_TEXT, None, libmc(op, "text")),
              (name, LIBMC_BIN, None, libmc(op, "binary")),
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
              (name, "cbffi bench (C core)", None, cbench(cop, 100)),
              (name, LIBMC_TEXT, None, libmc(op, "text")),
              (name, LIBMC_BIN, None, libmc(op, "binary"))]
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
    # couchbase:// against the mock: the mock (Python) bounds the rate; the client
    # CPU per operation, beside the memcached:// rows, is the client's own cost
    for name, op, cop, batch in (("couchbase:// sync get (mock)", "get", "get", 1),
                                 ("couchbase:// sync upsert (mock)", "set", "set", 1),
                                 ("couchbase:// get_multi 100 (mock, keys/s)", "get_multi",
                                  "get", 100)):
        r += [(name, "couchbase-ffi (PyPy)", None, cb_py_cmd(PYPY, op)),
              (name, "couchbase-ffi (CPython)", None, cb_py_cmd(PY, op)),
              (name, "cbffi bench (C core)", None, cb_cbench(cop, batch))]
    for name, op in (("sync upsert, 4 threads", "set"), ("sync get, 4 threads", "get")):
        r += [(name, "couchbase-ffi (PyPy)", None, py_cmd(PYPY, "cbffi", op, 4)),
              (name, "couchbase-ffi (CPython)", None, py_cmd(PY, "cbffi", op, 4)),
              (name, "pylibmc (CPython)", None, py_cmd(PY, "pylibmc", op, 4))]
    return r


def free_only(row, full):
    """Rows measured in the free placement only: the 4-thread rows (threads
    exist to use both cores), and the event-loop rows unless --full."""
    return "threads" in row or ("C/T" in row and not full)


FREE_SHORT = ("couchbase-ffi (PyPy)", "couchbase-ffi (CPython)", "pylibmc (CPython)",
              "pymemcache (PyPy)")


def in_plan(placement, row, client, full):
    """Which cells a run measures.  --full: every row in both placements (the
    4-thread rows free only).  The short run keeps every pinned
    memcached cell (where the targets are judged), and in the free placement
    (latency-bound on this box: every client lands at about the same rate)
    the Python clients of the sync rows, the 4-thread rows and the event-loop
    rows; its couchbase:// rows (bounded by the mock) are pinned, PyPy and the
    C core."""
    if placement == "pinned" and free_only(row, full):
        return False
    if full:
        return True
    if row.startswith("couchbase://"):
        return placement == "pinned" and client != "couchbase-ffi (CPython)"
    if placement == "free":
        return ("threads" in row or "C/T" in row
                or (row.startswith("sync") and client in FREE_SHORT))
    return True


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
    """The C baselines: the raw-socket floor and libmemcached from C."""
    workers = os.path.join(ROOT, "bench", "workers")
    for name, libs in (("raw_floor", []), ("libmc_bench", ["-lmemcached"])):
        subprocess.check_call(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
                               os.path.join(BUILD, name), os.path.join(workers, name + ".c")]
                              + libs)


def run_one(cmd, pinned, limit):
    if pinned:
        cmd = ["taskset", "-c", "0"] + cmd
    env = dict(os.environ, PYTHONPATH=PYPATH)
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return None, "a run did not end within %.0f s" % limit
    if out.returncode != 0:
        return None, (out.stderr.strip().splitlines() or ["exit %d" % out.returncode])[-1]
    try:
        r = json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None, "no result line"
    return r, None


def timing(full):
    """(duration, warm-up, repetitions) of every run."""
    return (5.0, 3.0, 3) if full else (0.5, 0.5, 2)


def measure(full, placements, only):
    d, w, reps = timing(full)
    table = []
    plan = [(p, row) for p in placements for row in rows(full)
            if (not only or only in row[0] + " " + row[1])
            and in_plan(p, row[0], row[1], full)]
    total = len(plan) * reps
    t0 = time.time()
    done = 0
    for pl in placements:
        port = free_port()
        mc = start_memcached(port, pl == "pinned")
        mock = None
        try:
            if any(p == pl and row[0].startswith("couchbase://") for p, row in plan):
                mock = start_mock(pl == "pinned")
            mine = [row for p, row in plan if p == pl]
            samples = {i: [] for i in range(len(mine))}
            errors = {}
            for rep in range(reps):  # interleaved repetitions
                for i, (name, label, seed, cmd) in enumerate(mine):
                    done += 1
                    el = time.time() - t0
                    eta = el / (done - 1) * (total - done + 1) if done > 1 else 0
                    sys.stderr.write("\r[%d/%d, rep %d/%d, %s] %-26s %-28s %4.0f s, ~%.0f s left   "
                                     % (done, total, rep + 1, reps, pl, name[:26], label[:28],
                                        el, eta))
                    sys.stderr.flush()
                    # a worker that hangs costs this much, then counts as a failed run
                    r, err = run_one(cmd(port, d, w, mc.pid), pl == "pinned", 20 + 3 * (d + w))
                    if r and r["ops"] > 0:
                        samples[i].append(r)
                    else:
                        errors[i] = err or "no operations completed"
            for i, (name, label, seed, cmd) in enumerate(mine):
                ss = samples[i]
                rates = [s["ops"] / s["wall"] for s in ss]
                cpus = [s["cpu"] / s["ops"] * 1e6 for s in ss]
                scpus = [s["server_cpu"] / s["ops"] * 1e6 for s in ss if "server_cpu" in s]
                table.append({"row": name, "client": label, "placement": pl, "seed": seed,
                              "rate": statistics.median(rates) if rates else None,
                              "min": min(rates) if rates else None,
                              "max": max(rates) if rates else None,
                              "n": len(rates),
                              "cpu_us": statistics.median(cpus) if cpus else None,
                              "server_us": statistics.median(scpus) if scpus else None,
                              "error": errors.get(i)})
        finally:
            mc.kill()
            mc.wait()
            if mock is not None:
                mock.terminate()
                mock.wait()
    sys.stderr.write("\n")
    return table


def ratio(a, b):
    return "%.2fx" % (a / b) if a and b else "-"


PYPY_FFI, CPY_FFI = "couchbase-ffi (PyPy)", "couchbase-ffi (CPython)"
PYLIBMC, PYMC_PYPY = "pylibmc (CPython)", "pymemcache (PyPy)"
CORE, FLOOR = "cbffi bench (C core)", "raw socket loop (C floor)"


def markdown(table, info):
    lines = ["# couchbase-ffi benchmark", "", info, "",
             "| row | client | placement | ops/s median [min-max] | client CPU us/op | "
             "server CPU us/op | vs pylibmc (CPython) | vs seed |",
             "|---|---|---|---|---|---|---|---|"]
    for t in table:
        ref = get(table, t["row"], PYLIBMC, t["placement"])
        if t["rate"] is None:
            cell = "n/a (%s)" % t["error"]
        else:
            cell = "%.0f [%.0f-%.0f]" % (t["rate"], t["min"], t["max"])
            if t.get("error"):      # some runs failed: say so beside the ones that did not
                cell += " (%d run%s; another: %s)" % (t["n"], "s" if t["n"] != 1 else "",
                                                     t["error"])
        cpu = "%.2f" % t["cpu_us"] if t["cpu_us"] else "-"
        srv = "%.2f" % t["server_us"] if t.get("server_us") else "-"
        seed = SEED.get((t["row"], t["seed"])) if t["seed"] else None
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            t["row"], t["client"], t["placement"], cell, cpu, srv, ratio(t["rate"], ref),
            ratio(t["rate"], seed) if seed else "-"))
    lines += ["", "## Targets", ""] + targets(table)
    lines += ["", "## Notes", ""] + notes(table)
    return "\n".join(lines) + "\n"


def get(table, row, client, pl, field="rate"):
    return next((t[field] for t in table if t["row"] == row and t["client"] == client
                 and t["placement"] == pl), None)


def _target(out, what, r, goal):
    out.append("- %s %.2fx (target %sx): %s" % (what, r, goal, "met" if r >= goal else "missed"))


def targets(table):
    out = []
    for pl in ("pinned", "free"):
        for row in dict.fromkeys(t["row"] for t in table if t["placement"] == pl):
            g = lambda c: get(table, row, c, pl)  # noqa: E731
            pypy, cpy, lm, core, floor = g(PYPY_FFI), g(CPY_FFI), g(PYLIBMC), g(CORE), g(FLOOR)
            peers = [x for x in (lm, g(PYMC_PYPY)) if x]
            libmc = [x for x in (g(LIBMC_TEXT), g(LIBMC_BIN)) if x]
            where = "%s, %s:" % (row, pl)
            if pypy and peers:
                _target(out, where + " PyPy vs best Python peer", pypy / max(peers), 1.1)
            if cpy and lm:
                _target(out, where + " CPython vs pylibmc", cpy / lm, 1.0)
            if row.startswith("get_multi") and pypy and lm:
                _target(out, where + " PyPy get_multi vs pylibmc's", pypy / lm, 1.5)
            if "threads" in row and lm:
                for lab, v in (("PyPy", pypy), ("CPython", cpy)):
                    if v:
                        _target(out, where + " %s vs pylibmc, 4 threads" % lab, v / lm, 1.2)
            if pl == "pinned" and floor and pypy:
                _target(out, where + " PyPy vs raw C floor", pypy / floor, 0.95)
            if pl == "pinned" and floor and core:
                _target(out, where + " C core vs raw C floor", core / floor, 1.0)
            if "keys/s" in row and core and libmc:
                _target(out, where + " C core vs libmemcached (best protocol)",
                        core / max(libmc), 1.5)
            for interp in ("PyPy", "CPython"):
                ours = g("couchbase-ffi (%s)" % interp)
                tm = g("twisted.protocols.memcache (%s)" % interp)
                if ours and tm:
                    _target(out, where + " %s vs twisted.protocols.memcache" % interp,
                            ours / tm, 2)
    return out


def notes(table):
    """What the server costs per key, and the rate that caps at a zero-cost client."""
    out = []
    for row in dict.fromkeys(t["row"] for t in table):
        if row.startswith("couchbase://"):
            continue
        for pl in ("pinned", "free"):
            parts = []
            for c, proto in ((CORE, "binary"), (LIBMC_BIN, "binary"), (LIBMC_TEXT, "text"),
                             (PYLIBMC, "text"), (FLOOR, "binary")):
                us = get(table, row, c, pl, "server_us")
                if us:
                    parts.append("%s (%s) %.2f us" % (c, proto, us))
            if parts and pl == "pinned":
                core_us = get(table, row, CORE, pl, "server_us")
                cap = (", so with a zero-cost client the binary protocol caps this row at "
                       "%.0f/s pinned" % (1e6 / core_us)) if core_us else ""
                out.append("- %s, %s: memcached CPU per %s: %s%s." % (
                    row, pl, "key" if "keys/s" in row else "op", "; ".join(parts), cap))
    out.append("- Client CPU is the worker process's (user + system) and server CPU is "
               "memcached's, both over the timed window; on loopback the kernel delivers a "
               "packet in the sender's system call, so each side's system time includes "
               "part of the other's receive path. Pinned, client + server CPU per op is "
               "about 1/rate.")
    out.append("- pylibmc (and libmemcached text) use memcached's text protocol: a multi-get "
               "is one `get k1 ... k100` command. The binary protocol (couchbase-ffi, "
               "libmemcached binary) sends one GETQ per key, and memcached handles at most "
               "20 requests per event (-R 20, its default), so a 100-key batch comes back "
               "in about 5 writes.")
    if any(t["row"].startswith("couchbase://") for t in table):
        out.append("- couchbase:// rows run against the mock cluster (`couchbase_ffi.mock`: 4 "
                   "nodes, 1 replica, pure Python asyncio in one process), bootstrapped with "
                   "SCRAM-SHA512 and routed by vbucket; their server CPU is the mock's. The "
                   "mock is 10-30x slower than memcached, so the rates show the mock; the "
                   "client CPU per op, beside the memcached:// rows, is what couchbase:// "
                   "routing costs the client (the C core's couchbase:// store keeps each "
                   "packet for retries: one copy more than memcached://).")
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
    fig, axes = plt.subplots(len(groups), 1, figsize=(10, 0.32 * len(table) + 1.2 * len(groups)),
                             squeeze=False)
    for ax, (row, pl) in zip(axes[:, 0], groups):
        ts = [t for t in table if t["row"] == row and t["placement"] == pl]
        vals = [t["rate"] or 0 for t in ts]
        err = [[(t["rate"] or 0) - (t["min"] or 0) for t in ts],
               [(t["max"] or 0) - (t["rate"] or 0) for t in ts]]
        ax.barh(range(len(ts)), vals, xerr=err, capsize=2,
                color=["#d62728" if t["client"].startswith("couchbase-ffi") else "#7f7f7f"
                       for t in ts])
        ax.set_yticks(range(len(ts)))
        ax.set_yticklabels(["%s  (%s us/op client)" % (t["client"], "%.2f" % t["cpu_us"]
                                                       if t["cpu_us"] else "-") for t in ts],
                           fontsize=7)
        ax.invert_yaxis()
        ax.set_title("%s - %s (median, bars: min-max)" % (row, pl), fontsize=9)
        ax.set_xlabel("keys/s" if "keys" in row else "ops/s", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return True


def machine_info(full):
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mcv = subprocess.run(["/usr/bin/memcached", "-V"], capture_output=True, text=True).stdout.strip()
    pypy = subprocess.run([PYPY, "-c", "import sys; print(sys.version.split()[0], "
                           "sys.pypy_version_info[:3])"], capture_output=True, text=True).stdout.strip()
    d, w, reps = timing(full)
    return ("Machine: %d cores (%s), %s; client and server share it (and other jobs on the "
            "machine may too). %s (`-t 2`, defaults otherwise); CPython %s; PyPy %s. Keys 13 "
            "bytes (1000 per client, walked in turn), values 128 bytes; multi rows use 100 keys "
            "and report keys/s and CPU per key. pinned = client and server both `taskset -c 0`; "
            "free = no pinning. Each cell: median and min-max over %d interleaved repetitions "
            "of %.1f s (after %.1f s of warm-up)."
            % (os.cpu_count(), cpu, platform.platform(), mcv, platform.python_version(), pypy,
               reps, d, w))


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
    md = markdown(table, machine_info(a.full))
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(md)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(table, f, indent=1)
    has_chart = chart(table, os.path.join(a.out, "chart.png"))
    print(md)
    print("wrote %s/results.md, results.json%s" % (a.out, ", chart.png" if has_chart else ""))


if __name__ == "__main__":
    main()
