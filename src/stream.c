/*
 * stream.c - streams: N1QL and view responses delivered row by row as they
 * arrive (cbffi_query_stream, cbffi_view_stream; see "Streams" in cbffi.h).
 *
 * A stream is a query.c / views.c request whose op carries a pointer to it
 * (op->stream).  http.c hands the stream the body bytes as libcurl delivers
 * them (cb_stream_body): a 2xx body goes through the row splitter
 * (rowsplit.c), which appends each row to the stream's arena and the rest to
 * the request's body buffer (the meta); a non-2xx body is kept whole there,
 * as a buffered request keeps it.  Each finished row becomes a record
 * (offset and length in the arena) in the stream's own queue, not in the
 * client's result queue.  When the op completes - the transfer ended, it
 * failed, its deadline passed - cb_op_fail / cb_op_complete route its final
 * result here (cb_stream_end) instead of the result queue, and the stream
 * lets go of the op.
 *
 * Backpressure: `held` counts the bytes of rows not yet harvested plus
 * REC_COST each.  cb_stream_body refuses a chunk while held is at
 * CBFFI_STREAM_HOLD_MAX or more (http.c returns CURL_WRITEFUNC_PAUSE:
 * libcurl keeps the chunk, stops reading the socket, and hands the chunk
 * back once unpaused).  A harvest that brings held down to half the bound
 * marks the stream for resuming; the next IO call resumes it
 * (cb_streams_service, before anything else) - never the harvest itself,
 * which must not run libcurl callbacks (they append to the arena the
 * harvested pointers point into).
 *
 * Memory: the arena is reclaimed at the start of each harvest (the bytes the
 * previous harvest handed out die then, as the contract says): emptied when
 * every row was taken, else compacted once its dead front is at least as
 * large as what is still live (amortised: each byte moves at most once or
 * twice).
 *
 * Ownership: the client owns every stream (the list client->streams) until
 * cbffi_stream_close or cbffi_client_destroy; a stream owns its arena, its
 * record queue and its final result's value (meta), and holds one reference
 * on its op while the request runs (s->op; NULL once it ended).
 */
#include "client_private.h"
#include "rowsplit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    REC_COST = 16,      /* bookkeeping bytes counted per held row */
    ARENA_KEEP = 1 << 20
};

typedef struct row_rec {
    size_t off;         /* in the arena */
    uint32_t len;
} row_rec;

struct cbffi_stream {
    cbffi_stream *next, *prev;  /* the client's streams */
    cb_op *op;              /* the request while it runs (one reference) */
    uint64_t cookie;
    uint8_t kind;           /* CBFFI_OP_QUERY or CBFFI_OP_VIEW */
    uint8_t status_known;   /* the first body bytes came: `split` decided */
    uint8_t split_body;     /* a 2xx body: rows go through the splitter */
    uint8_t raw_big;        /* a non-2xx body over max_bytes */
    uint8_t paused;         /* the transfer is paused for lack of room */
    uint8_t resume;         /* resume it at the next IO call */
    uint8_t ended;          /* the final result is ready */
    uint8_t final_taken;    /* ... and harvested */
    uint16_t status;        /* the HTTP status */
    cb_rows split;
    cb_buf arena;           /* row bytes, from offset 0 */
    row_rec *recs;          /* rows not harvested: [rhead, rlen) */
    size_t rhead, rlen, rcap;
    size_t held;
    uint64_t ndelivered;    /* rows harvested so far */
    cbffi_result fin;       /* the final result (value from meta) */
    cb_buf meta;
    char err[256];
};

cbffi_stream *cb_stream_new(cbffi_client *c, int op, uint64_t cookie)
{
    cbffi_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->kind = (uint8_t)op;
    s->cookie = cookie;
    if (op == CBFFI_OP_QUERY)
        cb_rows_init(&s->split, "results", 7, c->http_max_response, c->http_max_response);
    else
        cb_rows_init(&s->split, "rows", 4, c->http_max_response, c->http_max_response);
    s->next = c->streams;
    if (c->streams)
        c->streams->prev = s;
    c->streams = s;
    return s;
}

cbffi_stream *cb_stream_begin(cbffi_client *c, int op, uint64_t cookie,
                              cbffi_stream **out, const char *fn, int *rc)
{
    if (!out) {
        cb_set_error(c, "%s needs somewhere to put the stream", fn);
        *rc = CBFFI_EINVAL;
        return NULL;
    }
    *out = NULL;
    cbffi_stream *s = cb_stream_new(c, op, cookie);
    if (!s) {
        cb_set_error(c, "out of memory");
        *rc = CBFFI_CLIENT_ENOMEM;
    }
    return s;
}

int cb_stream_finish(cbffi_client *c, cbffi_stream *s, int rc, cbffi_stream **out)
{
    if (rc != CBFFI_OK)
        cbffi_stream_close(c, s); /* it has no request: only unlinked and freed */
    else
        *out = s;
    return rc;
}

