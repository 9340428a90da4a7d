"""Config changes learnt in the background: server-pushed configs (HELLO DUPLEX +
CLUSTERMAP_CHANGE_NOTIFICATION) and, with push refused, ``config_poll_interval``.

An asyncio Bucket keeps its sockets and its deadline on the loop, so a change is
learnt while the application only sleeps; the operations after it go straight to
the new owners and no node answers NOT_MY_VBUCKET."""
import asyncio
import time

import pytest

from couchbase_ffi import exceptions as E
from couchbase_ffi.asyncio import Bucket as AsyncBucket
from couchbase_ffi.bucket import Bucket
from couchbase_ffi.mock import MockCluster, BucketSpec
from couchbase_ffi.mock.protocol import Feature


def make_cluster(**kw):
    c = MockCluster(nodes=4, buckets=[BucketSpec("default", "couchbase", password="secret",
                                                 replicas=2)], **kw).start()
    c.set_delays(persist=0.0, replicate=0.0)
    return c


@pytest.fixture
def pushing():
    c = make_cluster()
    yield c
    c.stop()


@pytest.fixture
def silent():
    """Push refused: only NOT_MY_VBUCKET and polling tell a client."""
    c = make_cluster(refuse_features=[Feature.CLUSTERMAP_CHANGE_NOTIFICATION])
    yield c
    c.stop()


def nmv_total(cluster):
    return sum(cluster.node_stats(i).get("not_my_vbucket", 0) for i in range(4))


def run(coro):
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def ports(b):
    return sorted(int(n.rsplit(":", 1)[1]) for n in b.server_nodes)


async def learns_failover(cluster, connstr, wait):
    b = AsyncBucket(connstr, password="secret")
    await b.connect()
    kv = {"bg:%d" % i: i for i in range(64)}   # every node gets a connection
    for k, v in kv.items():
        await b.upsert(k, v, replicate_to=2)
    nmv = nmv_total(cluster)
    cluster.failover(2)
    t0 = time.time()
    while cluster.kv_ports[2] in ports(b) and time.time() - t0 < wait:
        await asyncio.sleep(0.02)              # no operation: the loop only listens
    took = time.time() - t0
    assert cluster.kv_ports[2] not in ports(b)
    for k, v in kv.items():
        assert (await b.get(k)).value == v
    assert nmv_total(cluster) == nmv           # learnt before any operation needed it
    b.close()
    return took


def test_pushed_failover_is_learnt_without_not_my_vbucket(pushing):
    connstr = pushing.connstr("default", config_poll_interval="0")
    assert run(learns_failover(pushing, connstr, 2.0)) < 1.0


def test_polling_learns_a_failover_within_the_interval_when_push_is_refused(silent):
    connstr = silent.connstr("default", config_poll_interval="300ms")
    assert run(learns_failover(silent, connstr, 2.0)) < 0.3 + 0.3


def test_without_push_or_polling_nothing_is_learnt_by_waiting(silent):
    async def main():
        b = AsyncBucket(silent.connstr("default", config_poll_interval="0"), password="secret")
        await b.connect()
        for i in range(64):
            await b.upsert("np:%d" % i, i)
        silent.failover(2)
        await asyncio.sleep(0.6)
        assert silent.kv_ports[2] in ports(b)
        # NOT_MY_VBUCKET still gets every operation through
        for i in range(64):
            assert (await b.get("np:%d" % i)).value == i
        assert silent.kv_ports[2] not in ports(b)
        b.close()
    run(main())


def test_config_poll_interval_settings(silent):
    b = Bucket(silent.connstr("default", config_poll_interval="2.5s"), password="secret")
    LCB_CNTL_CONFIG_POLL_INTERVAL = 0x46
    assert b._cntl(LCB_CNTL_CONFIG_POLL_INTERVAL, value_type="timeout") == 2.5
    b._cntl(LCB_CNTL_CONFIG_POLL_INTERVAL, 0.5, value_type="timeout")
    assert b._cntl(LCB_CNTL_CONFIG_POLL_INTERVAL) == 500000
    b._cntl(LCB_CNTL_CONFIG_POLL_INTERVAL, 0)        # off
    assert b._cntl(LCB_CNTL_CONFIG_POLL_INTERVAL) == 0
    with pytest.raises(E.ArgumentError):
        b._cntl(LCB_CNTL_CONFIG_POLL_INTERVAL, 10000)  # under libcouchbase's 50 ms floor
    b._cntlstr("config_poll_interval", "750ms")
    assert b._cntl(LCB_CNTL_CONFIG_POLL_INTERVAL) == 750000
    b._cntlstr("config_poll_interval", "0")
    assert b._cntl(LCB_CNTL_CONFIG_POLL_INTERVAL) == 0
    with pytest.raises(E.ArgumentError):
        b._cntlstr("config_poll_interval", "20ms")
    b.close()
    # the default is libcouchbase's 2.5 s; the connection-string option is checked
    b = Bucket(silent.connstr("default"), password="secret")
    assert b._cntl(LCB_CNTL_CONFIG_POLL_INTERVAL) == 2500000
    b.close()
    with pytest.raises(E.CouchbaseError):
        Bucket(silent.connstr("default", config_poll_interval="10ms"), password="secret")
