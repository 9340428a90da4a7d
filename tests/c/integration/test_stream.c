/*
 * Integration tests: streams (cbffi_query_stream, cbffi_view_stream) against
 * a mock cluster (python -m couchbase_ffi.mock, a separate process) whose
 * registered answers are sent chunked, row by row (row_delay, repeat, cut:
 * docs/mock.md "Streamed answers").  Rows before the end of the response;
 * a result far over http_max_response in a small client; backpressure (the
 * transfer pauses, the server is held back, reading resumes after a
 * harvest); KV operations between rows; failures mid-stream after the rows
 * before them; closing a stream mid-way (the connection goes, nothing
 * stray comes back); destroying a client with open streams (ASan/valgrind
 * check the leaks).
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static mock m;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CBFFI_TEST_SLACK (valgrind's run sets it) stretches upper time bounds. */
static double slack(void)
{
    const char *s = getenv("CBFFI_TEST_SLACK");
    double f = s ? atof(s) : 1.0;
    return f >= 1.0 ? f : 1.0;
}

static int setup_all(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *cluster[] = {"--nodes", "2", "--bucket", "default:couchbase:secret",
                             "--query-nodes", "0", NULL};
    return mock_start(&m, cluster);
}

static int teardown_all(void **state)
{
    (void)state;
    mock_stop(&m);
    curl_global_cleanup();
    return 0;
}

static int reset(void **state)
{
    (void)state;
    json_object *o = mock_control(&m, "query_clear", "{}");
    json_object *v = mock_control(&m, "view_clear", "{}");
    int ok = o && v;
    json_object_put(o);
    json_object_put(v);
    return ok ? 0 : -1;
}

/* ---- helpers --------------------------------------------------------------- */

static cbffi_client *connected(const char *options)
{
    char cs[700], err[256];
    snprintf(cs, sizeof cs, "%s%s", m.connstr, options ? options : "");
    cbffi_client *c = NULL;
    if (cbffi_client_create(&c, cs, NULL, "secret", err, sizeof err) != CBFFI_OK)
        fail_msg("create %s: %s", cs, err);
    cbffi_result r;
    assert_int_equal(cbffi_connect(c, 0), CBFFI_OK);
    assert_int_equal(cbffi_wait(c, &r, 1), 1);
    assert_int_equal(r.rc, CBFFI_OK);
    return c;
}

static cbffi_stream *query_stream(cbffi_client *c, const char *statement, uint64_t timeout_us)
{
    char body[256];
    int n = snprintf(body, sizeof body, "{\"statement\":\"%s\"}", statement);
    cbffi_stream *s = (cbffi_stream *)1;
    assert_int_equal(cbffi_query_stream(c, body, (size_t)n, timeout_us, 42, &s), CBFFI_OK);
    assert_non_null(s);
    return s;
}

/* What a stream delivered, read to its end with cbffi_stream_wait. */
typedef struct drained {
    size_t nrows;
    char first[256], last[256];   /* the first and last rows, NUL-terminated, cut */
    size_t nfirst;
    double t_first;               /* when the first row was harvested */
    cbffi_result fin;
    char meta[4096];
    char err[256];
} drained;

static void drain(cbffi_client *c, cbffi_stream *s, drained *d)
{
    cbffi_result r[64];
    memset(d, 0, sizeof(*d));
    int ended = 0;
    while (!ended) {
        size_t n = cbffi_stream_wait(c, s, r, 64);
        assert_true(n > 0);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(r[i].cookie, 42);
            assert_int_equal(r[i].server, -1);
            if (r[i].final) {
                assert_int_equal(i, n - 1);
                assert_int_equal(r[i].u64, d->nrows);
                d->fin = r[i];
                snprintf(d->meta, sizeof d->meta, "%.*s", (int)r[i].nvalue,
                         r[i].value ? r[i].value : "");
                snprintf(d->err, sizeof d->err, "%s", cbffi_stream_error(s));
                ended = 1;
                continue;
            }
            assert_int_equal(r[i].rc, CBFFI_OK);
            assert_int_equal(r[i].u64, d->nrows);
            assert_true(r[i].nvalue > 0);
            if (d->nrows == 0) {
                d->t_first = now_s();
                d->nfirst = r[i].nvalue;
                snprintf(d->first, sizeof d->first, "%.*s", (int)r[i].nvalue, r[i].value);
            }
            snprintf(d->last, sizeof d->last, "%.*s", (int)r[i].nvalue, r[i].value);
            d->nrows++;
        }
    }
    assert_int_equal(cbffi_stream_ready(s), 0);
    assert_int_equal(cbffi_stream_wait(c, s, r, 64), 0); /* nothing more, ever */
    assert_int_equal(cbffi_stream_harvest(c, s, r, 64), 0);
}

