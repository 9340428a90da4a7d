/*
 * Integration tests: cbffi_query (N1QL over the query service) against two
 * mock clusters (python -m couchbase_ffi.mock, separate processes): one
 * with the query service on nodes 0 and 1 of 3, one with no query node.
 * Answers and faults are registered through the mock's HTTP control API
 * (POST /mock/query_register), and what reached the service is read back
 * (POST /mock/query_requests).  Built-in loop and host loop; clients
 * destroyed with a query in flight (ASan/valgrind check the leaks).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cbffi.h"
#include "mockctl.h"

#include <curl/curl.h>
#include <json-c/json.h>
#include <poll.h>

#include "hostloop.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>



static mock m_query;    /* query service on nodes 0 and 1 of 3 */
static mock m_none;     /* no query node */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int setup_all(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *cluster[] = {"--nodes", "3", "--bucket", "default:couchbase:secret",
                             "--bucket", "other:couchbase:pw", "--query-nodes", "0,1", NULL};
    if (mock_start(&m_query, cluster) != 0)
        return -1;
    cluster[7] = ""; /* no query node */
    return mock_start(&m_none, cluster);
}

static int teardown_all(void **state)
{
    (void)state;
    mock_stop(&m_query);
    mock_stop(&m_none);
    curl_global_cleanup();
    return 0;
}

static int reset(void **state)
{
    (void)state;
    json_object *o = mock_control(&m_query, "query_clear", "{}");
    if (!o)
        return -1;
    json_object_put(o);
    return 0;
}

/* ---- helpers ------------------------------------------------------------- */

static cbffi_client *client_for(const char *cs, const char *user, const char *pass)
{
    char err[256];
    cbffi_client *c = NULL;
    if (cbffi_client_create(&c, cs, user, pass, err, sizeof err) != CBFFI_OK)
        fail_msg("create %s: %s", cs, err);
    return c;
}

static cbffi_result one(cbffi_client *c)
{
    cbffi_result r[2];
    size_t n = cbffi_wait(c, r, 2);
    assert_int_equal(n, 1);
    assert_true(r[0].final);
    return r[0];
}

static cbffi_client *connected_to(const mock *m, const char *options)
{
    char cs[700];
    snprintf(cs, sizeof cs, "%s%s", m->connstr, options ? options : "");
    cbffi_client *c = client_for(cs, NULL, "secret");
    assert_int_equal(cbffi_connect(c, 0), CBFFI_OK);
    assert_int_equal(one(c).rc, CBFFI_OK);
    return c;
}

/* One query through the built-in loop: its result, the body copied into
   body (NUL-terminated, cut to nbody). */
static cbffi_result query(cbffi_client *c, const char *json, uint64_t timeout_us,
                          char *body, size_t nbody)
{
    assert_int_equal(cbffi_query(c, json, strlen(json), timeout_us, 7), CBFFI_OK);
    cbffi_result r = one(c);
    assert_int_equal(r.op, CBFFI_OP_QUERY);
    assert_int_equal(r.cookie, 7);
    assert_int_equal(r.server, -1);
    if (body)
        snprintf(body, nbody, "%.*s", (int)r.nvalue, r.value ? r.value : "");
    return r;
}

static json_object *field(json_object *o, const char *name)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, name, &v))
        fail_msg("no field %s in %s", name, json_object_to_json_string(o));
    return v;
}

/* ---- tests --------------------------------------------------------------- */

static void rows_come_back(void **state)
{
    (void)state;
    mock_control_ok(&m_query, "query_register",
               "{\"statement\": \"SELECT name FROM default\","
               " \"rows\": [{\"name\": \"a\"}, {\"name\": \"b\"}]}");
    cbffi_client *c = connected_to(&m_query, NULL);
    char body[4096];
    cbffi_result r = query(c, "{\"statement\":\"SELECT name FROM default\"}", 0, body,
                           sizeof body);
    assert_int_equal(r.rc, CBFFI_OK);
    assert_int_equal(r.status, 200);
    json_object *o = json_tokener_parse(body);
    assert_non_null(o);
    json_object *rows = field(o, "results");
    assert_int_equal(json_object_array_length(rows), 2);
    assert_string_equal(json_object_get_string(field(json_object_array_get_idx(rows, 1), "name")),
                        "b");
    assert_string_equal(json_object_get_string(field(o, "status")), "success");
    json_object_put(o);
    cbffi_client_destroy(c);
}

