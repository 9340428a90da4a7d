"""Users switching from pylibmc keep their cache: on three memcached servers
on non-default ports, every key pylibmc (libmemcached, ketama_weighted) wrote
is found by libcbffi on the same server, and libcbffi routes it there."""
import os
import socket
import subprocess
import time

import pytest

pylibmc = pytest.importorskip("pylibmc")  # a CPython C extension

from couchbase_ffi._lowlevel import ffi, lib  # noqa: E402


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def three_servers():
    procs, ports = [], []
    for _ in range(3):
        port = _free_port()
        cmd = ["/usr/bin/memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        procs.append(subprocess.Popen(cmd))
        ports.append(port)
    for port in ports:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                time.sleep(0.01)
    yield ports
    for p in procs:
        p.kill()
        p.wait()


class Client:
    """The C API directly, so this check depends on libcbffi alone."""

    def __init__(self, connstr):
        out = ffi.new("cbffi_client **")
        err = ffi.new("char[256]")
        rc = lib.cbffi_client_create(out, connstr.encode(), ffi.NULL, ffi.NULL, err, 256)
        assert rc == 0, ffi.string(err)
        self.c = out[0]
        self.res = ffi.new("cbffi_result[4]")

    def server_for(self, key):
        return lib.cbffi_client_server_for_key(self.c, key, len(key))

    def get(self, key):
        assert lib.cbffi_get(self.c, key, len(key), lib.CBFFI_GET_PLAIN, 0, 0) == 0
        assert lib.cbffi_wait(self.c, self.res, 4) == 1
        r = self.res[0]
        return r.rc, ffi.unpack(r.value, r.nvalue) if r.nvalue else b""

    def close(self):
        lib.cbffi_client_destroy(self.c)


def test_every_pylibmc_key_is_found_on_the_same_server(three_servers):
    ports = three_servers
    mc = pylibmc.Client(["127.0.0.1:%d" % p for p in ports], binary=True,
                        behaviors={"ketama_weighted": True})
    keys = ["user:%d" % i for i in range(3000)] + ["k%05d" % i for i in range(1000)]
    for k in keys:
        mc.set(k, k.encode())
    ours = Client("memcached://" + ",".join("127.0.0.1:%d" % p for p in ports))
    singles = [Client("memcached://127.0.0.1:%d" % p) for p in ports]
    try:
        per_server = [0, 0, 0]
        for k in keys:
            kb = k.encode()
            s = ours.server_for(kb)
            per_server[s] += 1
            # the key is where libcbffi routes it, and only there
            assert singles[s].get(kb) == (0, kb), k
            rc, value = ours.get(kb)
            assert (rc, value) == (0, kb)
        assert all(n > len(keys) // 6 for n in per_server), per_server
        for k in keys[::97]:
            owner = ours.server_for(k.encode())
            for i, single in enumerate(singles):
                if i != owner:
                    assert single.get(k.encode())[0] == lib.CBFFI_KEY_ENOENT
    finally:
        ours.close()
        for s in singles:
            s.close()
