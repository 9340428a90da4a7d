"""The ``cbffi`` command-line client (tools/cbffi.c) as a user runs it: against a real
memcached and the mock cluster, what it prints, and its exit status (0 ok, 1 the operation
failed, 2 usage or input error, 3 network / connection / timeout)."""
import os
import socket
import subprocess

import pytest

from conftest import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(ROOT, "build", "cbffi")

pytestmark = pytest.mark.skipif(not os.access(CLI, os.X_OK),
                                reason="build/cbffi is not built (scripts/build.sh)")


def cbffi(*args, stdin=None, timeout=30, env=None):
    p = subprocess.run([CLI] + list(args), input=stdin, capture_output=True, timeout=timeout,
                       env=env)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


@pytest.fixture
def mc(memcached):
    return ["-U", memcached.connstr]


def key(name):
    return "cli-%s-%d" % (name, os.getpid())


def test_set_get_and_metadata(mc):
    k = key("sg")
    rc, out, err = cbffi("set", *mc, "-f", "0x2a", "-e", "100", k, "hello world")
    assert rc == 0 and "stored, CAS=0x" in err
    rc, out, err = cbffi("get", *mc, "-v", k)
    assert rc == 0 and out == "hello world\n"
    assert "Flags=0x2a" in err and "Size=11" in err and "CAS=0x" in err


def test_value_from_stdin_keeps_bytes(mc):
    k = key("stdin")
    blob = bytes(range(256)) * 4
    rc, _, _ = cbffi("set", *mc, k, "-", stdin=blob)
    assert rc == 0
    p = subprocess.run([CLI, "get", *mc, k], capture_output=True, timeout=30)
    assert p.returncode == 0 and p.stdout == blob + b"\n"


def test_add_replace_and_cas_failures_exit_1(mc):
    k = key("arc")
    assert cbffi("rm", *mc, k)[0] in (0, 1)
    rc, _, err = cbffi("replace", *mc, k, "x")
    assert rc == 1 and "0x0d" in err                 # not found
    assert cbffi("add", *mc, k, "first")[0] == 0
    rc, _, err = cbffi("add", *mc, k, "second")
    assert rc == 1 and "0x0c" in err                 # exists
    rc, _, err = cbffi("set", *mc, "-c", "12345", k, "stale cas")
    assert rc == 1 and "0x0c" in err
    assert cbffi("get", *mc, k)[1] == "first\n"


def test_append_prepend_remove(mc):
    k = key("ap")
    cbffi("set", *mc, k, "mid")
    assert cbffi("append", *mc, k, ">")[0] == 0
    assert cbffi("prepend", *mc, k, "<")[0] == 0
    assert cbffi("get", *mc, k)[1] == "<mid>\n"
    assert cbffi("rm", *mc, k)[0] == 0
    rc, out, err = cbffi("get", *mc, k)
    assert rc == 1 and out == "" and "0x0d" in err


def test_several_keys_at_once(mc):
    ks = [key("multi%d" % i) for i in range(3)]
    for i, k in enumerate(ks):
        cbffi("set", *mc, k, "v%d" % i)
    missing = key("multi-missing")
    cbffi("rm", *mc, missing)
    rc, out, err = cbffi("get", *mc, ks[0], missing, ks[2])
    assert rc == 1                                   # one of them failed
    assert sorted(out.split()) == ["v0", "v2"] and missing in err


def test_counters(mc):
    k = key("ctr")
    cbffi("rm", *mc, k)
    rc, out, _ = cbffi("incr", *mc, "-i", "10", k)
    assert rc == 0 and out == "10\n"                  # created with the initial value
    assert cbffi("incr", *mc, "-d", "5", k)[1] == "15\n"
    assert cbffi("decr", *mc, "-d", "20", k)[1] == "0\n"   # memcached clamps at zero
    k2 = key("ctr-nocreate")
    cbffi("rm", *mc, k2)
    rc, _, err = cbffi("incr", *mc, "--no-create", k2)
    assert rc == 1 and "0x0d" in err


def test_touch_expires(mc):
    import time
    k = key("touch")
    cbffi("set", *mc, k, "soon gone")
    assert cbffi("touch", *mc, "-e", "1", k)[0] == 0
    time.sleep(2.1)
    assert cbffi("get", *mc, k)[0] == 1


def test_stats_and_version(memcached, mc):
    rc, out, _ = cbffi("stats", *mc)
    assert rc == 0
    rows = [l.split("\t") for l in out.splitlines()]
    stats = dict((r[1], r[2]) for r in rows if len(r) == 3)
    assert int(stats["pid"]) == memcached.proc.pid
    assert all(r[0] == "127.0.0.1:%d" % memcached.port for r in rows)
    rc, out, _ = cbffi("version", *mc)
    assert rc == 0 and out.startswith("127.0.0.1:%d\t1." % memcached.port)


def test_usage_errors_exit_2(mc):
    assert cbffi()[0] == 2
    rc, out, _ = cbffi("--help")
    assert rc == 0 and "commands:" in out
    rc, _, err = cbffi("frobnicate", *mc)
    assert rc == 2 and "unknown command" in err
    rc, _, err = cbffi("set", *mc, "only-a-key")
    assert rc == 2 and "wrong number of arguments" in err
    rc, _, err = cbffi("get", "-U", "memcached://[::1", "k")
    assert rc == 2 and "connection string" in err
    rc, _, err = cbffi("get", "k", env={"PATH": os.environ.get("PATH", "")})
    assert rc == 2 and "-U" in err
    rc, _, err = cbffi("set", *mc, "-e", "lots", "k", "v")
    assert rc == 2
    rc, _, err = cbffi("get", *mc, "k" * 251)       # a bad key: refused before sending
    assert rc == 2 and "longer than 250 bytes" in err
    rc, _, err = cbffi("get", *mc, "")
    assert rc == 2


