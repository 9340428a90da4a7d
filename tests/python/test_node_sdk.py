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

CHECKS = ["connect", "upsert", "mutation_token", "get", "get_missing", "exists", "insert_existing", "replace_cas",
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


def test_sdk_validates_the_mock_tls(tmp_path):
    """couchbases:// with the SDK's trust store set to the test CA: the official client validates
    the mock's certificate (chain and IP address), bootstraps over the TLS KV ports (kvSSL) and
    works; with an unrelated CA it refuses the mock."""
    from tlshelp import Certs
    certs = Certs(tmp_path)
    with MockCluster(nodes=3, buckets=[BucketSpec("default", replicas=1)], tls=certs.server,
                     persist_delay=0.001, replicate_delay=0.001) as cluster:
        proc, lines = run_script("sdk_tls.js", cluster.tls_connstr("default"), "Administrator",
                                 "password", "default", certs.ca, certs.other_ca)
    detail = "\n".join(lines) + "\n--- stderr ---\n" + proc.stderr[-4000:]
    for name in ("connect_tls", "upsert", "get", "many_keys_across_nodes", "get_after_remove",
                 "wrong_ca_refused"):
        assert "OK " + name in lines, "check %s failed:\n%s" % (name, detail)
    assert lines[-1] == "DONE 6/6", detail
    assert proc.returncode == 0, detail


SERVICE_CHECKS = [
    "connect", "query_registered_rows", "query_metrics", "query_warnings", "query_streaming_rows",
    "query_positional_parameters", "query_named_parameters", "query_not_bounded_readonly",
    "query_consistent_with", "query_registered_syntax_error", "query_unknown_statement",
    "query_index_not_found", "query_planning_failure", "query_dml_cas_mismatch", "query_rate_limited",
    "query_registered_auth_failure", "query_timeout", "query_server_500",
    "query_builtin_use_keys", "query_builtin_use_keys_named", "query_builtin_ids", "query_builtin_count",
    "query_builtin_missing_parameter", "query_builtin_unknown_keyspace",
    "query_prepared_use_keys", "query_prepared_named_parameters", "query_prepared_metrics",
    "query_prepared_syntax_error", "query_prepared_planning_failure",
    "ddoc_upsert", "ddoc_get", "ddoc_upsert_dev_and_publish", "ddoc_get_all", "ddoc_get_missing",
    "ddoc_drop", "ddoc_drop_missing",
    "view_builtin_by_n", "view_limit_skip", "view_key", "view_keys", "view_range", "view_id_range",
    "view_descending", "view_by_meta_id", "view_reduce_count", "view_sees_kv_changes",
    "view_development_namespace", "view_registered", "view_registered_streaming",
    "view_registered_failure", "view_registered_timeout",
    "view_missing_view", "view_missing_ddoc", "view_bad_parameter", "view_javascript",
    "query_no_access_to_bucket"]


def _register_services(cluster, bucket):
    b = "`%s`" % bucket
    rows = [{"name": "a", "n": 1}, {"name": "b", "n": 2}]
    cluster.query_register('SELECT name, n FROM %s WHERE kind = "sdk"' % b, rows=rows,
                           metrics={"sortCount": 2})
    cluster.query_register("SELECT warned FROM %s" % b, rows=[{"warned": True}],
                           warnings=[{"code": 4000, "msg": "a registered warning"}])
    cluster.query_register("SELECT p FROM %s WHERE a = $1 AND b = $2" % b, rows=[{"p": 1}])
    cluster.query_register("SELECT p FROM %s WHERE a = $a AND b = $b" % b, rows=[{"p": 2}])
    cluster.query_register("SELEKT broken", errors=[{"code": 3000, "msg": "syntax error - at broken"}])
    cluster.query_register("SELECT needs_an_index FROM %s" % b, errors=[
        {"code": 12004, "msg": "No index available on keyspace default"}])
    cluster.query_register("SELECT unplannable FROM %s" % b, errors=[
        {"code": 4000, "msg": "No index available"}])
    cluster.query_register("UPDATE %s SET a = 1" % b, errors=[
        {"code": 12009, "msg": "DML Error, possible causes include CAS mismatch"}])
    cluster.query_register("SELECT too_often FROM %s" % b, errors=[
        {"code": 1191, "msg": "User has more requests running than allowed"}], http_status=429)
    cluster.query_register("SELECT secret FROM %s" % b, errors=[
        {"code": 13014, "msg": "User does not have credentials to run SELECT queries"}])
    cluster.query_register("SELECT never_answers FROM %s" % b, delay=float("inf"))
    cluster.query_register("SELECT internal_error FROM %s" % b, errors=[
        {"code": 5000, "msg": "something broke"}])
    cluster.view_register("reg", "rows", rows=[{"id": "r1", "key": ["k", 1], "value": {"v": 1}},
                                               {"id": "r2", "key": ["k", 2], "value": None}],
                          total_rows=42)
    cluster.view_register("reg", "fails", error="error", reason="registered failure")
    cluster.view_register("reg", "never", delay=float("inf"))


def test_sdk_query_and_views():
    """sdk_services.js: cluster.query against registered statements and the built-ins, the
    view index manager and bucket.viewQuery against the built-in subset and registered
    results; then what the SDK sent, from the mock's request logs."""
    with MockCluster(nodes=3, buckets=[BucketSpec("default", replicas=1), BucketSpec("other")],
                     users={"Administrator": "password", "limited": ("lpw", ["other"])},
                     persist_delay=0.001, replicate_delay=0.001) as cluster:
        _register_services(cluster, "default")
        proc, lines = run_script("sdk_services.js", cluster.connstr("default"), "Administrator",
                                 "password", "default", "limited", "lpw", "other")
        queries = cluster.query_requests()
        views = cluster.view_requests()
        ddocs = cluster.design_docs("default")
    detail = "\n".join(lines) + "\n--- stderr ---\n" + proc.stderr[-4000:]
    for name in SERVICE_CHECKS:
        assert "OK " + name in lines, "check %s failed:\n%s" % (name, detail)
    assert not [l for l in lines if l.startswith("FAIL")], detail
    assert lines[-1] == "DONE %d/%d" % (len(SERVICE_CHECKS), len(SERVICE_CHECKS)), detail
    assert proc.returncode == 0, detail

    # ---- what the SDK sent to the query service
    def sent(statement):
        return [r for r in queries if r["statement"] == statement]
    for r in queries:
        assert r["content_type"] == "application/json" and r["body"]["client_context_id"]
        assert r["body"]["timeout"].endswith("ms")
    first = sent('SELECT name, n FROM `default` WHERE kind = "sdk"')
    assert first[0]["client_context_id"] == "sdk-ctx-1" and first[0]["user"] == "Administrator"
    assert first[0]["body"]["metrics"] is False and "metrics" not in first[1]["body"]
    pos = sent("SELECT p FROM `default` WHERE a = $1 AND b = $2")
    assert pos[0]["args"] == ["x", {"y": [1, 2]}] and pos[0]["scan_consistency"] is None
    assert pos[1]["args"] == ["nb", None] and pos[1]["scan_consistency"] == "not_bounded"
    assert pos[1]["readonly"] is True
    named = sent("SELECT p FROM `default` WHERE a = $a AND b = $b")[0]
    assert named["named"] == {"$a": "x", "$b": 7} and named["args"] is None
    assert named["scan_consistency"] == "request_plus"
    at_plus = [r for r in queries if r["scan_consistency"] == "at_plus"]
    assert len(at_plus) == 1 and list(at_plus[0]["scan_vectors"]) == ["default"]
    (vb, (seqno, uuid)), = at_plus[0]["scan_vectors"]["default"].items()
    assert int(vb) >= 0 and seqno > 0 and uuid.isdigit()
    assert sent("SELECT never_answers FROM `default`")[0]["timeout"] == "1500ms"
    keys = sent("SELECT * FROM `default` USE KEYS $1")
    assert keys[0]["args"] == [["sdkq-1", "sdkq-missing", "sdkq-3", "sdkq-raw"]]
    assert sent("SELECT * FROM default USE KEYS $k")[0]["named"] == {"$k": "sdkq-4"}
    denied = [r for r in queries if r["user"] == "limited"]
    assert denied and all(r["authorized"] for r in denied)
    # adhoc: false: one PREPARE with auto_execute per statement, then the name alone
    prepares = [r for r in queries if (r["statement"] or "").startswith("PREPARE ")]
    assert [(r["statement"], r["auto_execute"]) for r in prepares] == [
        ("PREPARE SELECT * FROM `default` USE KEYS $1", True),
        ("PREPARE SELECT p FROM `default` WHERE a = $a AND b = $b", True),
        ('PREPARE SELECT nothing FROM nowhere WHERE nobody = "registered it"', True),
        ("PREPARE SELECT unplannable FROM `default`", True)]
    assert prepares[0]["args"] == [["sdkp-1"]] and prepares[1]["named"] == {"$a": "px", "$b": 0}
    by_name = [r for r in queries if r["prepared"] is not None]
    assert [r["args"] or r["named"] for r in by_name] == [
        [["sdkp-2", "sdkp-3"]], {"$a": "px", "$b": 1}, [["sdkp-3"]]]
    assert all(r["statement"] is None and r["encoded_plan"] is None and
               r["prepared"].startswith("[127.0.0.1:") for r in by_name)
    assert by_name[0]["prepared"] == by_name[2]["prepared"] != by_name[1]["prepared"]

    # ---- what it sent to the view service
    assert sorted(ddocs) == ["dev_devonly", "pub", "sdk"], sorted(ddocs)
    assert sorted(ddocs["sdk"]["views"]) == ["by_id", "by_n", "count_n", "js"]
    assert ddocs["sdk"]["views"]["count_n"]["reduce"] == "_count"
    puts = [(r["method"], r["ddoc"]) for r in views if r["method"] in ("PUT", "DELETE")]
    assert puts == [("PUT", "sdk"), ("PUT", "dev_pub"), ("PUT", "pub"), ("DELETE", "dev_pub"),
                    ("DELETE", "dev_pub"), ("PUT", "dev_devonly")], puts
    queried = [r for r in views if r.get("view")]
    assert all(r["method"] == "POST" and r["content_type"] == "application/json" for r in queried)
    params = [r["params"] for r in queried if r["ddoc"] == "sdk" and r["view"] == "by_n"]
    assert params[0] == {"stale": "false"}
    assert params[1] == {"limit": "2", "skip": "1"}
    assert {"key": "2"} in params
    assert [r["body"] for r in queried if r["body"] and r["body"].get("keys")] == [{"keys": [3, 1, 7]}]
    assert {"start_key": "2", "end_key": "3", "inclusive_end": "false"} in params
    assert {"start_key": "2", "end_key": "2", "start_key_doc_id": "sdkv-d",
            "end_key_doc_id": "sdkv-d"} in params
    assert {"descending": "true", "limit": "3"} in params
    assert [r["ddoc"] for r in queried if r["view"] == "v"] == ["dev_devonly", "devonly", "no_such_ddoc"]
