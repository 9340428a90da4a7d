/*
 * rowsplit.h - an incremental splitter for the JSON bodies of the N1QL and
 * view services (PROTOCOL.md 8.1, 8.2).
 *
 * Fed a response body in chunks of any size - a chunk may end anywhere:
 * inside a string, an escape, a \u sequence, a UTF-8 sequence, a number or
 * a literal - it hands back each element of the top-level object's rows
 * array ("results" for N1QL, "rows" for views) as its own byte string,
 * exactly as sent, and keeps the rest of the body, the "meta", with that
 * array emptied: {"requestID":"..","results":[],"status":"success",...}.
 * Whitespace and commas between rows are dropped; every other byte goes to
 * the meta or to a row, in order.
 *
 * Sans-IO, in the manner of hiredis's reply reader: bytes in, rows out; no
 * sockets, no callbacks, no allocation of its own.  The caller owns the two
 * output buffers and passes them to every call: meta bytes are appended to
 * `meta`, row bytes to `rows`; when a row ends, cb_rows_feed returns
 * CB_ROWS_ROW and the row is rows->data[s->row_start, rows->len).  The
 * caller may keep it there or copy it out; between calls it may move the
 * buffer's bytes as long as it moves row_start with them
 * (cb_rows_rebase).
 *
 * Validation: the whole body must be one JSON text (RFC 8259) whose value is
 * an object: strings with valid escapes (\uXXXX: four hex digits; lone
 * surrogates are accepted, as Python's json module accepts them), no control
 * bytes, and well-formed UTF-8 (RFC 3629: no overlong forms, no encoded
 * surrogates, nothing above U+10FFFF); numbers by the grammar; true, false,
 * null; nothing but whitespace after the object.  Bounds against hostile
 * input: at most CB_ROWS_MAX_DEPTH nested containers, each row at most
 * max_row bytes and the meta at most max_meta bytes.  The rows key is
 * recognised when written plainly, as every server writes it (a key spelt
 * with escapes is a different key here, and its array stays in the meta).
 * A failure is final: every later call returns CB_ROWS_FAIL.
 *
 * Ownership: a cb_rows holds no allocation (nothing to free); `key` is
 * borrowed and must outlive it (the callers pass string literals).
 */
#ifndef CBFFI_ROWSPLIT_H
#define CBFFI_ROWSPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum { CB_ROWS_MAX_DEPTH = 256 };

typedef enum cb_rows_status {
    CB_ROWS_MORE = 0,   /* every byte given was taken: feed more, or finish */
    CB_ROWS_ROW = 1,    /* a row ended (see row_start); *used bytes taken */
    CB_ROWS_FAIL = -1   /* the body is bad (err says how); nothing more */
} cb_rows_status;

typedef enum cb_rows_error {
    CB_ROWS_OK = 0,
    CB_ROWS_E_SYNTAX = 1,    /* not JSON, or not an object */
    CB_ROWS_E_DEPTH = 2,     /* nested deeper than CB_ROWS_MAX_DEPTH */
    CB_ROWS_E_ROW_BIG = 3,   /* a row longer than max_row */
    CB_ROWS_E_META_BIG = 4,  /* the meta longer than max_meta */
    CB_ROWS_E_NOMEM = 5,     /* an output buffer could not grow */
    CB_ROWS_E_TRUNCATED = 6  /* cb_rows_finish: the body ended early */
} cb_rows_error;

typedef struct cb_rows {
    const char *key;        /* the rows array's key (borrowed) */
    size_t nkey;
    size_t max_row, max_meta;
    size_t row_start;       /* the current / last row's first byte in rows */
    uint64_t offset;        /* body bytes taken so far (for messages) */
    uint64_t nrows;         /* rows ended so far */
    uint32_t depth;         /* open containers */
    uint32_t rows_level;    /* depth inside the rows array, when in_rows */
    uint8_t objs[CB_ROWS_MAX_DEPTH / 8]; /* bit i: container i is an object */
    uint8_t state;          /* what the next byte may be (rowsplit.c) */
    uint8_t num;            /* number sub-state */
    uint8_t lit_left;       /* literal bytes still expected */
    uint8_t lit_pos;        /* index into the literal's text */
    uint8_t hex_left;       /* \uXXXX digits still expected */
    uint8_t u8_left;        /* UTF-8 continuation bytes still expected */
    uint8_t u8_lo, u8_hi;   /* the range the next continuation byte needs */
    uint8_t str_key;        /* the string being read is an object key */
    uint8_t key_track;      /* ...a key of the top-level object */
    uint8_t key_ok;         /* ...that matches `key` so far */
    uint32_t key_pos;
    uint8_t rows_next;      /* the next value is the rows key's value */
    uint8_t in_rows;        /* inside the rows array */
    uint8_t in_row;         /* inside one of its elements */
    uint8_t err;            /* cb_rows_error */
} cb_rows;

/* Start on a new body: rows under `key` (nkey bytes), each at most max_row
   bytes, the meta at most max_meta bytes. */
void cb_rows_init(cb_rows *s, const char *key, size_t nkey, size_t max_row,
                  size_t max_meta);

/* Take bytes from p[0..n): *used is set to how many were taken (all of
   them with CB_ROWS_MORE; up to the end of a row with CB_ROWS_ROW: call
   again with the rest).  Meta bytes are appended to meta, row bytes to
   rows. */
cb_rows_status cb_rows_feed(cb_rows *s, cb_buf *meta, cb_buf *rows,
                            const char *p, size_t n, size_t *used);

/* The body ended: CB_ROWS_OK if it was a whole JSON object, else the error
   (CB_ROWS_E_TRUNCATED if it stopped early, or the error met before). */
int cb_rows_finish(cb_rows *s);

/* The caller moved the rows buffer's bytes `shift` bytes towards its start:
   the row being read (if any) starts that much earlier. */
void cb_rows_rebase(cb_rows *s, size_t shift);

/* A static description of a cb_rows_error. */
const char *cb_rows_strerror(int err);

#endif