def test_binary_keys_may_hold_spaces(mc):
    k = key("a key with spaces")     # the binary protocol takes any bytes in a key
    assert cbffi("set", *mc, k, "spaced")[0] == 0
    assert cbffi("get", *mc, k)[1] == "spaced\n"


def test_connstr_from_the_environment(memcached):
    k = key("env")
    env = dict(os.environ, CBFFI_CONNSTR=memcached.connstr)
    assert cbffi("set", k, "from env", env=env)[0] == 0
    assert cbffi("get", k, env=env)[1] == "from env\n"


def test_network_errors_exit_3():
    rc, _, err = cbffi("get", "-U", "memcached://127.0.0.1:%d" % free_port(), "k")
    assert rc == 3 and "detail:" in err
    # a server that accepts and never answers: the operation ends at its timeout
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    try:
        import time
        t0 = time.monotonic()
        rc, _, err = cbffi("get", "-U", "memcached://127.0.0.1:%d" % srv.getsockname()[1],
                           "-t", "0.3", "k")
        assert rc == 3 and "0x17" in err              # timed out
        assert time.monotonic() - t0 < 5
    finally:
        srv.close()


@pytest.fixture(scope="module")
def cluster():
    from couchbase_ffi.mock import MockCluster, BucketSpec
    c = MockCluster(nodes=3, buckets=[BucketSpec("default", password="secret", replicas=1)]).start()
    yield c
    c.stop()


def test_couchbase_bucket(cluster):
    cs = ["-U", cluster.connstr("default"), "-P", "secret"]
    keys = [key("cb%d" % i) for i in range(20)]       # spread over the nodes' vbuckets
    for k in keys:
        assert cbffi("set", *cs, k, "v-" + k)[0] == 0
    rc, out, _ = cbffi("get", *cs, *keys)
    assert rc == 0 and sorted(out.split()) == sorted("v-" + k for k in keys)
    rc, out, _ = cbffi("stats", *cs)
    servers = set(l.split("\t")[0] for l in out.splitlines())
    assert rc == 0 and len(servers) == 3              # every node answered


def test_couchbase_wrong_password_and_bucket(cluster):
    rc, _, err = cbffi("get", "-U", cluster.connstr("default"), "-P", "wrong", "k")
    assert rc != 0 and "cannot connect" in err and "0x02" in err
    rc, _, err = cbffi("get", "-U", cluster.connstr("nope"), "-u", "Administrator",
                       "-P", "password", "k")
    assert rc != 0 and "cannot connect" in err


def test_n1ql_query(cluster):
    cs = ["-U", cluster.connstr("default"), "-P", "secret"]
    cluster.query_register('SELECT name FROM `default` WHERE city = $1 AND n > $min',
                           rows=[{"name": "a"}, {"name": "b", "tags": [1, None]}])
    rc, out, err = cbffi("query", *cs, "-a", '"Reno"', "-n", "min=3", "-C", "request_plus",
                         "-v", 'SELECT name FROM `default` WHERE city = $1 AND n > $min')
    assert rc == 0, err
    import json
    assert [json.loads(l) for l in out.splitlines()] == [{"name": "a"},
                                                         {"name": "b", "tags": [1, None]}]
    assert "status: success" in err
    sent = cluster.query_requests()[-1]
    assert sent["args"] == ["Reno"] and sent["named"] == {"$min": 3}
    assert sent["scan_consistency"] == "request_plus"
    # a N1QL error: printed, exit 1
    rc, out, err = cbffi("query", *cs, "SELECT nonsense FROM nowhere")
    assert rc == 1 and out == "" and '"code":3000' in err
    # arguments that are not JSON are refused before anything is sent
    n = len(cluster.query_requests())
    assert cbffi("query", *cs, "-a", "Reno", "SELECT $1")[0] == 2
    assert cbffi("query", *cs, "-n", "noequals", "SELECT 1")[0] == 2
    assert cbffi("query", *cs)[0] == 2
    assert len(cluster.query_requests()) == n


def test_n1ql_query_errors(cluster, memcached):
    cluster.query_register("SELECT slow", rows=[1], delay=5)
    rc, _, err = cbffi("query", "-U", cluster.connstr("default"), "-P", "secret", "-t", "0.3",
                       "SELECT slow")
    assert rc == 3 and "0x17" in err                   # the client's timeout
    rc, _, err = cbffi("query", "-U", memcached.connstr, "SELECT 1")
    assert rc != 0 and "query" in err                  # memcached:// has no query service


def test_n1ql_query_streams_rows(cluster):
    """Rows come out as they arrive: a result far larger than http_max_response is
    printed whole, and rows sent before a connection is cut are printed before the error."""
    import json
    rows = [{"i": i, "pad": "x" * 200} for i in range(2000)]        # ~420 KB of rows
    cluster.query_register("SELECT many", rows=rows, chunked=True)
    cs = ["-U", cluster.connstr("default", http_max_response=65536), "-P", "secret"]
    rc, out, err = cbffi("query", *cs, "SELECT many")
    assert rc == 0, err
    assert [json.loads(l)["i"] for l in out.splitlines()] == list(range(2000))
    cluster.query_register("SELECT cut", rows=rows[:10], cut_after=3, cut="close")
    rc, out, err = cbffi("query", *cs, "SELECT cut")
    assert rc == 3 and [json.loads(l)["i"] for l in out.splitlines()] == [0, 1, 2]