static void body_and_credentials_reach_the_service(void **state)
{
    (void)state;
    mock_control_ok(&m_query, "query_register", "{\"statement\": \"SELECT $1, $x\", \"rows\": []}");
    cbffi_client *c = connected_to(&m_query, NULL);
    const char *q = "{\"statement\":\"SELECT $1, $x\",\"args\":[1,\"two\"],\"$x\":{\"y\":3},"
                    "\"scan_consistency\":\"request_plus\",\"client_context_id\":\"ctx-1\"}";
    assert_int_equal(query(c, q, 0, NULL, 0).rc, CBFFI_OK);
    json_object *reqs = mock_control(&m_query, "query_requests", "{}");
    assert_non_null(reqs);
    assert_int_equal(json_object_array_length(reqs), 1);
    json_object *req = json_object_array_get_idx(reqs, 0);
    assert_string_equal(json_object_get_string(field(req, "user")), "default");
    assert_true(json_object_get_boolean(field(req, "authorized")));
    assert_string_equal(json_object_get_string(field(req, "content_type")), "application/json");
    assert_string_equal(json_object_get_string(field(req, "scan_consistency")), "request_plus");
    assert_string_equal(json_object_get_string(field(req, "client_context_id")), "ctx-1");
    json_object *args = field(req, "args");
    assert_int_equal(json_object_get_int(json_object_array_get_idx(args, 0)), 1);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(args, 1)), "two");
    assert_int_equal(json_object_get_int(field(field(field(req, "named"), "$x"), "y")), 3);
    json_object_put(reqs);
    cbffi_client_destroy(c);
}

static void query_nodes_in_turn(void **state)
{
    (void)state;
    cbffi_client *c = connected_to(&m_query, NULL);
    const char *q = "{\"statement\":\"SELECT COUNT(*) FROM default\"}";
    for (int i = 0; i < 6; i++)
        assert_int_equal(query(c, q, 0, NULL, 0).rc, CBFFI_OK);
    json_object *reqs = mock_control(&m_query, "query_requests", "{}");
    assert_int_equal(json_object_array_length(reqs), 6);
    int per_node[3] = {0, 0, 0};
    for (size_t i = 0; i < 6; i++)
        per_node[json_object_get_int(field(json_object_array_get_idx(reqs, i), "node"))]++;
    assert_int_equal(per_node[0], 3);   /* nodes 0 and 1 alternate */
    assert_int_equal(per_node[1], 3);
    assert_int_equal(per_node[2], 0);   /* node 2 runs no query service */
    json_object_put(reqs);
    cbffi_client_destroy(c);
}

static void builtin_statements_read_the_kv_data(void **state)
{
    (void)state;
    cbffi_client *c = connected_to(&m_query, NULL);
    const char *keys[] = {"q:a", "q:b"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(cbffi_store(c, CBFFI_OP_SET, keys[i], 3, "{\"v\":1}", 7, 0, 0, 0, 0),
                         CBFFI_OK);
        assert_int_equal(one(c).rc, CBFFI_OK);
    }
    char body[4096];
    cbffi_result r = query(c, "{\"statement\":\"SELECT * FROM default USE KEYS "
                              "[\\\"q:a\\\", \\\"q:b\\\", \\\"q:none\\\"]\"}", 0, body, sizeof body);
    assert_int_equal(r.rc, CBFFI_OK);
    json_object *o = json_tokener_parse(body);
    json_object *rows = field(o, "results");
    assert_int_equal(json_object_array_length(rows), 2);
    assert_int_equal(json_object_get_int(field(field(json_object_array_get_idx(rows, 0),
                                                     "default"), "v")), 1);
    json_object_put(o);
    cbffi_client_destroy(c);
}