void cb_stream_attach(cbffi_client *c, cbffi_stream *s, cb_op *op)
{
    s->op = op;
    op->stream = s;
    op->streaming = 1;
    op->refs++; /* the stream's */
    c->nstreaming++;
}

/* ---- the body ------------------------------------------------------------------ */

static int queue_row(cbffi_stream *s)
{
    size_t len = s->arena.len - s->split.row_start;
    if (s->rlen == s->rcap) {
        size_t cap = s->rcap ? 2 * s->rcap : 64;
        row_rec *r = realloc(s->recs, cap * sizeof(*r));
        if (!r)
            return -1;
        s->recs = r;
        s->rcap = cap;
    }
    s->recs[s->rlen].off = s->split.row_start;
    s->recs[s->rlen].len = (uint32_t)len;
    s->rlen++;
    s->held += len + REC_COST;
    return 0;
}

int cb_stream_body(cbffi_stream *s, cb_buf *meta, const char *p, size_t n,
                   long status, size_t max_bytes)
{
    if (!s->status_known) {
        s->status_known = 1;
        s->status = status > 0 && status < 1000 ? (uint16_t)status : 0;
        s->split_body = status >= 200 && status < 300;
    }
    if (!s->split_body) { /* kept whole, as a buffered request keeps it */
        if (cb_buf_size(meta) + n > max_bytes) {
            s->raw_big = 1;
            return CB_STREAM_ABORT;
        }
        return cb_buf_append(meta, p, n) == 0 ? CB_STREAM_TOOK : CB_STREAM_ABORT;
    }
    if (s->held >= CBFFI_STREAM_HOLD_MAX) {
        s->paused = 1;
        return CB_STREAM_PAUSE;
    }
    while (n > 0) {
        size_t used = 0;
        cb_rows_status st = cb_rows_feed(&s->split, meta, &s->arena, p, n, &used);
        if (st == CB_ROWS_FAIL)
            return CB_STREAM_ABORT;
        if (st == CB_ROWS_ROW && queue_row(s) != 0) {
            s->split.err = CB_ROWS_E_NOMEM;
            return CB_STREAM_ABORT;
        }
        p += used;
        n -= used;
    }
    return CB_STREAM_TOOK;
}

int cb_stream_verdict(cbffi_client *c, cbffi_stream *s, const char *host, int rc,
                      int whole)
{
    int err = s->split.err;
    if (s->raw_big) {
        cb_set_error(c, "%s: response larger than %zu bytes (http_max_response)", host,
                     c->http_max_response);
        return CBFFI_E2BIG;
    }
    if (!err && whole && rc == CBFFI_OK) {
        if (!s->status_known) {
            cb_set_error(c, "%s: an empty response", host);
            return CBFFI_PROTOCOL_ERROR;
        }
        err = cb_rows_finish(&s->split);
    }
    switch (err) {
    case CB_ROWS_OK:
        return rc;
    case CB_ROWS_E_ROW_BIG:
        cb_set_error(c, "%s: row %llu is larger than %zu bytes (http_max_response)", host,
                     (unsigned long long)s->split.nrows, c->http_max_response);
        return CBFFI_E2BIG;
    case CB_ROWS_E_META_BIG:
        cb_set_error(c, "%s: the response without its rows is larger than %zu bytes "
                        "(http_max_response)", host, c->http_max_response);
        return CBFFI_E2BIG;
    case CB_ROWS_E_NOMEM:
        cb_set_error(c, "%s: out of memory for the response's rows", host);
        return CBFFI_CLIENT_ENOMEM;
    default:
        cb_set_error(c, "%s: the response is not a JSON object: %s at byte %llu, after "
                        "%llu rows", host, cb_rows_strerror(err),
                     (unsigned long long)s->split.offset, (unsigned long long)s->split.nrows);
        return CBFFI_PROTOCOL_ERROR;
    }
}

/* ---- the end ----------------------------------------------------------------------- */

/* Let go of the op (the request ended, or the stream is closed). */
static void detach(cbffi_client *c, cbffi_stream *s)
{
    cb_op *op = s->op;
    if (!op)
        return;
    s->op = NULL;
    op->stream = NULL;
    if (s->resume) {
        s->resume = 0;
        c->nresume--;
    }
    cb_op_unref(c, op);
}

