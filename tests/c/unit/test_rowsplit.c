/* Unit tests: rowsplit.c - the incremental JSON row splitter.  Every body is
   fed whole, one byte at a time, in odd-sized chunks and split in two at every
   byte offset: the rows, the meta and the outcome must be the same each
   time. */
#include "cmocka_inc.h"
#include "rowsplit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAXROWS = 64 };

typedef struct outcome {
    int err;                 /* cb_rows_finish's, or the feed's failure */
    size_t nrows;
    char *rows[MAXROWS];     /* NUL-terminated copies */
    size_t nrow[MAXROWS];
    cb_buf meta;
} outcome;

static void outcome_free(outcome *o)
{
    for (size_t i = 0; i < o->nrows && i < MAXROWS; i++)
        free(o->rows[i]);
    cb_buf_free(&o->meta);
    memset(o, 0, sizeof(*o));
}

/* Feed the pieces body[cuts[i], cuts[i+1]) in turn. */
static void run_cuts(const char *key, size_t max_row, size_t max_meta,
                     const char *body, size_t n, const size_t *cuts, size_t ncuts,
                     outcome *o)
{
    cb_rows s;
    cb_buf rows = {0};
    assert_int_equal(cuts[ncuts - 1], n);
    memset(o, 0, sizeof(*o));
    cb_rows_init(&s, key, strlen(key), max_row, max_meta);
    int failed = 0;
    for (size_t c = 0; c + 1 < ncuts && !failed; c++) {
        const char *p = body + cuts[c];
        size_t left = cuts[c + 1] - cuts[c];
        while (left > 0 || cuts[c + 1] == cuts[c]) {
            size_t used = 0;
            cb_rows_status st = cb_rows_feed(&s, &o->meta, &rows, p, left, &used);
            assert_true(used <= left);
            p += used;
            left -= used;
            if (st == CB_ROWS_FAIL) {
                o->err = s.err;
                assert_int_not_equal(o->err, CB_ROWS_OK);
                failed = 1;
                break;
            }
            if (st == CB_ROWS_ROW) {
                size_t len = rows.len - s.row_start;
                assert_true(o->nrows < MAXROWS);
                o->rows[o->nrows] = malloc(len + 1);
                memcpy(o->rows[o->nrows], rows.data + s.row_start, len);
                o->rows[o->nrows][len] = 0;
                o->nrow[o->nrows++] = len;
                rows.len = s.row_start; /* taken: reuse the space */
                continue;
            }
            assert_int_equal(left, 0);
            break;
        }
    }
    if (!failed)
        o->err = cb_rows_finish(&s);
    assert_int_equal(s.nrows, o->nrows);
    cb_buf_free(&rows);
}

static void run_chunks(const char *key, size_t max_row, size_t max_meta,
                       const char *body, size_t n, size_t chunk, outcome *o)
{
    size_t ncuts = n / chunk + 2, k = 0;
    size_t *cuts = calloc(ncuts + 1, sizeof(*cuts));
    for (size_t at = 0; at < n; at += chunk)
        cuts[k++] = at;
    cuts[k++] = n;
    if (k == 1)
        cuts[k++] = n; /* an empty body: one empty feed */
    run_cuts(key, max_row, max_meta, body, n, cuts, k, o);
    free(cuts);
}

static void assert_same(const outcome *a, const outcome *b, const char *how)
{
    if (a->err != b->err || a->nrows != b->nrows)
        fail_msg("%s: err %d/%d rows %zu/%zu", how, a->err, b->err, a->nrows, b->nrows);
    for (size_t i = 0; i < a->nrows; i++) {
        assert_int_equal(a->nrow[i], b->nrow[i]);
        assert_memory_equal(a->rows[i], b->rows[i], a->nrow[i]);
    }
    if (a->err == CB_ROWS_OK) {
        assert_int_equal(cb_buf_size(&a->meta), cb_buf_size(&b->meta));
        if (cb_buf_size(&a->meta))
            assert_memory_equal(cb_buf_head(&a->meta), cb_buf_head(&b->meta),
                                cb_buf_size(&a->meta));
    }
}