static json_object *last_request(const char *action)
{
    json_object *reqs = mock_control(&m, action, "{}");
    assert_non_null(reqs);
    size_t n = json_object_array_length(reqs);
    assert_true(n > 0);
    json_object *last = json_object_get(json_object_array_get_idx(reqs, n - 1));
    json_object_put(reqs);
    return last;
}

static int64_t int_field(json_object *o, const char *name)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, name, &v))
        fail_msg("no %s in %s", name, json_object_to_json_string(o));
    return json_object_get_int64(v);
}

/* Register `statement` with `nrows` rows of ~1 KB (repeat). */
static void register_big(const char *statement, int nrows, const char *extra)
{
    char reg[2048], pad[1001];
    memset(pad, 'p', 1000);
    pad[1000] = 0;
    snprintf(reg, sizeof reg, "{\"statement\":\"%s\",\"rows\":[{\"pad\":\"%s\"}],"
             "\"repeat\":%d%s}", statement, pad, nrows, extra ? extra : "");
    mock_control_ok(&m, "query_register", reg);
}

/* ---- tests --------------------------------------------------------------- */

static void rows_arrive_before_the_response_ends(void **state)
{
    (void)state;
    /* 3 rows 0.3 s apart, then errors in a 200 response */
    mock_control_ok(&m, "query_register",
                    "{\"statement\":\"slow rows\",\"rows\":[{\"a\":1},[2,\"x\"],\"\\u00e9\"],"
                    "\"row_delay\":0.3,\"http_status\":200,"
                    "\"errors\":[{\"code\":5000,\"msg\":\"late\"}]}");
    cbffi_client *c = connected(NULL);
    double t0 = now_s();
    cbffi_stream *s = query_stream(c, "slow rows", 0);
    assert_int_equal(cbffi_pending(c), 0); /* streams are not counted */
    drained d;
    drain(c, s, &d);
    double total = now_s() - t0;
    assert_true(d.t_first - t0 < 0.25 * slack());  /* before the other rows were sent */
    assert_true(total >= 0.55);
    assert_int_equal(d.nrows, 3);
    assert_string_equal(d.first, "{\"a\":1}");
    assert_string_equal(d.last, "\"\\u00e9\"");       /* the bytes as sent */
    assert_int_equal(d.fin.rc, CBFFI_OK);
    assert_int_equal(d.fin.status, 200);
    assert_int_equal(d.fin.op, CBFFI_OP_QUERY);
    assert_non_null(strstr(d.meta, "\"results\":[],\"errors\":[{\"code\":5000"));
    assert_non_null(strstr(d.meta, "\"resultCount\":3"));
    cbffi_stream_close(c, s);
    cbffi_client_destroy(c);
}

static void a_result_far_over_http_max_response(void **state)
{
    (void)state;
    register_big("big", 20000, NULL);   /* 20 MB in a 64 KiB client */
    cbffi_client *c = connected("?http_max_response=65536");
    /* read whole, it does not fit */
    cbffi_result r;
    assert_int_equal(cbffi_query(c, "{\"statement\":\"big\"}", 19, 0, 1), CBFFI_OK);
    assert_int_equal(cbffi_wait(c, &r, 1), 1);
    assert_int_equal(r.rc, CBFFI_E2BIG);
    /* streamed, it does */
    cbffi_stream *s = query_stream(c, "big", 0);
    drained d;
    drain(c, s, &d);
    assert_int_equal(d.fin.rc, CBFFI_OK);
    assert_int_equal(d.nrows, 20000);
    assert_int_equal(d.nfirst, 1010);
    assert_non_null(strstr(d.meta, "\"resultCount\":20000"));
    cbffi_stream_close(c, s);
    cbffi_client_destroy(c);
}

