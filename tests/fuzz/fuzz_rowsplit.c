/* libFuzzer target: the incremental JSON row splitter (rowsplit.c).

   Input: [0] which key ("results" / "rows") and the bounds (tiny or
   generous), [1] the chunking seed, then the body.  The body is split once
   whole and once in chunks whose sizes come from the seed (1..16 bytes, or
   at one cut point); the harness traps when the two runs disagree (rows,
   meta, error), when a row is not a JSON value on its own (fed back as
   {"k":[row]} it must give exactly that one row), when an accepted meta is
   not a JSON object without rows, or when a bound is exceeded. */
#include "rowsplit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct run {
    int err;
    uint64_t nrows;
    cb_buf meta;
    cb_buf rows;        /* every row, each preceded by its 4-byte length */
} run;

static void check(int ok)
{
    if (!ok)
        __builtin_trap();
}

/* Feed body in pieces: cut once at a point from the seed, or in 1..16-byte
   pieces from it. */
static void feed(const char *key, size_t max_row, size_t max_meta, const char *body,
                 size_t n, uint8_t seed, int cut_once, run *out)
{
    cb_rows s;
    cb_buf rows = {0};
    memset(out, 0, sizeof(*out));
    cb_rows_init(&s, key, strlen(key), max_row, max_meta);
    size_t at = 0, piece = 0;
    unsigned state = seed;
    int failed = 0;
    while (at < n && !failed) {
        size_t len;
        if (cut_once)
            len = piece++ == 0 ? (seed * 131u) % (n + 1) : n - at;
        else
            state = state * 1103515245u + 12345u, len = 1 + (state >> 16) % 16;
        if (len > n - at)
            len = n - at;
        const char *p = body + at;
        at += len;
        while (len > 0) {
            size_t used = 0;
            cb_rows_status st = cb_rows_feed(&s, &out->meta, &rows, p, len, &used);
            check(used <= len);
            p += used;
            len -= used;
            if (st == CB_ROWS_FAIL) {
                check(s.err != CB_ROWS_OK);
                failed = 1;
                break;
            }
            if (st == CB_ROWS_ROW) {
                size_t rl = rows.len - s.row_start;
                check(rl > 0 && rl <= max_row);
                uint32_t l32 = (uint32_t)rl;
                cb_buf_append(&out->rows, &l32, 4);
                cb_buf_append(&out->rows, rows.data + s.row_start, rl);
                rows.len = s.row_start;
                continue;
            }
            check(len == 0);
            break;
        }
    }
    out->err = failed ? s.err : cb_rows_finish(&s);
    out->nrows = s.nrows;
    check(cb_buf_size(&out->meta) <= max_meta);
    cb_buf_free(&rows);
}

static void run_free(run *r)
{
    cb_buf_free(&r->meta);
    cb_buf_free(&r->rows);
}

static int same_bytes(const cb_buf *a, const cb_buf *b)
{
    return cb_buf_size(a) == cb_buf_size(b) &&
           (cb_buf_size(a) == 0 || memcmp(cb_buf_head(a), cb_buf_head(b), cb_buf_size(a)) == 0);
}

/* Each accepted row, alone in {"k":[...]}, is exactly one row again. */
static void rows_stand_alone(const char *key, const run *r)
{
    size_t nkey = strlen(key);
    for (size_t off = 0; off < r->rows.len;) {
        uint32_t rl;
        memcpy(&rl, r->rows.data + off, 4);
        const char *row = r->rows.data + off + 4;
        off += 4 + rl;
        size_t n = nkey + 7 + rl;
        char *doc = malloc(n);
        memcpy(doc, "{\"", 2);
        memcpy(doc + 2, key, nkey);
        memcpy(doc + 2 + nkey, "\":[", 3);
        memcpy(doc + 5 + nkey, row, rl);
        memcpy(doc + 5 + nkey + rl, "]}", 2);
        run again;
        feed(key, rl, nkey + 7, doc, n, 0, 1, &again);
        check(again.err == CB_ROWS_OK && again.nrows == 1);
        check(again.rows.len == rl + 4 && memcmp(again.rows.data + 4, row, rl) == 0);
        run_free(&again);
        free(doc);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const char *key = data[0] & 1 ? "rows" : "results";
    size_t max_row = data[0] & 2 ? 1 + data[0] / 4 : 1 << 20;
    size_t max_meta = data[0] & 4 ? 16 + data[0] : 1 << 20;
    const char *body = (const char *)data + 2;
    size_t n = size - 2;
    run whole, chunks, once;
    feed(key, max_row, max_meta, body, n, data[1], 1, &once);
    feed(key, max_row, max_meta, body, n, data[1], 0, &chunks);
    feed(key, max_row, max_meta, body, n, 0, 1, &whole);
    /* where the body is cut changes nothing */
    check(whole.err == chunks.err && whole.err == once.err);
    check(whole.nrows == chunks.nrows && whole.nrows == once.nrows);
    check(same_bytes(&whole.rows, &chunks.rows) && same_bytes(&whole.rows, &once.rows));
    if (whole.err == CB_ROWS_OK) {
        check(same_bytes(&whole.meta, &chunks.meta) && same_bytes(&whole.meta, &once.meta));
        rows_stand_alone(key, &whole);
        /* the meta is a JSON object whose rows array is empty */
        run meta;
        feed(key, 1, max_meta, cb_buf_head(&whole.meta), cb_buf_size(&whole.meta), 0, 1,
             &meta);
        check(meta.err == CB_ROWS_OK && meta.nrows == 0 && same_bytes(&meta.meta, &whole.meta));
        run_free(&meta);
    }
    run_free(&whole);
    run_free(&chunks);
    run_free(&once);
    return 0;
}