/* Split `body` every way; the outcome is returned in *whole (free it). */
static void split_every_way(const char *key, size_t max_row, size_t max_meta,
                            const char *body, outcome *whole)
{
    size_t n = strlen(body);
    char how[64];
    run_chunks(key, max_row, max_meta, body, n, n ? n : 1, whole);
    static const size_t sizes[] = {1, 2, 3, 7};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        outcome o;
        run_chunks(key, max_row, max_meta, body, n, sizes[i], &o);
        snprintf(how, sizeof how, "chunks of %zu", sizes[i]);
        assert_same(whole, &o, how);
        outcome_free(&o);
    }
    for (size_t k = 0; k <= n; k++) {
        outcome o;
        size_t cuts[3] = {0, k, n};
        run_cuts(key, max_row, max_meta, body, n, cuts, 3, &o);
        snprintf(how, sizeof how, "split at %zu", k);
        assert_same(whole, &o, how);
        outcome_free(&o);
    }
}

static void expect_rows(const char *key, const char *body, const char *meta,
                        const char *const *rows, size_t nrows)
{
    outcome o;
    split_every_way(key, 1 << 20, 1 << 20, body, &o);
    if (o.err != CB_ROWS_OK)
        fail_msg("%s: error %d (%s)", body, o.err, cb_rows_strerror(o.err));
    assert_int_equal(o.nrows, nrows);
    for (size_t i = 0; i < nrows; i++)
        assert_string_equal(o.rows[i], rows[i]);
    assert_int_equal(cb_buf_size(&o.meta), strlen(meta));
    assert_memory_equal(cb_buf_head(&o.meta), meta, strlen(meta));
    outcome_free(&o);
}

static void expect_error(const char *key, size_t max_row, size_t max_meta,
                         const char *body, int err, size_t rows_before)
{
    outcome o;
    split_every_way(key, max_row, max_meta, body, &o);
    if (o.err != err)
        fail_msg("%s: error %d, expected %d", body, o.err, err);
    if (o.nrows != rows_before)
        fail_msg("%s: %zu rows before the error, expected %zu", body, o.nrows, rows_before);
    outcome_free(&o);
}

/* ---- rows and meta ----------------------------------------------------------------- */

static void n1ql_body(void **state)
{
    (void)state;
    static const char body[] =
        "{\"requestID\":\"7f1e\",\"signature\":{\"*\":\"*\"},\"results\":[{\"a\":1},"
        "{\"b\":[1,2,{\"c\":\"]\"}]}],\"status\":\"success\",\"metrics\":{\"resultCount\":2}}";
    static const char *const rows[] = {"{\"a\":1}", "{\"b\":[1,2,{\"c\":\"]\"}]}"};
    expect_rows("results", body,
                "{\"requestID\":\"7f1e\",\"signature\":{\"*\":\"*\"},\"results\":[],"
                "\"status\":\"success\",\"metrics\":{\"resultCount\":2}}",
                rows, 2);
}

static void view_body_pretty(void **state)
{
    (void)state;
    /* whitespace between rows goes; inside rows and in the meta it stays */
    static const char body[] =
        "{\"total_rows\":3,\"rows\":[\r\n"
        "{\"id\":\"a\",\"key\":\"a\",\"value\":null},\r\n"
        "  {\"id\":\"b\", \"key\": [1, 2] ,\"value\":{}}\r\n"
        "],\n\"errors\" : [ ]\n}\n";
    static const char *const rows[] = {"{\"id\":\"a\",\"key\":\"a\",\"value\":null}",
                                       "{\"id\":\"b\", \"key\": [1, 2] ,\"value\":{}}"};
    expect_rows("rows", body, "{\"total_rows\":3,\"rows\":[],\n\"errors\" : [ ]\n}\n", rows, 2);
}