static void backpressure_pauses_and_resumes(void **state)
{
    (void)state;
    register_big("bp", 40000, NULL);    /* 40 MB */
    cbffi_client *c = connected(NULL);
    cbffi_stream *s = query_stream(c, "bp", 30000000);
    cbffi_io_flush(c);
    hostloop L = {.n = 0};
    double t0 = now_s();
    size_t most = 0;
    while (now_s() - t0 < 1.0) {
        hl_step_idle(c, &L, 50);
        if (cbffi_stream_held(s) > most)
            most = cbffi_stream_held(s);
    }
    /* nothing harvested: the stream holds about the bound, and waits */
    assert_true(cbffi_stream_paused(s));
    assert_true(most >= CBFFI_STREAM_HOLD_MAX);
    assert_true(most <= CBFFI_STREAM_HOLD_MAX + 64 * 1024);
    assert_true(cbffi_io_deadline(c) > 0); /* not spinning */
    json_object *req = last_request("query_requests");
    int64_t sent = int_field(req, "rows_sent");
    json_object_put(req);
    assert_true(sent < 40000 / 2); /* the mock is held back too */
    /* a harvest that frees half of it resumes the transfer at the next IO call */
    cbffi_result r[256];
    size_t taken = 0;
    while (cbffi_stream_held(s) > CBFFI_STREAM_HOLD_MAX / 2)
        taken += cbffi_stream_harvest(c, s, r, 256);
    assert_true(cbffi_stream_paused(s));
    assert_int_equal(cbffi_io_deadline(c), 0);
    cbffi_io_tick(c);
    assert_false(cbffi_stream_paused(s));
    /* and the rest comes, with the host harvesting as it goes */
    int ended = 0;
    t0 = now_s();
    while (!ended && now_s() - t0 < 20 * slack()) {
        hl_step_idle(c, &L, 50);
        size_t n;
        while ((n = cbffi_stream_harvest(c, s, r, 256)) > 0)
            for (size_t i = 0; i < n; i++) {
                if (r[i].final) {
                    assert_int_equal(r[i].rc, CBFFI_OK);
                    assert_int_equal(r[i].u64, 40000);
                    ended = 1;
                } else {
                    taken++;
                }
            }
        assert_true(cbffi_stream_held(s) <= CBFFI_STREAM_HOLD_MAX + 64 * 1024);
    }
    assert_true(ended);
    assert_int_equal(taken, 40000);
    cbffi_stream_close(c, s);
    cbffi_client_destroy(c);
}

static void kv_operations_between_rows(void **state)
{
    (void)state;
    mock_control_ok(&m, "query_register",
                    "{\"statement\":\"kv\",\"rows\":[1,2,3,4],\"row_delay\":0.25}");
    cbffi_client *c = connected(NULL);
    cbffi_stream *s = query_stream(c, "kv", 0);
    cbffi_result r[8];
    size_t rows = 0;
    int ended = 0;
    double t0 = now_s();
    while (!ended) {
        size_t n = cbffi_stream_wait(c, s, r, 8);
        assert_true(n > 0);
        for (size_t i = 0; i < n; i++) {
            if (r[i].final)
                ended = 1, assert_int_equal(r[i].rc, CBFFI_OK);
            else
                rows++;
        }
        /* the one-crossing shortcuts: the client counts as idle */
        double t1 = now_s();
        assert_int_equal(cbffi_set_now(c, "s:k", 3, "v", 1, 0, r), CBFFI_OK);
        assert_int_equal(cbffi_get_now(c, "s:k", 3, r), CBFFI_OK);
        assert_int_equal(r[0].nvalue, 1);
        /* cbffi_wait waits for the KV operation, not for the stream */
        assert_int_equal(cbffi_get(c, "s:k", 3, CBFFI_GET_PLAIN, 0, 9), CBFFI_OK);
        assert_int_equal(cbffi_wait(c, r, 8), 1);
        assert_int_equal(r[0].cookie, 9);
        assert_true(now_s() - t1 < 0.2 * slack());
    }
    assert_int_equal(rows, 4);
    assert_int_equal(cbffi_stream_wait(c, s, r, 8), 0);
    assert_true(now_s() - t0 >= 0.7);
    cbffi_stream_close(c, s);
    assert_int_equal(cbffi_ready(c), 0);
    cbffi_client_destroy(c);
}

