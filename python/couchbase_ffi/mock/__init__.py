"""couchbase_ffi.mock: a Couchbase cluster simulator in pure Python (asyncio, standard library only).

::

    from couchbase_ffi.mock import MockCluster, BucketSpec
    with MockCluster(nodes=4, buckets=[BucketSpec("default", replicas=1),
                                       BucketSpec("cache", "memcached")]) as cluster:
        connstr = cluster.connstr("default")      # couchbase://127.0.0.1:p0,...,127.0.0.1:p3/default
        cluster.failover(1)                       # and kill_node, move_vbuckets, delay, drop, ...

N nodes with a KV port each (binary protocol: HELLO, SASL PLAIN/SCRAM, SELECT_BUCKET, CCCP,
every KV command of a Couchbase bucket, NOT_MY_VBUCKET with the config), one REST port
(``/pools/default/b/<bucket>``, streaming, control under ``/mock/``), vbuckets with active and
replica copies, simulated replication and persistence, and fault injection.  It does not use
the C extension.  ``python -m couchbase_ffi.mock --help`` runs one from the command line.
See docs/mock.md.
"""
from couchbase_ffi.mock.cluster import BucketHandle, MockCluster
from couchbase_ffi.mock.protocol import Feature, Op, Status
from couchbase_ffi.mock.state import COUCHBASE, MEMCACHED, BucketSpec, vbucket_of

__all__ = ["MockCluster", "BucketSpec", "BucketHandle", "Op", "Status", "Feature", "vbucket_of",
           "COUCHBASE", "MEMCACHED"]