void cb_stream_end(cbffi_client *c, cb_op *op, const cbffi_result *r,
                   const char *value, size_t nvalue)
{
    cbffi_stream *s = op->stream;
    if (!s || s->ended)
        return;
    s->fin = *r;
    s->fin.cookie = s->cookie;
    s->fin.op = s->kind;
    s->fin.server = -1;
    s->fin.final = 1;
    s->fin.key = NULL;
    s->fin.nkey = 0;
    if (!s->fin.status)
        s->fin.status = s->status;
    if (nvalue && cb_buf_append(&s->meta, value, nvalue) != 0) {
        s->fin.rc = CBFFI_CLIENT_ENOMEM;
        nvalue = 0;
    }
    s->fin.nvalue = (uint32_t)nvalue;
    s->ended = 1;
    if (s->fin.rc != CBFFI_OK)
        snprintf(s->err, sizeof s->err, "%s", c->last_error[0] ? c->last_error
                                                               : cbffi_strerror(s->fin.rc));
    detach(c, s);
}

/* ---- harvesting ---------------------------------------------------------------------- */

/* Forget the rows handed out by the previous harvest (see Memory above). */
static void reclaim(cbffi_stream *s)
{
    size_t live;
    if (s->rhead == s->rlen) {
        s->rhead = s->rlen = 0;
        live = s->split.in_row ? s->split.row_start : s->arena.len;
    } else {
        live = s->recs[s->rhead].off;
        if (s->rhead >= s->rlen - s->rhead) {
            memmove(s->recs, s->recs + s->rhead, (s->rlen - s->rhead) * sizeof(*s->recs));
            s->rlen -= s->rhead;
            s->rhead = 0;
        }
    }
    if (live == 0)
        return;
    if (live == s->arena.len) {
        s->arena.len = 0;
        cb_rows_rebase(&s->split, live);
        cb_buf_shrink(&s->arena, ARENA_KEEP);
        return;
    }
    if (live < s->arena.len - live)
        return; /* later: not worth moving yet */
    memmove(s->arena.data, s->arena.data + live, s->arena.len - live);
    s->arena.len -= live;
    for (size_t i = s->rhead; i < s->rlen; i++)
        s->recs[i].off -= live;
    cb_rows_rebase(&s->split, live);
}

size_t cbffi_stream_harvest(cbffi_client *c, cbffi_stream *s, cbffi_result *out,
                            size_t max)
{
    size_t n = 0;
    if (!s)
        return 0;
    reclaim(s);
    while (n < max && s->rhead < s->rlen) {
        const row_rec *rec = &s->recs[s->rhead++];
        cbffi_result *r = &out[n++];
        memset(r, 0, sizeof(*r));
        r->cookie = s->cookie;
        r->op = s->kind;
        r->server = -1;
        r->status = s->status;
        r->u64 = s->ndelivered++;
        r->value = rec->len ? s->arena.data + rec->off : NULL;
        r->nvalue = rec->len;
        s->held -= rec->len + REC_COST;
    }
    if (n < max && s->rhead == s->rlen && s->ended && !s->final_taken) {
        out[n] = s->fin;
        out[n].u64 = s->ndelivered;
        out[n].value = s->fin.nvalue ? cb_buf_head(&s->meta) : NULL;
        s->final_taken = 1;
        n++;
    }
    if (s->paused && !s->resume && s->op && s->held <= CBFFI_STREAM_HOLD_MAX / 2) {
        s->resume = 1;
        c->nresume++;
    }
    return n;
}

size_t cbffi_stream_ready(const cbffi_stream *s)
{
    if (!s)
        return 0;
    return s->rlen - s->rhead + (s->ended && !s->final_taken);
}

int cb_stream_over(const cbffi_stream *s)
{
    return s->final_taken;
}

size_t cbffi_stream_held(const cbffi_stream *s)
{
    return s ? s->held : 0;
}

int cbffi_stream_paused(const cbffi_stream *s)
{
    return s && s->paused;
}

const char *cbffi_stream_error(const cbffi_stream *s)
{
    return s ? s->err : "";
}

/* ---- the client's side --------------------------------------------------------------- */

void cb_streams_service(cbffi_client *c)
{
    for (cbffi_stream *s = c->streams; s && c->nresume; s = s->next) {
        if (!s->resume)
            continue;
        s->resume = 0;
        c->nresume--;
        s->paused = 0;
        if (s->op)
            cb_http_resume(c, s->op); /* may deliver the chunk held back */
    }
}

static void stream_free(cbffi_stream *s)
{
    cb_buf_free(&s->arena);
    cb_buf_free(&s->meta);
    free(s->recs);
    free(s);
}

void cbffi_stream_close(cbffi_client *c, cbffi_stream *s)
{
    if (!s)
        return;
    cb_op *op = s->op;
    if (op) {
        op->refs++; /* ours, until it is dropped everywhere */
        detach(c, s);
        cb_http_cancel(c, op);
        cb_op_drop(c, op);
        cb_op_unref(c, op);
    }
    if (s->prev)
        s->prev->next = s->next;
    else
        c->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    stream_free(s);
}

void cb_streams_free(cbffi_client *c)
{
    while (c->streams) {
        cbffi_stream *s = c->streams;
        c->streams = s->next;
        stream_free(s); /* the ops go with the client's op pool */
    }
}
