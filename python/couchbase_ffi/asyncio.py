"""couchbase_ffi.asyncio: the couchbase 2.x Bucket API as awaitables.

The host-driven libcbffi client of ``couchbase_ffi._async`` on an asyncio
loop: the loop watches the core's sockets, one ``call_later`` covers the
earliest deadline, and every readiness event harvests all the finished
results at once.  No C-to-Python callbacks.

    from couchbase_ffi.asyncio import Bucket
    b = Bucket("memcached://127.0.0.1:11211")
    await b.connect()
    await b.upsert("k", {"v": 1})
    print((await b.get("k")).value)

Every method of the sync Bucket is here with the same arguments and returns
an ``asyncio.Future`` of what the sync method returns (or of the exception it
raises).  Bad arguments raise at once, before anything is sent.  The loop is
the one given as ``loop=``, else the running loop at the first operation.
"""
import asyncio
import functools

from couchbase_ffi._async import AsyncBucketBase, Host, _READ, _WRITE
from couchbase_ffi import n1ql as _n1ql


def _resolve(fut, value):
    try:
        fut.set_result(value)
    except asyncio.InvalidStateError:
        pass   # cancelled by its owner meanwhile


def _reject(fut, exc):
    try:
        fut.set_exception(exc)
    except asyncio.InvalidStateError:
        pass


def _cancel(handle):
    handle.cancel()


class _AsyncioHost(Host):
    later_callbacks = True
    _already = asyncio.InvalidStateError
    _resolve = staticmethod(_resolve)
    _reject = staticmethod(_reject)
    _cancel = staticmethod(_cancel)

    def __init__(self, bucket, loop):
        Host.__init__(self, bucket)
        self.loop = None
        if loop is not None:
            self._bind(loop)

    def _bind(self, loop=None):
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = asyncio.get_event_loop_policy().get_event_loop()
        # the future type's own set_result, unbound: no call of ours around it
        self._set_result = type(loop.create_future()).set_result
        if type(loop).create_future is asyncio.BaseEventLoop.create_future:
            # what BaseEventLoop.create_future does, without its Python frame
            self._new_future = functools.partial(asyncio.Future, loop=loop)
        else:
            self._new_future = loop.create_future
        self.loop = loop
        return loop

    def _new_future(self):
        # until bound: the instance attribute set by _bind replaces this method
        return self._bind().create_future()

    _set_result = staticmethod(_resolve)   # until bound to a loop

    def _register(self, w, events):
        old, loop = w.reg, self.loop
        if old & _READ and not events & _READ:
            loop.remove_reader(w.dup)
        if old & _WRITE and not events & _WRITE:
            loop.remove_writer(w.dup)
        if events & _READ and not old & _READ:
            loop.add_reader(w.dup, self._on_read, w.fd)
        if events & _WRITE and not old & _WRITE:
            loop.add_writer(w.dup, self._on_write, w.fd)
        w.reg = events

    def _call_soon(self, fn):
        return self.loop.call_soon(fn)

    def _call_later(self, delay, fn):
        return self.loop.call_later(delay, fn)

    def _then(self, fut, fn):
        out = self._new_future()

        def done(f):
            if out.done():
                return
            if f.cancelled():
                out.cancel()
            elif f.exception() is not None:
                out.set_exception(f.exception())
            else:
                try:
                    value = fn(f.result())
                except Exception as exc:
                    out.set_exception(exc)
                else:
                    out.set_result(value)
        fut.add_done_callback(done)
        return out


class Bucket(AsyncBucketBase):
    """The couchbase 2.x Bucket; every operation returns an asyncio.Future.

    ``Bucket(connection_string, loop=None, **sync_bucket_kwargs)``.  Nothing
    is sent before ``connect()`` or the first operation."""

    def __init__(self, connection_string=None, loop=None, **kwargs):
        self._loop = loop
        AsyncBucketBase.__init__(self, connection_string, **kwargs)

    def _make_host(self):
        return _AsyncioHost(self, self._loop)

    def n1ql_query(self, *args, **kwargs):
        """Start a N1QL query (arguments as the sync ``n1ql_query``); returns an
        AN1QLRequest: ``await q.future`` then ``for row in q``, or ``async for row
        in q``.  Errors (N1QLError, TimeoutError...) come out of either."""
        kwargs.setdefault("itercls", AN1QLRequest)
        return AsyncBucketBase.n1ql_query(self, *args, **kwargs).start()


class AN1QLRequest(_n1ql.AsyncN1QLRequest):
    """A N1QL request on the asyncio Bucket (2.x's acouchbase)."""

    @property
    def future(self):
        """An awaitable of the request (or of its exception), done once every row is in."""
        return self._fut

    def __aiter__(self):
        return self._arows()

    async def _arows(self):
        await self._fut
        for row in self._batched:
            yield row