static void scalar_rows(void **state)
{
    (void)state;
    /* every kind of value as a row: the bytes exactly as sent */
    static const char body[] =
        "{\"results\":[0,-1,12.5e-3,1E+9,-0.0,true,false,null,\"\",\"s\\\"\\\\\\/\\b\\f\\n\\r\\t\","
        "\"\\u00e9\\uD83D\\ude00\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",[],{},[[[]]],"
        "{\"results\":[1]}]}";
    static const char *const rows[] = {
        "0", "-1", "12.5e-3", "1E+9", "-0.0", "true", "false", "null", "\"\"",
        "\"s\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\u00e9\\uD83D\\ude00\"",
        "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", "[]", "{}", "[[[]]]",
        "{\"results\":[1]}"};
    expect_rows("results", body, "{\"results\":[]}", rows, sizeof rows / sizeof rows[0]);
}

static void no_rows(void **state)
{
    (void)state;
    /* an empty array, no array, the key with another value, the key nested deeper,
       a key that only starts like it, an escaped spelling (a different key here) */
    expect_rows("results", "{\"results\":[]}", "{\"results\":[]}", NULL, 0);
    expect_rows("results", " {\"status\":\"fatal\",\"errors\":[{\"code\":3000}]} ",
                " {\"status\":\"fatal\",\"errors\":[{\"code\":3000}]} ", NULL, 0);
    expect_rows("results", "{\"results\":null,\"x\":{\"results\":[1,2]}}",
                "{\"results\":null,\"x\":{\"results\":[1,2]}}", NULL, 0);
    expect_rows("results", "{\"results2\":[1],\"result\":[2],\"r\\u0065sults\":[3]}",
                "{\"results2\":[1],\"result\":[2],\"r\\u0065sults\":[3]}", NULL, 0);
    expect_rows("rows", "{}", "{}", NULL, 0);
}

static void rows_key_twice(void **state)
{
    (void)state;
    static const char *const rows[] = {"1", "2"};
    expect_rows("rows", "{\"rows\":[1],\"rows\":[2]}", "{\"rows\":[],\"rows\":[]}", rows, 2);
}

/* ---- bad bodies ---------------------------------------------------------------------- */