static void failures_after_some_rows(void **state)
{
    (void)state;
    mock_control_ok(&m, "query_register", "{\"statement\":\"garbage\",\"rows\":[{\"n\":1},{\"n\":2},{\"n\":3}],"
                    "\"cut_after\":2,\"cut\":\"garbage\"}");
    mock_control_ok(&m, "query_register", "{\"statement\":\"close\",\"rows\":[{\"n\":1},{\"n\":2},{\"n\":3}],"
                    "\"cut_after\":2,\"cut\":\"close\"}");
    mock_control_ok(&m, "query_register", "{\"statement\":\"stall\",\"rows\":[{\"n\":1},{\"n\":2},{\"n\":3}],"
                    "\"cut_after\":2,\"cut\":\"stall\"}");
    char reg[4096], big[2001];
    memset(big, 'b', 2000);
    big[2000] = 0;
    snprintf(reg, sizeof reg, "{\"statement\":\"one big row\",\"chunked\":true,"
             "\"rows\":[1,\"%s\",3]}", big);
    mock_control_ok(&m, "query_register", reg);
    cbffi_client *c = connected("?http_max_response=1024");
    drained d;
    cbffi_stream *s = query_stream(c, "garbage", 0);
    drain(c, s, &d);
    assert_int_equal(d.nrows, 2);
    assert_string_equal(d.last, "{\"n\":2}");
    assert_int_equal(d.fin.rc, CBFFI_PROTOCOL_ERROR);
    assert_int_equal(d.fin.nvalue, 0);
    assert_non_null(strstr(d.err, "not a JSON object"));
    cbffi_stream_close(c, s);

    s = query_stream(c, "close", 0);
    drain(c, s, &d);
    assert_int_equal(d.nrows, 2);
    assert_int_equal(d.fin.rc, CBFFI_NETWORK_ERROR);
    cbffi_stream_close(c, s);

    double t0 = now_s();
    s = query_stream(c, "stall", 500000);
    drain(c, s, &d);
    double dt = now_s() - t0;
    assert_int_equal(d.nrows, 2);
    assert_int_equal(d.fin.rc, CBFFI_ETIMEDOUT);
    assert_true(dt >= 0.45 && dt < 1.5 * slack());
    cbffi_stream_close(c, s);

    s = query_stream(c, "one big row", 0);  /* a 2002-byte row, 1024 allowed */
    drain(c, s, &d);
    assert_int_equal(d.nrows, 1);
    assert_int_equal(d.fin.rc, CBFFI_E2BIG);
    assert_non_null(strstr(d.err, "http_max_response"));
    cbffi_stream_close(c, s);

    /* an HTTP error is not split: its body as received, no rows */
    s = query_stream(c, "SELEKT", 0);
    drain(c, s, &d);
    assert_int_equal(d.nrows, 0);
    assert_int_equal(d.fin.rc, CBFFI_HTTP_ERROR);
    assert_int_equal(d.fin.status, 400);
    assert_non_null(strstr(d.meta, "\"code\": 3000") ? strstr(d.meta, "\"code\": 3000")
                                                     : strstr(d.meta, "\"code\":3000"));
    assert_non_null(strstr(d.err, "HTTP 400"));
    cbffi_stream_close(c, s);
    cbffi_client_destroy(c);
}