static void n1ql_errors_are_http_errors_with_the_body(void **state)
{
    (void)state;
    cbffi_client *c = connected_to(&m_query, NULL);
    char body[4096];
    cbffi_result r = query(c, "{\"statement\":\"SELEKT nonsense\"}", 0, body, sizeof body);
    assert_int_equal(r.rc, CBFFI_HTTP_ERROR);
    assert_int_equal(r.status, 400);
    json_object *o = json_tokener_parse(body);
    json_object *err = json_object_array_get_idx(field(o, "errors"), 0);
    assert_int_equal(json_object_get_int(field(err, "code")), 3000);
    assert_non_null(strstr(json_object_get_string(field(err, "msg")), "syntax error"));
    json_object_put(o);
    assert_non_null(strstr(cbffi_client_last_error(c), "HTTP 400"));
    /* a registered 4000-class error: its HTTP status by range */
    mock_control_ok(&m_query, "query_register", "{\"statement\": \"SELECT * FROM nowhere\","
               " \"errors\": [{\"code\": 4000, \"msg\": \"No index available\"}]}");
    r = query(c, "{\"statement\":\"SELECT * FROM nowhere\"}", 0, NULL, 0);
    assert_int_equal(r.rc, CBFFI_HTTP_ERROR);
    assert_int_equal(r.status, 404);
    cbffi_client_destroy(c);
}

static void no_access_is_an_auth_error(void **state)
{
    (void)state;
    /* user "default" may not read bucket "other": 13014, HTTP 401 */
    cbffi_client *c = connected_to(&m_query, NULL);
    char body[4096];
    cbffi_result r = query(c, "{\"statement\":\"SELECT RAW META().id FROM other\"}", 0, body,
                           sizeof body);
    assert_int_equal(r.rc, CBFFI_AUTH_ERROR);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(body, "13014"));
    cbffi_client_destroy(c);
}

static void slow_silent_closing_and_garbage_servers(void **state)
{
    (void)state;
    mock_control_ok(&m_query, "query_register", "{\"statement\": \"slow\", \"delay\": 5}");
    mock_control_ok(&m_query, "query_register", "{\"statement\": \"silent\", \"delay\": \"inf\"}");
    mock_control_ok(&m_query, "query_register", "{\"statement\": \"close\", \"fault\": \"close\"}");
    mock_control_ok(&m_query, "query_register", "{\"statement\": \"garbage\", \"fault\": \"garbage\"}");
    mock_control_ok(&m_query, "query_register",
               "{\"statement\": \"truncate\", \"fault\": \"truncate\", \"rows\": [1, 2, 3]}");
    cbffi_client *c = connected_to(&m_query, "?query_timeout=400ms");
    assert_int_equal(cbffi_client_get_timeout(c, CBFFI_TIMEOUT_QUERY), 400000);
    double t0 = now_s();
    cbffi_result r = query(c, "{\"statement\":\"slow\"}", 0, NULL, 0);
    double dt = now_s() - t0;
    assert_int_equal(r.rc, CBFFI_ETIMEDOUT);
    assert_int_equal(r.nvalue, 0);
    assert_true(dt >= 0.35 && dt < 2.0);
    /* a per-request timeout beats the client's */
    t0 = now_s();
    r = query(c, "{\"statement\":\"silent\"}", 150000, NULL, 0);
    dt = now_s() - t0;
    assert_int_equal(r.rc, CBFFI_ETIMEDOUT);
    assert_true(dt >= 0.12 && dt < 1.0);
    t0 = now_s();
    assert_int_equal(query(c, "{\"statement\":\"close\"}", 0, NULL, 0).rc, CBFFI_NETWORK_ERROR);
    assert_int_equal(query(c, "{\"statement\":\"garbage\"}", 0, NULL, 0).rc,
                     CBFFI_PROTOCOL_ERROR);
    r = query(c, "{\"statement\":\"truncate\"}", 0, NULL, 0);
    assert_int_equal(r.rc, CBFFI_NETWORK_ERROR);
    assert_int_equal(r.nvalue, 0);
    assert_true(now_s() - t0 < 0.4 * 3);   /* each ends before its timeout */
    /* and the client still works */
    assert_int_equal(query(c, "{\"statement\":\"SELECT COUNT(*) FROM default\"}", 0, NULL, 0).rc,
                     CBFFI_OK);
    cbffi_client_destroy(c);
}

