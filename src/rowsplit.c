/*
 * rowsplit.c - the incremental JSON row splitter (see rowsplit.h).
 *
 * One byte at a time through a small state machine: `state` says what the
 * next byte may be; strings, escapes, UTF-8 sequences, numbers and literals
 * have their own states, so that a chunk may end anywhere.  Containers are
 * a bit stack (object or array per level).  Each byte is classed as meta,
 * row, or skipped (whitespace and commas between rows); runs of one class
 * are appended to their buffer in one piece, but the size bounds are
 * checked byte by byte, so that where the body is cut never changes which
 * error a bad body gets.
 */
#include "rowsplit.h"

#include <string.h>

enum {
    S_START,        /* before the top-level value: '{' only */
    S_VALUE,        /* a value (after ':' or an array's ',') */
    S_VALUE_OR_END, /* after '[': a value or ']' */
    S_KEY_OR_END,   /* after '{': a key or '}' */
    S_KEY,          /* after an object's ',': a key */
    S_COLON,        /* after a key */
    S_AFTER,        /* after a value: ',' or the container's closer */
    S_DONE,         /* after the top-level object: whitespace only */
    S_STR,          /* in a string */
    S_ESC,          /* after a backslash */
    S_HEX,          /* in \uXXXX */
    S_UTF8,         /* in a multi-byte UTF-8 sequence */
    S_NUM,          /* in a number (sub-state: num) */
    S_LIT           /* in true / false / null */
};

/* Number sub-states: what has been read so far. */
enum { N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP };

enum { STEP_TAKEN, STEP_AGAIN, STEP_ERR };

enum { C_NONE, C_META, C_ROW, C_SKIP };

/* The literals back to back: true at 0, false at 4, null at 9. */
static const char lits[] = "truefalsenull";

void cb_rows_init(cb_rows *s, const char *key, size_t nkey, size_t max_row,
                  size_t max_meta)
{
    memset(s, 0, sizeof(*s));
    s->key = key;
    s->nkey = nkey;
    s->max_row = max_row;
    s->max_meta = max_meta;
    s->state = S_START;
}

