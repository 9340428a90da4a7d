/* Unit tests: cluster maps a hostile (or broken) server could send, applied
   to a couchbase:// client as a GET_CLUSTER_CONFIG or NOT_MY_VBUCKET body
   would be (cb_cluster_apply_json).  No socket is opened: the servers named
   are never contacted. */
#include "cmocka_inc.h"
#include "client_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cbffi_client *make(void)
{
    cbffi_client *c = NULL;
    char err[200];
    assert_int_equal(cbffi_client_create(&c, "couchbase://127.0.0.1:9/default", NULL,
                                         NULL, err, sizeof err), CBFFI_OK);
    return c;
}

/* A vbucket map with the given serverList (JSON array body), rev and an
   optional nodesExt (JSON array body). */
static int apply(cbffi_client *c, int rev, const char *servers, const char *ext)
{
    char *json = NULL;
    int n = asprintf(&json,
                     "{\"rev\":%d,\"name\":\"default\",\"nodeLocator\":\"vbucket\","
                     "%s%s%s"
                     "\"vBucketServerMap\":{\"hashAlgorithm\":\"CRC\",\"numReplicas\":0,"
                     "\"serverList\":[%s],\"vBucketMap\":[[0],[0],[0],[0]]}}",
                     rev, ext ? "\"nodesExt\":[" : "", ext ? ext : "", ext ? "]," : "",
                     servers);
    assert_true(n > 0);
    int rc = cb_cluster_apply_json(c, json, (size_t)n, "127.0.0.1");
    free(json);
    return rc;
}

/* A server listed twice where one conn of that name exists: the second
   entry found no conn to reuse and none was created for it (NULL deref). */
static void duplicate_servers_in_a_new_map(void **state)
{
    (void)state;
    cbffi_client *c = make();
    assert_int_equal(apply(c, 1, "\"127.0.0.1:9\"", NULL), 1);
    assert_int_equal(c->nconns, 1);
    cb_conn *first = c->conns[0];
    assert_int_equal(apply(c, 2, "\"127.0.0.1:9\",\"127.0.0.1:9\",\"127.0.0.1:9\"", NULL), 1);
    assert_int_equal(c->nconns, 3);
    assert_ptr_equal(c->conns[0], first);      /* kept */
    for (int i = 0; i < 3; i++) {
        assert_non_null(c->conns[i]);
        assert_int_equal(c->conns[i]->index, i);
    }
    assert_ptr_not_equal(c->conns[1], c->conns[2]);
    /* and back to one: the extra ones retire */
    assert_int_equal(apply(c, 3, "\"127.0.0.1:9\"", NULL), 1);
    assert_int_equal(c->nconns, 1);
    assert_int_equal(cbffi_get(c, "k", 1, CBFFI_GET_PLAIN, 0, 0), CBFFI_OK);
    cbffi_client_destroy(c);
}

/* The bootstrap conn (seed) is adopted by the first map entry naming it; a
   second entry with the same name got nothing (NULL deref). */
static void duplicate_of_the_seed(void **state)
{
    (void)state;
    cbffi_client *c = make();
    c->seed = cb_conn_new(c, -1, "127.0.0.1", 9, 0);
    assert_non_null(c->seed);
    cb_conn *seed = c->seed;
    assert_int_equal(apply(c, 1, "\"127.0.0.1:9\",\"127.0.0.1:9\"", NULL), 1);
    assert_int_equal(c->nconns, 2);
    assert_null(c->seed);
    assert_ptr_equal(c->conns[0], seed);
    assert_non_null(c->conns[1]);
    assert_ptr_not_equal(c->conns[1], seed);
    cbffi_client_destroy(c);
}

/* flush goes to the REST port of the first nodesExt entry with one; a host
   name of a few KiB (the map parser accepts 4096 bytes) overran the 700-byte
   URL buffer on the stack. */
static void flush_to_a_very_long_rest_host(void **state)
{
    (void)state;
    cbffi_client *c = make();
    char host[3001];
    memset(host, 'h', sizeof host - 1);
    host[sizeof host - 1] = 0;
    char ext[3200];
    snprintf(ext, sizeof ext, "{\"hostname\":\"%s\",\"services\":{\"kv\":9,\"mgmt\":9}}",
             host);
    assert_int_equal(apply(c, 1, "\"127.0.0.1:9\"", ext), 1);
    int rc = cbffi_flush(c, 7);
    assert_int_not_equal(rc, CBFFI_OK);
    assert_true(strlen(cbffi_client_last_error(c)) > 0);
    assert_int_equal(cbffi_pending(c), 0);
    cbffi_client_destroy(c);
}

/* conn->name was a char[280]: a longer host name (the map parser keeps up
   to 4096 bytes) was cut, so it never matched its map entry again and every
   newer map retired the conn and opened a new one (and a seed with such a
   name was never adopted). */
static void long_host_names_keep_their_conn(void **state)
{
    (void)state;
    cbffi_client *c = make();
    char host[1001], server[1100];
    memset(host, 'h', sizeof host - 1);
    host[sizeof host - 1] = 0;
    memcpy(host + sizeof host - 9, ".example", 8);
    snprintf(server, sizeof server, "\"%s:11210\"", host);
    c->seed = cb_conn_new(c, -1, host, 11210, 0);
    assert_non_null(c->seed);
    cb_conn *seed = c->seed;
    assert_int_equal(apply(c, 1, server, NULL), 1);
    assert_int_equal(c->nconns, 1);
    assert_ptr_equal(c->conns[0], seed);       /* adopted */
    assert_null(c->seed);
    assert_int_equal(apply(c, 2, server, NULL), 1);
    assert_int_equal(apply(c, 3, server, NULL), 1);
    assert_int_equal(c->nconns, 1);
    assert_ptr_equal(c->conns[0], seed);       /* kept across newer maps */
    assert_null(c->graveyard);
    char want[1100];
    snprintf(want, sizeof want, "%s:11210", host);
    assert_string_equal(cbffi_client_server_name(c, 0), want);
    cbffi_client_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(duplicate_servers_in_a_new_map),
        cmocka_unit_test(duplicate_of_the_seed),
        cmocka_unit_test(flush_to_a_very_long_rest_host),
        cmocka_unit_test(long_host_names_keep_their_conn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