static void large_responses_and_the_bound(void **state)
{
    (void)state;
    /* 20000 rows, about 600 KB */
    size_t cap = 1 << 20, n = 0;
    char *reg = malloc(cap);
    n += (size_t)snprintf(reg + n, cap - n, "{\"statement\": \"big\", \"rows\": [");
    for (int i = 0; i < 20000; i++)
        n += (size_t)snprintf(reg + n, cap - n, "%s{\"i\":%d,\"pad\":\"xxxxxxxxxx\"}",
                              i ? "," : "", i);
    snprintf(reg + n, cap - n, "]}");
    mock_control_ok(&m_query, "query_register", reg);
    free(reg);
    cbffi_client *c = connected_to(&m_query, NULL);
    assert_int_equal(cbffi_query(c, "{\"statement\":\"big\"}", 19, 0, 1), CBFFI_OK);
    cbffi_result r = one(c);
    assert_int_equal(r.rc, CBFFI_OK);
    assert_true(r.nvalue > 500000);
    json_tokener *tok = json_tokener_new();
    json_object *p = json_tokener_parse_ex(tok, r.value, (int)r.nvalue);
    assert_non_null(p);
    assert_int_equal(json_object_array_length(field(p, "results")), 20000);
    json_object_put(p);
    json_tokener_free(tok);
    cbffi_client_destroy(c);

    c = connected_to(&m_query, "?http_max_response=65536");
    r = query(c, "{\"statement\":\"big\"}", 0, NULL, 0);
    assert_int_equal(r.rc, CBFFI_E2BIG);
    assert_int_equal(r.nvalue, 0);
    assert_non_null(strstr(cbffi_client_last_error(c), "http_max_response"));
    cbffi_client_destroy(c);
}

static void no_query_node(void **state)
{
    (void)state;
    /* with the map known: refused at once */
    cbffi_client *c = connected_to(&m_none, NULL);
    const char *q = "{\"statement\":\"SELECT 1\"}";
    assert_int_equal(cbffi_query(c, q, strlen(q), 0, 0), CBFFI_NOT_SUPPORTED);
    assert_non_null(strstr(cbffi_client_last_error(c), "query service"));
    assert_int_equal(cbffi_pending(c), 0);
    cbffi_client_destroy(c);
    /* before the map: scheduled, then fails when the map says so */
    c = client_for(m_none.connstr, NULL, "secret");
    assert_int_equal(cbffi_query(c, q, strlen(q), 0, 0), CBFFI_OK);
    assert_int_equal(one(c).rc, CBFFI_NOT_SUPPORTED);
    cbffi_client_destroy(c);
}

static void before_connect_the_query_waits_for_the_map(void **state)
{
    (void)state;
    cbffi_client *c = client_for(m_query.connstr, NULL, "secret");
    const char *q = "{\"statement\":\"SELECT COUNT(*) FROM default\"}";
    assert_int_equal(cbffi_query(c, q, strlen(q), 0, 0), CBFFI_OK);
    cbffi_result r = one(c);
    assert_int_equal(r.rc, CBFFI_OK);
    assert_int_equal(r.status, 200);
    cbffi_client_destroy(c);
    /* a failed bootstrap fails it with the bootstrap's rc */
    c = client_for(m_query.connstr, NULL, "wrong password");
    assert_int_equal(cbffi_query(c, q, strlen(q), 0, 0), CBFFI_OK);
    assert_int_equal(one(c).rc, CBFFI_AUTH_ERROR);
    cbffi_client_destroy(c);
}

static void refused_arguments(void **state)
{
    (void)state;
    cbffi_client *c = client_for("memcached://127.0.0.1:1", NULL, NULL);
    assert_int_equal(cbffi_query(c, "{}", 2, 0, 0), CBFFI_NOT_SUPPORTED);
    cbffi_client_destroy(c);
    c = client_for(m_query.connstr, NULL, "secret");
    assert_int_equal(cbffi_query(c, "", 0, 0, 0), CBFFI_EINVAL);
    assert_int_equal(cbffi_query(c, NULL, 0, 0, 0), CBFFI_EINVAL);
    assert_int_equal(cbffi_client_get_timeout(c, CBFFI_TIMEOUT_QUERY), 75000000);
    assert_int_equal(cbffi_client_set_timeout(c, CBFFI_TIMEOUT_QUERY, 1000), CBFFI_OK);
    assert_int_equal(cbffi_client_get_timeout(c, CBFFI_TIMEOUT_QUERY), 1000);
    cbffi_client_destroy(c);
    char err[256];
    c = NULL;
    assert_int_equal(cbffi_client_create(&c, "couchbase://h/b?http_max_response=12", NULL, NULL,
                                         err, sizeof err), CBFFI_EINVAL);
    assert_non_null(strstr(err, "http_max_response"));
    assert_int_equal(cbffi_client_create(&c, "couchbase://h/b?n1ql_timeout=2s", NULL, NULL,
                                         err, sizeof err), CBFFI_OK);
    assert_int_equal(cbffi_client_get_timeout(c, CBFFI_TIMEOUT_QUERY), 2000000);
    cbffi_client_destroy(c);
}

