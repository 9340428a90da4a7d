"""couchbase_ffi.asyncio: the Bucket API as awaitables, driven by an asyncio loop.

libcbffi never blocks here: the loop watches the sockets the core asks for,
tells it when one is ready, arms one timer for the earliest deadline, and after
every event harvests every finished result in one batch.  No C-to-Python
callbacks.

    b = Bucket("memcached://127.0.0.1:11211")
    await b.connect()
    await b.upsert("k", {"v": 1})
    print((await b.get("k")).value)
"""
import asyncio

from couchbase_ffi._async import AsyncBucketBase


class _Adapter(object):
    def __init__(self, loop):
        self.add_reader = loop.add_reader
        self.remove_reader = loop.remove_reader
        self.add_writer = loop.add_writer
        self.remove_writer = loop.remove_writer
        self.call_later = loop.call_later
        self.call_soon = loop.call_soon


class Bucket(AsyncBucketBase):
    """The couchbase 2.x Bucket; every operation returns an awaitable (asyncio.Future)."""

    def _aio_loop(self):
        if self._loop is None:
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                self._loop = asyncio.get_event_loop()
        return self._loop

    def _adapter(self):
        return _Adapter(self._aio_loop())

    def _new_future(self):
        return self._aio_loop().create_future()

    @staticmethod
    def _resolve(fut, value):
        fut.set_result(value)

    @staticmethod
    def _reject(fut, exc):
        fut.set_exception(exc)

    @staticmethod
    def _is_done(fut):
        return fut.done()

    @staticmethod
    def _chain(fut, fn):
        fut.add_done_callback(lambda f: fn(f.exception() or f.result()))
