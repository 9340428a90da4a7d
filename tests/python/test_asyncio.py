"""The asyncio front-end: awaitable operations on a host-driven libcbffi client."""
import asyncio
import os

import pytest

from couchbase_ffi.asyncio import Bucket
from couchbase_ffi import exceptions as E, FMT_BYTES


def run(coro):
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def test_every_single_key_operation(memcached):
    async def main():
        b = Bucket(memcached.connstr)
        assert await b.connect() is b
        w = await b.upsert("aio:k", {"v": 1})
        g = await b.get("aio:k")
        assert g.value == {"v": 1} and g.cas == w.cas
        with pytest.raises(E.KeyExistsError):
            await b.insert("aio:k", 2)
        await b.replace("aio:k", b"x", format=FMT_BYTES)
        await b.append("aio:k", b"y")
        await b.prepend("aio:k", b"w")
        assert (await b.get("aio:k")).value == b"wxy"
        assert (await b.counter("aio:ctr", initial=5)).value == 5
        await b.touch("aio:k", ttl=100)
        await b.remove("aio:k")
        with pytest.raises(E.NotFoundError):
            await b.get("aio:k")
        assert not (await b.get("aio:k", quiet=True)).success
        b.close()
    run(main())


def test_thousand_in_flight_across_buckets(memcached):
    async def main():
        buckets = [Bucket(memcached.connstr) for _ in range(4)]
        await asyncio.gather(*(b.connect() for b in buckets))
        futs = [buckets[i % 4].upsert("aio:%d" % i, i) for i in range(1000)]
        assert all(r.success for r in await asyncio.gather(*futs))
        got = await asyncio.gather(*(buckets[i % 4].get("aio:%d" % i) for i in range(1000)))
        assert [r.value for r in got] == list(range(1000))
        mr = await buckets[0].get_multi(["aio:1", "aio:2", "aio:none"], quiet=True)
        assert mr["aio:2"].value == 2 and not mr.all_ok
        assert (await buckets[1].upsert_multi({"aio:a": 1, "aio:b": 2})).all_ok
        for b in buckets:
            b.close()
    run(main())


def test_unreachable_and_killed_server(own_memcached):
    from conftest import free_port

    async def main():
        dead = Bucket("memcached://127.0.0.1:%d" % free_port())
        with pytest.raises(E.ConnectError):
            await dead.connect()
        dead.close()
        b = Bucket(own_memcached.connstr + "?operation_timeout=1s")
        await b.connect()
        await b.upsert("aio:kill", 1)
        own_memcached.stop()
        with pytest.raises(E.CouchbaseNetworkError):
            await b.get("aio:kill")
        b.close()
    run(main())


def test_close_fails_pending_and_leaks_no_fd(memcached):
    def fds():
        return len(os.listdir("/proc/self/fd"))

    async def main():
        before = fds()
        b = Bucket(memcached.connstr)
        await b.connect()
        fut = b.get("aio:whatever", quiet=True)
        b.close()
        with pytest.raises(E.ObjectDestroyedError):
            await fut
        assert fds() == before
    run(main())