static int is_ws(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static int is_digit(unsigned char ch)
{
    return ch >= '0' && ch <= '9';
}

static int is_hex(unsigned char ch)
{
    return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

static int top_is_object(const cb_rows *s)
{
    uint32_t i = s->depth - 1;
    return (s->objs[i / 8] >> (i % 8)) & 1;
}

static int push(cb_rows *s, int object)
{
    if (s->depth >= CB_ROWS_MAX_DEPTH) {
        s->err = CB_ROWS_E_DEPTH;
        return STEP_ERR;
    }
    uint32_t i = s->depth++;
    if (object)
        s->objs[i / 8] |= (uint8_t)(1u << (i % 8));
    else
        s->objs[i / 8] &= (uint8_t)~(1u << (i % 8));
    return STEP_TAKEN;
}

/* A value just ended at the current depth. */
static void value_end(cb_rows *s)
{
    s->state = s->depth == 0 ? S_DONE : S_AFTER;
    if (s->in_row && s->depth == s->rows_level)
        s->in_row = 0;
}

/* '}' or ']' closing the innermost container. */
static int close_container(cb_rows *s, unsigned char ch)
{
    if (s->depth == 0 || (ch == '}') != top_is_object(s))
        return STEP_ERR;
    if (s->in_rows && s->depth == s->rows_level)
        s->in_rows = 0; /* the rows array itself */
    s->depth--;
    value_end(s);
    return STEP_TAKEN;
}

static void begin_literal(cb_rows *s, uint8_t pos, uint8_t len)
{
    s->lit_pos = (uint8_t)(pos + 1);
    s->lit_left = (uint8_t)(len - 1);
    s->state = S_LIT;
}

/* The first byte of a value. */
static int value_begin(cb_rows *s, unsigned char ch)
{
    int rows_value = s->rows_next;
    s->rows_next = 0;
    if (s->in_rows && s->depth == s->rows_level)
        s->in_row = 1; /* an element of the rows array starts here */
    switch (ch) {
    case '{':
        s->state = S_KEY_OR_END;
        return push(s, 1);
    case '[':
        s->state = S_VALUE_OR_END;
        if (push(s, 0) != STEP_TAKEN)
            return STEP_ERR;
        if (rows_value) {
            s->in_rows = 1;
            s->rows_level = s->depth;
        }
        return STEP_TAKEN;
    case '"':
        s->str_key = s->key_track = 0;
        s->state = S_STR;
        return STEP_TAKEN;
    case '-':
        s->num = N_MINUS;
        s->state = S_NUM;
        return STEP_TAKEN;
    case 't':
        begin_literal(s, 0, 4);
        return STEP_TAKEN;
    case 'f':
        begin_literal(s, 4, 5);
        return STEP_TAKEN;
    case 'n':
        begin_literal(s, 9, 4);
        return STEP_TAKEN;
    default:
        if (!is_digit(ch))
            return STEP_ERR;
        s->num = ch == '0' ? N_ZERO : N_INT;
        s->state = S_NUM;
        return STEP_TAKEN;
    }
}

static int key_begin(cb_rows *s)
{
    s->str_key = 1;
    s->key_track = s->depth == 1;
    s->key_ok = 1;
    s->key_pos = 0;
    s->state = S_STR;
    return STEP_TAKEN;
}

static int string_end(cb_rows *s)
{
    if (!s->str_key) {
        value_end(s);
        return STEP_TAKEN;
    }
    s->rows_next = s->key_track && s->key_ok && s->key_pos == s->nkey;
    s->state = S_COLON;
    return STEP_TAKEN;
}

/* A lead byte of a multi-byte UTF-8 sequence (RFC 3629, section 4). */
static int utf8_lead(cb_rows *s, unsigned char ch)
{
    uint8_t lo = 0x80, hi = 0xbf, left;
    if (ch >= 0xc2 && ch <= 0xdf) {
        left = 1;
    } else if (ch >= 0xe0 && ch <= 0xef) {
        left = 2;
        if (ch == 0xe0)
            lo = 0xa0; /* no overlong forms */
        else if (ch == 0xed)
            hi = 0x9f; /* no surrogates */
    } else if (ch >= 0xf0 && ch <= 0xf4) {
        left = 3;
        if (ch == 0xf0)
            lo = 0x90;
        else if (ch == 0xf4)
            hi = 0x8f; /* nothing above U+10FFFF */
    } else {
        return STEP_ERR;
    }
    s->u8_left = left;
    s->u8_lo = lo;
    s->u8_hi = hi;
    s->key_ok = 0; /* the rows key is ASCII */
    s->state = S_UTF8;
    return STEP_TAKEN;
}

static int in_string(cb_rows *s, unsigned char ch)
{
    if (ch == '"')
        return string_end(s);
    if (ch == '\\') {
        s->key_ok = 0;
        s->state = S_ESC;
        return STEP_TAKEN;
    }
    if (ch < 0x20)
        return STEP_ERR;
    if (ch >= 0x80)
        return utf8_lead(s, ch);
    if (s->key_track && s->key_ok) {
        if (s->key_pos < s->nkey && (unsigned char)s->key[s->key_pos] == ch)
            s->key_pos++;
        else
            s->key_ok = 0;
    }
    return STEP_TAKEN;
}

static int in_escape(cb_rows *s, unsigned char ch)
{
    if (ch == 'u') {
        s->hex_left = 4;
        s->state = S_HEX;
        return STEP_TAKEN;
    }
    if (!memchr("\"\\/bfnrt", ch, 8))
        return STEP_ERR;
    s->state = S_STR;
    return STEP_TAKEN;
}

/* A byte in a number: taken, or the number ended before it (STEP_AGAIN). */
static int in_number(cb_rows *s, unsigned char ch)
{
    int d = is_digit(ch), e = ch == 'e' || ch == 'E';
    switch (s->num) {
    case N_MINUS:
        if (!d)
            return STEP_ERR;
        s->num = ch == '0' ? N_ZERO : N_INT;
        return STEP_TAKEN;
    case N_ZERO:
    case N_INT:
        if (d && s->num == N_INT)
            return STEP_TAKEN;
        if (ch == '.') {
            s->num = N_DOT;
            return STEP_TAKEN;
        }
        break;
    case N_DOT:
        if (!d)
            return STEP_ERR;
        s->num = N_FRAC;
        return STEP_TAKEN;
    case N_FRAC:
        if (d)
            return STEP_TAKEN;
        break;
    case N_E:
        if (ch == '+' || ch == '-') {
            s->num = N_ESIGN;
            return STEP_TAKEN;
        }
        /* fall through */
    case N_ESIGN:
        if (!d)
            return STEP_ERR;
        s->num = N_EXP;
        return STEP_TAKEN;
    default: /* N_EXP */
        if (d)
            return STEP_TAKEN;
        value_end(s);
        return STEP_AGAIN;
    }
    /* N_ZERO, N_INT, N_FRAC: an exponent may follow, else the end */
    if (e) {
        s->num = N_E;
        return STEP_TAKEN;
    }
    value_end(s);
    return STEP_AGAIN;
}

/* Whitespace and structure between values. */
static int between(cb_rows *s, unsigned char ch)
{
    if (is_ws(ch))
        return STEP_TAKEN;
    switch (s->state) {
    case S_START:
        return ch == '{' ? value_begin(s, ch) : STEP_ERR;
    case S_VALUE_OR_END:
        if (ch == ']')
            return close_container(s, ch);
        return value_begin(s, ch);
    case S_VALUE:
        return value_begin(s, ch);
    case S_KEY_OR_END:
        if (ch == '}')
            return close_container(s, ch);
        return ch == '"' ? key_begin(s) : STEP_ERR;
    case S_KEY:
        return ch == '"' ? key_begin(s) : STEP_ERR;
    case S_COLON:
        if (ch != ':')
            return STEP_ERR;
        s->state = S_VALUE;
        return STEP_TAKEN;
    case S_AFTER:
        if (ch == ',') {
            s->state = top_is_object(s) ? S_KEY : S_VALUE;
            return STEP_TAKEN;
        }
        if (ch == '}' || ch == ']')
            return close_container(s, ch);
        return STEP_ERR;
    default: /* S_DONE */
        return STEP_ERR;
    }
}

static int step(cb_rows *s, unsigned char ch)
{
    switch (s->state) {
    case S_STR:
        return in_string(s, ch);
    case S_ESC:
        return in_escape(s, ch);
    case S_HEX:
        if (!is_hex(ch))
            return STEP_ERR;
        if (--s->hex_left == 0)
            s->state = S_STR;
        return STEP_TAKEN;
    case S_UTF8:
        if (ch < s->u8_lo || ch > s->u8_hi)
            return STEP_ERR;
        s->u8_lo = 0x80;
        s->u8_hi = 0xbf;
        if (--s->u8_left == 0)
            s->state = S_STR;
        return STEP_TAKEN;
    case S_NUM:
        return in_number(s, ch);
    case S_LIT:
        if (ch != (unsigned char)lits[s->lit_pos])
            return STEP_ERR;
        s->lit_pos++;
        if (--s->lit_left == 0)
            value_end(s);
        return STEP_TAKEN;
    default:
        return between(s, ch);
    }
}

/* Append a run of one class to its buffer, within the bounds. */
static int put(cb_rows *s, int cls, cb_buf *meta, cb_buf *rows, const char *p,
               size_t n)
{
    if (n == 0 || cls == C_NONE || cls == C_SKIP)
        return 0;
    if (cls == C_ROW) {
        if (rows->len - s->row_start + n > s->max_row) {
            s->err = CB_ROWS_E_ROW_BIG;
            return -1;
        }
        if (cb_buf_append(rows, p, n) != 0) {
            s->err = CB_ROWS_E_NOMEM;
            return -1;
        }
        return 0;
    }
    if (cb_buf_size(meta) + n > s->max_meta) {
        s->err = CB_ROWS_E_META_BIG;
        return -1;
    }
    if (cb_buf_append(meta, p, n) != 0) {
        s->err = CB_ROWS_E_NOMEM;
        return -1;
    }
    return 0;
}

cb_rows_status cb_rows_feed(cb_rows *s, cb_buf *meta, cb_buf *rows,
                            const char *p, size_t n, size_t *used)
{
    size_t i = 0, run = 0;
    int cls = C_NONE, row_ended = 0;
    if (s->err) {
        *used = 0;
        return CB_ROWS_FAIL;
    }
    while (i < n) {
        uint8_t was_row = s->in_row, was_rows = s->in_rows;
        int r = step(s, (unsigned char)p[i]);
        if (r == STEP_ERR) {
            if (!s->err)
                s->err = CB_ROWS_E_SYNTAX;
            break;
        }
        if (r == STEP_AGAIN) { /* a number ended before p[i]: p[i] again */
            if (was_row && !s->in_row) {
                row_ended = 1;
                break;
            }
            continue;
        }
        int c = was_row || s->in_row ? C_ROW
                : was_rows && s->in_rows ? C_SKIP : C_META;
        if (c != cls) {
            if (put(s, cls, meta, rows, p + run, i - run) != 0)
                break;
            cls = c;
            run = i;
        }
        if (!was_row && s->in_row)
            s->row_start = rows->len;
        /* the bounds, byte by byte: the same verdict however the body is cut */
        if (c == C_ROW && rows->len - s->row_start + (i - run) >= s->max_row) {
            s->err = CB_ROWS_E_ROW_BIG;
            break;
        }
        if (c == C_META && cb_buf_size(meta) + (i - run) >= s->max_meta) {
            s->err = CB_ROWS_E_META_BIG;
            break;
        }
        i++;
        if (was_row && !s->in_row) {
            row_ended = 1;
            break;
        }
    }
    if (!s->err)
        put(s, cls, meta, rows, p + run, i - run);
    s->offset += i;
    *used = i;
    if (s->err)
        return CB_ROWS_FAIL;
    if (row_ended) {
        s->nrows++;
        return CB_ROWS_ROW;
    }
    return CB_ROWS_MORE;
}

int cb_rows_finish(cb_rows *s)
{
    if (!s->err && s->state != S_DONE)
        s->err = CB_ROWS_E_TRUNCATED;
    return s->err;
}

void cb_rows_rebase(cb_rows *s, size_t shift)
{
    s->row_start = s->row_start >= shift ? s->row_start - shift : 0;
}

const char *cb_rows_strerror(int err)
{
    switch (err) {
    case CB_ROWS_OK:
        return "ok";
    case CB_ROWS_E_SYNTAX:
        return "not a JSON object";
    case CB_ROWS_E_DEPTH:
        return "nested too deep";
    case CB_ROWS_E_ROW_BIG:
        return "a row is larger than the limit";
    case CB_ROWS_E_META_BIG:
        return "the response outside its rows is larger than the limit";
    case CB_ROWS_E_NOMEM:
        return "out of memory";
    case CB_ROWS_E_TRUNCATED:
        return "the JSON ended early";
    default:
        return "unknown error";
    }
}