/* ---- the host loop: hostloop.c ------------------------------------------- */

static void host_loop_queries_with_kv(void **state)
{
    (void)state;
    mock_control_ok(&m_query, "query_register", "{\"statement\": \"slowish\", \"delay\": 0.2,"
               " \"rows\": [42]}");
    cbffi_client *c = client_for(m_query.connstr, NULL, "secret");
    const char *q1 = "{\"statement\":\"slowish\"}";
    const char *q2 = "{\"statement\":\"SELECT RAW COUNT(*) FROM default\"}";
    /* before any map: both wait for the bootstrap, with a KV op */
    assert_int_equal(cbffi_query(c, q1, strlen(q1), 0, 1), CBFFI_OK);
    assert_int_equal(cbffi_query(c, q2, strlen(q2), 0, 2), CBFFI_OK);
    assert_int_equal(cbffi_store(c, CBFFI_OP_SET, "hl:k", 4, "1", 1, 0, 0, 0, 3), CBFFI_OK);
    cbffi_io_flush(c);
    hostloop L = {.n = 0};
    int got[4] = {0, 0, 0, 0};
    int seen = 0;
    double t0 = now_s();
    while (seen < 3 && now_s() - t0 < 10) {
        hl_step(c, &L);
        cbffi_result r[8];
        size_t n = cbffi_harvest(c, r, 8);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(r[i].rc, CBFFI_OK);
            assert_true(r[i].cookie >= 1 && r[i].cookie <= 3);
            got[r[i].cookie]++;
            seen++;
            if (r[i].cookie == 1)
                assert_non_null(strstr(r[i].value, "[42]"));
        }
    }
    assert_int_equal(got[1] + got[2] + got[3], 3);
    assert_int_equal(got[1], 1);
    cbffi_client_destroy(c);
}

static void destroyed_with_a_query_in_flight(void **state)
{
    (void)state;
    mock_control_ok(&m_query, "query_register", "{\"statement\": \"forever\", \"delay\": \"inf\"}");
    cbffi_client *c = connected_to(&m_query, NULL);
    const char *q = "{\"statement\":\"forever\"}";
    assert_int_equal(cbffi_query(c, q, strlen(q), 0, 0), CBFFI_OK);
    assert_int_equal(cbffi_query(c, q, strlen(q), 0, 1), CBFFI_OK);
    cbffi_io_flush(c);
    for (int i = 0; i < 5; i++) {
        cbffi_watch w[16];
        while (cbffi_io_watches(c, w, 16) > 0) {
        }
        usleep(20000);
        cbffi_io_tick(c);
    }
    assert_int_equal(cbffi_pending(c), 2);
    cbffi_client_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(rows_come_back, reset),
        cmocka_unit_test_setup(body_and_credentials_reach_the_service, reset),
        cmocka_unit_test_setup(query_nodes_in_turn, reset),
        cmocka_unit_test_setup(builtin_statements_read_the_kv_data, reset),
        cmocka_unit_test_setup(n1ql_errors_are_http_errors_with_the_body, reset),
        cmocka_unit_test_setup(no_access_is_an_auth_error, reset),
        cmocka_unit_test_setup(slow_silent_closing_and_garbage_servers, reset),
        cmocka_unit_test_setup(large_responses_and_the_bound, reset),
        cmocka_unit_test_setup(no_query_node, reset),
        cmocka_unit_test_setup(before_connect_the_query_waits_for_the_map, reset),
        cmocka_unit_test_setup(refused_arguments, reset),
        cmocka_unit_test_setup(host_loop_queries_with_kv, reset),
        cmocka_unit_test_setup(destroyed_with_a_query_in_flight, reset),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
