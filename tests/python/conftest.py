"""Shared fixtures: a real memcached on a free loopback port."""
import os
import socket
import subprocess
import time

import pytest


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Memcached(object):
    """A memcached process this test session owns."""

    def __init__(self, port=None, extra=()):
        self.port = port or free_port()
        self.extra = list(extra)
        self.proc = None

    @property
    def connstr(self):
        return "memcached://127.0.0.1:%d" % self.port

    def start(self):
        cmd = ["/usr/bin/memcached", "-l", "127.0.0.1", "-p", str(self.port), "-U", "0",
               "-t", "2"] + self.extra
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        self.proc = subprocess.Popen(cmd)
        deadline = time.time() + 5
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.1).close()
                return self
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("memcached did not start on port %d" % self.port)

    def stop(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture(scope="session")
def memcached():
    m = Memcached(extra=["-I", "1m"]).start()
    yield m
    m.stop()


@pytest.fixture
def bucket(memcached):
    from couchbase_ffi.bucket import Bucket
    b = Bucket(memcached.connstr)
    yield b
    b.close()


@pytest.fixture
def own_memcached():
    m = Memcached().start()
    yield m
    m.stop()