static void closing_mid_way_cancels_the_request(void **state)
{
    (void)state;
    register_big("cancel", 40000, NULL);
    cbffi_client *c = connected(NULL);
    cbffi_stream *s = query_stream(c, "cancel", 0);
    cbffi_result r[4];
    assert_true(cbffi_stream_wait(c, s, r, 4) > 0);
    cbffi_stream_close(c, s);
    assert_int_equal(cbffi_pending(c), 0);
    /* the mock sees the connection go */
    int aborted = 0;
    for (int i = 0; i < 100 && !aborted; i++) {
        usleep(20000);
        json_object *req = last_request("query_requests");
        json_object *v = NULL;
        aborted = json_object_object_get_ex(req, "aborted", &v) && json_object_get_boolean(v);
        json_object_put(req);
    }
    assert_true(aborted);
    /* nothing of it comes back; the client goes on */
    assert_int_equal(cbffi_store(c, CBFFI_OP_SET, "c:k", 3, "1", 1, 0, 0, 0, 5), CBFFI_OK);
    assert_int_equal(cbffi_wait(c, r, 4), 1);
    assert_int_equal(r[0].cookie, 5);
    assert_int_equal(r[0].rc, CBFFI_OK);
    s = query_stream(c, "SELECT RAW COUNT(*) FROM default", 0);
    drained d;
    drain(c, s, &d);
    assert_int_equal(d.nrows, 1);
    assert_int_equal(d.fin.rc, CBFFI_OK);
    cbffi_stream_close(c, s);
    /* closed while paused, and closed before it was sent (no map yet) */
    s = query_stream(c, "cancel", 0);
    double t0 = now_s();
    while (!cbffi_stream_paused(s) && now_s() - t0 < 5 * slack())
        cbffi_get_now(c, "c:k", 3, r); /* its loop drives the stream too */
    assert_true(cbffi_stream_paused(s));
    cbffi_stream_close(c, s);
    cbffi_stream_close(c, NULL);
    assert_int_equal(cbffi_ready(c), 0);
    cbffi_client_destroy(c);

    char err[256];
    assert_int_equal(cbffi_client_create(&c, m.connstr, NULL, "secret", err, sizeof err),
                     CBFFI_OK);
    s = query_stream(c, "cancel", 0);
    cbffi_stream_close(c, s);
    assert_int_equal(cbffi_pending(c), 0);
    assert_int_equal(cbffi_connect(c, 0), CBFFI_OK);
    assert_int_equal(cbffi_wait(c, r, 4), 1);
    assert_int_equal(r[0].op, CBFFI_OP_CONNECT);
    assert_int_equal(cbffi_ready(c), 0);
    cbffi_client_destroy(c);
}

static void destroyed_with_streams_open(void **state)
{
    (void)state;
    register_big("open", 20000, NULL);
    mock_control_ok(&m, "query_register", "{\"statement\":\"forever\",\"delay\":\"inf\"}");
    cbffi_client *c = connected(NULL);
    cbffi_stream *paused = query_stream(c, "open", 0);
    cbffi_stream *silent = query_stream(c, "forever", 0);
    cbffi_stream *ended = query_stream(c, "SELECT RAW COUNT(*) FROM default", 0);
    cbffi_result r[4];
    double t0 = now_s();
    while ((!cbffi_stream_paused(paused) || !cbffi_stream_ready(ended)) &&
           now_s() - t0 < 5 * slack())
        cbffi_get_now(c, "d:k", 3, r);
    assert_true(cbffi_stream_paused(paused));
    assert_true(cbffi_stream_ready(ended) > 0);
    assert_int_equal(cbffi_stream_ready(silent), 0);
    cbffi_client_destroy(c); /* frees all three */
    /* and one that waits for the map */
    char err[256];
    assert_int_equal(cbffi_client_create(&c, m.connstr, NULL, "secret", err, sizeof err),
                     CBFFI_OK);
    (void)query_stream(c, "open", 0);
    cbffi_client_destroy(c);
}

