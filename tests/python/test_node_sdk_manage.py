"""Fidelity of the mock's management side: the official Couchbase Node.js SDK's bucket, user
and query-index managers (tests/node/sdk_manage.js) against mock/manage.py and
mock/indexes.py; then what the mock holds afterwards, from its Python API."""
import pytest

from couchbase_ffi.mock import BucketSpec, MockCluster
from test_node_sdk import run_script, sdk_available

pytestmark = pytest.mark.skipif(not sdk_available(),
                                reason="node or the couchbase SDK (tests/node/node_modules) is missing")

MANAGE_CHECKS = ["connect", "bucket_create", "bucket_create_existing", "bucket_get", "bucket_list",
                 "bucket_use_and_flush", "bucket_drop", "bucket_get_missing", "bucket_drop_missing",
                 "user_upsert_and_get", "user_list", "user_logs_in", "user_drop",
                 "user_dropped_cannot_log_in", "index_create_primary",
                 "index_create_primary_existing", "index_create_primary_ignore",
                 "index_create_deferred", "index_list", "index_build_and_watch", "index_drop",
                 "index_drop_missing"]


def test_sdk_bucket_user_and_index_managers():
    with MockCluster(nodes=3, buckets=[BucketSpec("default", replicas=1)],
                     users={"Administrator": "password"}, persist_delay=0.001,
                     replicate_delay=0.001) as cluster:
        proc, lines = run_script("sdk_manage.js", cluster.connstr("default"), "Administrator",
                                 "password", "default")
        statements = [r["statement"] for r in cluster.query_requests()]
        indexes_left = cluster.query_indexes("default")
        buckets_left = sorted(cluster.state()["buckets"])
    detail = "\n".join(lines) + "\n--- stderr ---\n" + proc.stderr[-4000:]
    for name in MANAGE_CHECKS:
        assert "OK " + name in lines, "check %s failed:\n%s" % (name, detail)
    assert not [l for l in lines if l.startswith("FAIL")], detail
    assert lines[-1] == "DONE %d/%d" % (len(MANAGE_CHECKS), len(MANAGE_CHECKS)), detail
    assert proc.returncode == 0, detail
    # the SDK's own spelling of the index statements reached the mock's parser
    assert any(s.startswith("CREATE INDEX `sdk_city` ON default:`default`") for s in statements)
    assert any(s.startswith("BUILD INDEX ON default:`default`") for s in statements)
    assert indexes_left == []
    assert buckets_left == ["default"]       # sdkb made and dropped
