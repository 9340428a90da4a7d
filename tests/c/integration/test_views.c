/*
 * Integration tests: cbffi_view_request (views and design documents on the capi
 * port) against a mock cluster (python -m couchbase_ffi.mock, a separate
 * process).  Design-document lifecycle, the built-in subset, errors, a
 * registered silent view and the view timeout, refused arguments, and a
 * client destroyed with a request in flight (ASan/valgrind check the
 * leaks).
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>



static mock m_v;

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
    const char *cluster[] = {"--nodes", "2", "--bucket", "default:couchbase:secret", NULL};
    return mock_start(&m_v, cluster);
}

static int teardown_all(void **state)
{
    (void)state;
    mock_stop(&m_v);
    curl_global_cleanup();
    return 0;
}

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

/* One request through the built-in loop: its result, the body copied into
   body (NUL-terminated, cut to nbody). */
static cbffi_result req(cbffi_client *c, int method, const char *path, const char *json,
                        uint64_t timeout_us, char *body, size_t nbody)
{
    assert_int_equal(cbffi_view_request(c, method, path, strlen(path), json,
                                        json ? strlen(json) : 0, timeout_us, 9),
                     CBFFI_OK);
    cbffi_result r = one(c);
    assert_int_equal(r.op, CBFFI_OP_VIEW);
    assert_int_equal(r.cookie, 9);
    assert_int_equal(r.server, -1);
    if (body)
        snprintf(body, nbody, "%.*s", (int)r.nvalue, r.value ? r.value : "");
    return r;
}

/* ---- tests --------------------------------------------------------------- */

static void design_document_lifecycle_and_builtin_view(void **state)
{
    (void)state;
    cbffi_client *c = connected_to(&m_v, NULL);
    char body[4096];
    const char *ddoc = "{\"views\":{\"ids\":{\"map\":"
                       "\"function (doc, meta) { emit(meta.id, null); }\"}}}";
    cbffi_result r = req(c, CBFFI_HTTP_PUT, "/_design/dev_c", ddoc, 0, body, sizeof body);
    assert_int_equal(r.rc, CBFFI_OK);
    assert_int_equal(r.status, 201);
    r = req(c, CBFFI_HTTP_GET, "/_design/dev_c", NULL, 0, body, sizeof body);
    assert_int_equal(r.rc, CBFFI_OK);
    assert_non_null(strstr(body, "emit(meta.id, null)"));
    r = req(c, CBFFI_HTTP_GET, "/_design/dev_c/_view/ids?limit=1&stale=false", NULL, 0,
            body, sizeof body);
    assert_int_equal(r.rc, CBFFI_OK);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(body, "\"total_rows\""));
    r = req(c, CBFFI_HTTP_POST, "/_design/dev_c/_view/ids", "{\"keys\":[\"nope\"]}", 0,
            body, sizeof body);
    assert_int_equal(r.rc, CBFFI_OK);
    assert_non_null(strstr(body, "\"rows\": []"));
    r = req(c, CBFFI_HTTP_DELETE, "/_design/dev_c", NULL, 0, body, sizeof body);
    assert_int_equal(r.rc, CBFFI_OK);
    r = req(c, CBFFI_HTTP_GET, "/_design/dev_c", NULL, 0, body, sizeof body);
    assert_int_equal(r.rc, CBFFI_HTTP_ERROR);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(body, "not_found"));
    r = req(c, CBFFI_HTTP_GET, "/_design/none/_view/v", NULL, 0, body, sizeof body);
    assert_int_equal(r.rc, CBFFI_HTTP_ERROR);
    assert_int_equal(r.status, 404);
    cbffi_client_destroy(c);
}

static void silent_view_times_out(void **state)
{
    (void)state;
    mock_control_ok(&m_v, "view_register", "{\"ddoc\":\"s\",\"view\":\"v\",\"delay\":\"inf\"}");
    cbffi_client *c = connected_to(&m_v, "?views_timeout=300ms");
    assert_int_equal(cbffi_client_get_timeout(c, CBFFI_TIMEOUT_VIEW), 300000);
    double t0 = now_s();
    cbffi_result r = req(c, CBFFI_HTTP_GET, "/_design/s/_view/v", NULL, 0, NULL, 0);
    assert_int_equal(r.rc, CBFFI_ETIMEDOUT);
    assert_int_equal(r.nvalue, 0);
    assert_true(now_s() - t0 < 5.0);
    /* an explicit timeout wins */
    t0 = now_s();
    r = req(c, CBFFI_HTTP_GET, "/_design/s/_view/v", NULL, 100000, NULL, 0);
    assert_int_equal(r.rc, CBFFI_ETIMEDOUT);
    /* destroyed with one in flight */
    assert_int_equal(cbffi_view_request(c, CBFFI_HTTP_GET, "/_design/s/_view/v", 18, NULL, 0,
                                        0, 1), CBFFI_OK);
    cbffi_client_destroy(c);
    mock_control_ok(&m_v, "view_clear", "{}");
}

static void refused_arguments(void **state)
{
    (void)state;
    cbffi_client *c = connected_to(&m_v, NULL);
    assert_int_equal(cbffi_view_request(c, 7, "/x", 2, NULL, 0, 0, 0), CBFFI_EINVAL);
    assert_int_equal(cbffi_view_request(c, CBFFI_HTTP_GET, "x", 1, NULL, 0, 0, 0), CBFFI_EINVAL);
    assert_int_equal(cbffi_view_request(c, CBFFI_HTTP_GET, "/a b", 4, NULL, 0, 0, 0),
                     CBFFI_EINVAL);
    assert_int_equal(cbffi_view_request(c, CBFFI_HTTP_GET, "/a\r\nX: y", 8, NULL, 0, 0, 0),
                     CBFFI_EINVAL);
    assert_int_equal(cbffi_view_request(c, CBFFI_HTTP_GET, "", 0, NULL, 0, 0, 0), CBFFI_EINVAL);
    assert_int_equal(cbffi_view_request(c, CBFFI_HTTP_GET, "/a", 2, "{}", 2, 0, 0),
                     CBFFI_EINVAL);
    assert_int_equal(cbffi_view_request(c, CBFFI_HTTP_DELETE, "/a", 2, "{}", 2, 0, 0),
                     CBFFI_EINVAL);
    assert_int_equal(cbffi_view_request(c, CBFFI_HTTP_GET, "/a", 70000, NULL, 0, 0, 0),
                     CBFFI_E2BIG);
    assert_int_equal(cbffi_ready(c), 0);
    cbffi_client_destroy(c);
    char err[128];
    assert_int_equal(cbffi_client_create(&c, "memcached://127.0.0.1:1", NULL, NULL, err,
                                         sizeof err), CBFFI_OK);
    assert_int_equal(cbffi_view_request(c, CBFFI_HTTP_GET, "/a", 2, NULL, 0, 0, 0),
                     CBFFI_NOT_SUPPORTED);
    cbffi_client_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(design_document_lifecycle_and_builtin_view),
        cmocka_unit_test(silent_view_times_out),
        cmocka_unit_test(refused_arguments),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