static void views_stream_their_rows(void **state)
{
    (void)state;
    mock_control_ok(&m, "view_register",
                    "{\"ddoc\":\"d\",\"view\":\"v\",\"row_delay\":0.2,\"total_rows\":10,"
                    "\"rows\":[{\"id\":\"a\",\"key\":1,\"value\":null},"
                    "{\"id\":\"b\",\"key\":2,\"value\":[1]}]}");
    cbffi_client *c = connected(NULL);
    static const char path[] = "/_design/d/_view/v?stale=false";
    cbffi_stream *s = NULL;
    double t0 = now_s();
    assert_int_equal(cbffi_view_stream(c, CBFFI_HTTP_GET, path, sizeof path - 1, NULL, 0, 0, 42,
                                       &s), CBFFI_OK);
    drained d;
    drain(c, s, &d);
    assert_true(d.t_first - t0 < 0.15 * slack());
    assert_int_equal(d.nrows, 2);
    assert_string_equal(d.first, "{\"id\": \"a\", \"key\": 1, \"value\": null}");
    assert_int_equal(d.fin.rc, CBFFI_OK);
    assert_int_equal(d.fin.op, CBFFI_OP_VIEW);
    assert_string_equal(d.meta, "{\"total_rows\": 10, \"rows\": []}");
    cbffi_stream_close(c, s);
    /* a design document: no rows array, all meta */
    static const char ddoc[] = "{\"views\":{\"x\":{\"map\":\"function (doc, meta) "
                               "{ emit(meta.id, null); }\"}}}";
    cbffi_result r;
    assert_int_equal(cbffi_view_request(c, CBFFI_HTTP_PUT, "/_design/sd", 11, ddoc,
                                        sizeof ddoc - 1, 0, 1), CBFFI_OK);
    assert_int_equal(cbffi_wait(c, &r, 1), 1);
    assert_int_equal(r.rc, CBFFI_OK);
    assert_int_equal(cbffi_view_stream(c, CBFFI_HTTP_GET, "/_design/sd", 11, NULL, 0, 0, 42, &s),
                     CBFFI_OK);
    drain(c, s, &d);
    assert_int_equal(d.nrows, 0);
    assert_int_equal(d.fin.rc, CBFFI_OK);
    assert_non_null(strstr(d.meta, "emit(meta.id, null)"));
    cbffi_stream_close(c, s);
    cbffi_client_destroy(c);
}

static void refused_arguments(void **state)
{
    (void)state;
    char err[256];
    cbffi_client *c = NULL;
    cbffi_stream *s = (cbffi_stream *)1;
    assert_int_equal(cbffi_client_create(&c, "memcached://127.0.0.1:1", NULL, NULL, err,
                                         sizeof err), CBFFI_OK);
    assert_int_equal(cbffi_query_stream(c, "{}", 2, 0, 0, &s), CBFFI_NOT_SUPPORTED);
    assert_null(s);
    s = (cbffi_stream *)1;
    assert_int_equal(cbffi_view_stream(c, CBFFI_HTTP_GET, "/x", 2, NULL, 0, 0, 0, &s),
                     CBFFI_NOT_SUPPORTED);
    assert_null(s);
    cbffi_client_destroy(c);
    c = connected(NULL);
    assert_int_equal(cbffi_query_stream(c, "{}", 2, 0, 0, NULL), CBFFI_EINVAL);
    assert_int_equal(cbffi_query_stream(c, "", 0, 0, 0, &s), CBFFI_EINVAL);
    assert_null(s);
    assert_int_equal(cbffi_view_stream(c, CBFFI_HTTP_GET, "no slash", 8, NULL, 0, 0, 0, &s),
                     CBFFI_EINVAL);
    assert_int_equal(cbffi_view_stream(c, CBFFI_HTTP_GET, "/x", 2, NULL, 0, 0, 0, NULL),
                     CBFFI_EINVAL);
    assert_int_equal(cbffi_stream_harvest(c, NULL, NULL, 0), 0);
    assert_int_equal(cbffi_stream_wait(c, NULL, NULL, 0), 0);
    assert_int_equal(cbffi_stream_ready(NULL), 0);
    assert_string_equal(cbffi_stream_error(NULL), "");
    assert_int_equal(cbffi_pending(c), 0);
    cbffi_client_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(rows_arrive_before_the_response_ends, reset),
        cmocka_unit_test_setup(a_result_far_over_http_max_response, reset),
        cmocka_unit_test_setup(backpressure_pauses_and_resumes, reset),
        cmocka_unit_test_setup(kv_operations_between_rows, reset),
        cmocka_unit_test_setup(failures_after_some_rows, reset),
        cmocka_unit_test_setup(closing_mid_way_cancels_the_request, reset),
        cmocka_unit_test_setup(destroyed_with_streams_open, reset),
        cmocka_unit_test_setup(views_stream_their_rows, reset),
        cmocka_unit_test_setup(refused_arguments, reset),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
