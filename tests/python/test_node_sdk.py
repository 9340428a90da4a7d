"""Fidelity: the official Couchbase Node.js SDK (4.x, tests/node) against couchbase_ffi.mock.

Skipped only when ``node`` or the installed SDK is missing (scripts/install-deps.sh installs it).
"""
import os
import shutil
import subprocess

import pytest

from couchbase_ffi.mock import BucketSpec, Feature, MockCluster

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, "..", "node")
NODE = shutil.which("node")

CHECKS = ["connect", "upsert", "get", "get_missing", "exists", "insert_existing", "replace_cas",
          "replace_cas_mismatch", "touch", "append_prepend", "get_and_touch", "legacy_durability",
          "legacy_durability_impossible",
          "get_all_replicas", "get_any_replica", "get_and_lock_unlock",
          "lookup_in", "lookup_in_missing_path", "lookup_in_path_mismatch", "lookup_in_missing_doc",
          "mutate_in_paths", "mutate_in_arrays", "mutate_in_add_unique_exists", "mutate_in_counters",
          "mutate_in_missing_path", "mutate_in_path_mismatch", "mutate_in_insert_existing_path",
          "mutate_in_atomic", "mutate_in_cas_mismatch", "mutate_in_missing_doc",
          "mutate_in_upsert_document", "mutate_in_insert_document_exists", "mutate_in_expiry",
          "remove",
          "get_after_remove", "exists_after_remove", "remove_missing", "increment_initial", "increment", "decrement",
          "decrement_clamps_at_zero", "increment_missing_no_initial", "counter_is_a_document",
          "many_keys_across_nodes", "wrong_password"]


def sdk_available():
    if NODE is None or not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "couchbase")):
        return False
    probe = subprocess.run([NODE, "-e", "require('couchbase')"], cwd=NODE_DIR, capture_output=True,
                           timeout=60)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(not sdk_available(),
                                reason="node or the couchbase SDK (tests/node/node_modules) is missing")


def run_script(script, *args):
    proc = subprocess.run([NODE, script] + list(args), cwd=NODE_DIR, capture_output=True, text=True,
                          timeout=180)
    lines = proc.stdout.splitlines()
    return proc, lines


@pytest.mark.parametrize("replicas,user,password", [(1, "Administrator", "password"),
                                                     (2, "default", "bucketpw")])
def test_sdk_basic_operations(replicas, user, password):
    with MockCluster(nodes=4, buckets=[BucketSpec("default", password="bucketpw", replicas=replicas)],
                     persist_delay=0.001, replicate_delay=0.001) as cluster:
        proc, lines = run_script("sdk_check.js", cluster.connstr("default"), user, password, "default")
    detail = "\n".join(lines) + "\n--- stderr ---\n" + proc.stderr[-4000:]
    for name in CHECKS:
        assert "OK " + name in lines, "check %s failed:\n%s" % (name, detail)
    assert not [l for l in lines if l.startswith("FAIL")], detail
    assert lines[-1] == "DONE %d/%d" % (len(CHECKS), len(CHECKS)), detail
    assert proc.returncode == 0, detail


@pytest.mark.parametrize("push", [True, False], ids=["config-push", "nmv-only"])
def test_sdk_survives_failover_and_vbucket_moves(push):
    refuse = [] if push else [Feature.CLUSTERMAP_CHANGE_NOTIFICATION]
    with MockCluster(nodes=4, buckets=[BucketSpec("default", replicas=1)], refuse_features=refuse,
                     persist_delay=0.001, replicate_delay=0.001) as cluster:
        proc, lines = run_script("sdk_failover.js", cluster.connstr("default"), "Administrator", "password",
                                 "default", "http://127.0.0.1:%d" % cluster.rest_port)
        rev = cluster.bucket("default").rev
        state = cluster.state()
        nmv = sum(cluster.node_stats(n).get("not_my_vbucket", 0) for n in range(4))
    detail = "\n".join(lines) + "\n--- stderr ---\n" + proc.stderr[-4000:]
    if not push:      # the SDK can only have learnt of the changes from NOT_MY_VBUCKET replies (or polling)
        detail += "\nNOT_MY_VBUCKET replies: %d" % nmv
        assert nmv > 0, detail
    assert proc.returncode == 0, detail
    for name in ("connect", "write_before", "failover", "read_after_failover", "write_after_failover",
                 "move_vbuckets", "read_after_move"):
        assert "OK " + name in lines, "check %s failed:\n%s" % (name, detail)
    assert state["nodes"][1]["failed_over"] is True and rev >= 3