static void malformed(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        size_t rows_before;
    } bad[] = {
        {"[1,2]", 0},                       /* not an object */
        {"\"results\"", 0},
        {"x", 0},
        {"{\"results\":[1,2,]}", 2},        /* trailing comma */
        {"{\"results\":[1 2]}", 1},
        {"{\"results\":[{\"a\":1}}]}", 1},  /* mismatched closer */
        {"{\"results\":[01]}", 1},          /* a leading zero: 0, then 1 */
        {"{\"results\":[1.]}", 0},
        {"{\"results\":[.5]}", 0},
        {"{\"results\":[1e]}", 0},
        {"{\"results\":[-]}", 0},
        {"{\"results\":[+1]}", 0},
        {"{\"results\":[tru]}", 0},
        {"{\"results\":[truex]}", 1},
        {"{\"results\":[nul1]}", 0},
        {"{\"results\":[\"a\\x\"]}", 0},    /* bad escapes */
        {"{\"results\":[\"\\u12g4\"]}", 0},
        {"{\"results\":[\"a\tb\"]}", 0},    /* a control byte in a string */
        {"{\"results\":[\"\xc0\x80\"]}", 0},        /* overlong */
        {"{\"results\":[\"\xe0\x80\xaf\"]}", 0},    /* overlong */
        {"{\"results\":[\"\xed\xa0\x80\"]}", 0},    /* an encoded surrogate */
        {"{\"results\":[\"\xf4\x90\x80\x80\"]}", 0},/* above U+10FFFF */
        {"{\"results\":[\"\xc3\"]}", 0},            /* a cut sequence */
        {"{\"results\":[\"\x80\"]}", 0},            /* a lone continuation byte */
        {"{\"results\":[\"\xff\"]}", 0},
        {"{\"a\" 1}", 0},
        {"{\"a\":1,}", 0},
        {"{1:2}", 0},
        {"{\"results\":[1]}}", 1},          /* after the object */
        {"{\"results\":[1]} x", 1},
        {"{\"results\":[1]}{}", 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_error("results", 1 << 20, 1 << 20, bad[i].body, CB_ROWS_E_SYNTAX,
                     bad[i].rows_before);
}

static void truncated(void **state)
{
    (void)state;
    static const char body[] =
        "{\"a\":\"\xe2\x82\xac\\u00e9\",\"results\":[{\"x\":[true,-1.5e3]},\"s\",7],\"n\":null}";
    size_t n = strlen(body);
    /* every strict prefix is cut short; the whole body is not */
    for (size_t k = 0; k < n; k++) {
        char *p = malloc(k + 1);
        memcpy(p, body, k);
        p[k] = 0;
        outcome o;
        split_every_way("results", 1 << 20, 1 << 20, p, &o);
        assert_int_equal(o.err, CB_ROWS_E_TRUNCATED);
        outcome_free(&o);
        free(p);
    }
    static const char *const rows[] = {"{\"x\":[true,-1.5e3]}", "\"s\"", "7"};
    expect_rows("results", body,
                "{\"a\":\"\xe2\x82\xac\\u00e9\",\"results\":[],\"n\":null}", rows, 3);
}

static char *nested(size_t depth_in_row)
{
    /* {"results":[ [[...[]...]] ]} with depth_in_row arrays in the row */
    size_t n = 13 + 2 * depth_in_row + 2;
    char *p = malloc(n + 1), *q = p;
    q += sprintf(q, "{\"results\":[");
    for (size_t i = 0; i < depth_in_row; i++)
        *q++ = '[';
    for (size_t i = 0; i < depth_in_row; i++)
        *q++ = ']';
    q += sprintf(q, "]}");
    *q = 0;
    return p;
}

static void depth_cap(void **state)
{
    (void)state;
    /* the object and the rows array are two levels: 254 more fit, 255 do not */
    char *ok = nested(CB_ROWS_MAX_DEPTH - 2), *deep = nested(CB_ROWS_MAX_DEPTH - 1);
    outcome o;
    split_every_way("results", 1 << 20, 1 << 20, ok, &o);
    assert_int_equal(o.err, CB_ROWS_OK);
    assert_int_equal(o.nrows, 1);
    outcome_free(&o);
    expect_error("results", 1 << 20, 1 << 20, deep, CB_ROWS_E_DEPTH, 0);
    free(ok);
    free(deep);
    /* far deeper, in the meta */
    char big[4 * CB_ROWS_MAX_DEPTH];
    memset(big, '[', sizeof big - 1);
    big[0] = '{';
    memcpy(big + 1, "\"a\":", 4);
    big[sizeof big - 1] = 0;
    expect_error("results", 1 << 20, 1 << 20, big, CB_ROWS_E_DEPTH, 0);
}

static void size_bounds(void **state)
{
    (void)state;
    /* a row of exactly max_row bytes passes, one more fails; rows before it
       were delivered */
    static const char body[] = "{\"results\":[\"1234\",\"12345\",1]}";
    static const char *const rows[] = {"\"1234\"", "\"12345\"", "1"};
    outcome o;
    split_every_way("results", 7, 1 << 20, body, &o);
    assert_int_equal(o.err, CB_ROWS_OK);
    assert_int_equal(o.nrows, 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(o.rows[i], rows[i]);
    outcome_free(&o);
    expect_error("results", 6, 1 << 20, body, CB_ROWS_E_ROW_BIG, 1);
    /* a number row is bounded too, before its end is known */
    expect_error("results", 4, 1 << 20, "{\"results\":[12345678]}", CB_ROWS_E_ROW_BIG, 0);
    /* the meta: 14 bytes without the rows */
    expect_rows("results", "{\"results\":[1],\"a\":1}", "{\"results\":[],\"a\":1}",
                rows + 2, 1);
    split_every_way("results", 100, 20, "{\"results\":[1],\"a\":1}", &o);
    assert_int_equal(o.err, CB_ROWS_OK);
    outcome_free(&o);
    expect_error("results", 100, 19, "{\"results\":[1],\"a\":1}", CB_ROWS_E_META_BIG, 1);
    /* rows do not count against the meta */
    split_every_way("results", 100, 14, "{\"results\":[\"a long row, longer than the meta\"]}", &o);
    assert_int_equal(o.err, CB_ROWS_OK);
    assert_int_equal(o.nrows, 1);
    outcome_free(&o);
}

static void after_failure(void **state)
{
    (void)state;
    cb_rows s;
    cb_buf meta = {0}, rows = {0};
    size_t used = 99;
    cb_rows_init(&s, "rows", 4, 100, 100);
    assert_int_equal(cb_rows_feed(&s, &meta, &rows, "{\"rows\":[1 x", 12, &used), CB_ROWS_ROW);
    assert_int_equal(used, 10);
    assert_int_equal(cb_rows_feed(&s, &meta, &rows, " x", 2, &used), CB_ROWS_FAIL);
    assert_int_equal(used, 1);
    assert_int_equal(s.err, CB_ROWS_E_SYNTAX);
    assert_int_equal(cb_rows_feed(&s, &meta, &rows, "]}", 2, &used), CB_ROWS_FAIL);
    assert_int_equal(used, 0);
    assert_int_equal(cb_rows_finish(&s), CB_ROWS_E_SYNTAX);
    assert_int_equal(s.offset, 11);
    assert_string_equal(cb_rows_strerror(CB_ROWS_E_TRUNCATED), "the JSON ended early");
    cb_buf_free(&meta);
    cb_buf_free(&rows);
}

static void rebase(void **state)
{
    (void)state;
    /* the caller moves the buffer under a row that is half read */
    cb_rows s;
    cb_buf meta = {0}, rows = {0};
    size_t used;
    cb_rows_init(&s, "rows", 4, 100, 100);
    assert_int_equal(cb_rows_feed(&s, &meta, &rows, "{\"rows\":[\"ab\",\"cd", 17, &used),
                     CB_ROWS_ROW);
    assert_int_equal(cb_rows_feed(&s, &meta, &rows, "{\"rows\":[\"ab\",\"cd" + used, 17 - used,
                                  &used), CB_ROWS_MORE);
    assert_int_equal(s.row_start, 4);
    memmove(rows.data, rows.data + 4, rows.len - 4);
    rows.len -= 4;
    cb_rows_rebase(&s, 4);
    assert_int_equal(cb_rows_feed(&s, &meta, &rows, "\"]}", 3, &used), CB_ROWS_ROW);
    assert_int_equal(rows.len - s.row_start, 4);
    assert_memory_equal(rows.data + s.row_start, "\"cd\"", 4);
    assert_int_equal(cb_rows_feed(&s, &meta, &rows, "]}" , 2, &used), CB_ROWS_MORE);
    assert_int_equal(cb_rows_finish(&s), CB_ROWS_OK);
    assert_int_equal(s.nrows, 2);
    cb_buf_free(&meta);
    cb_buf_free(&rows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(n1ql_body),
        cmocka_unit_test(view_body_pretty),
        cmocka_unit_test(scalar_rows),
        cmocka_unit_test(no_rows),
        cmocka_unit_test(rows_key_twice),
        cmocka_unit_test(malformed),
        cmocka_unit_test(truncated),
        cmocka_unit_test(depth_cap),
        cmocka_unit_test(size_bounds),
        cmocka_unit_test(after_failure),
        cmocka_unit_test(rebase),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
