/* buf.c - growable byte buffer (see buf.h). */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

int cb_buf_reserve(cb_buf *b, size_t n)
{
    if (b->cap - b->len >= n)
        return 0;
    /* Reclaim consumed space first when that is enough and cheap. */
    if (b->off > 0 && b->cap - cb_buf_size(b) >= n && b->off >= b->cap / 2) {
        cb_buf_compact(b);
        return 0;
    }
    size_t need = b->len + n;
    if (need < b->len)
        return -1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int cb_buf_append(cb_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (cb_buf_reserve(b, n) != 0)
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void cb_buf_consume(cb_buf *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len)
        b->off = b->len = 0;
}

void cb_buf_compact(cb_buf *b)
{
    if (b->off == 0)
        return;
    size_t n = cb_buf_size(b);
    if (n)
        memmove(b->data, b->data + b->off, n);
    b->off = 0;
    b->len = n;
}

void cb_buf_free(cb_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}

void cb_buf_shrink(cb_buf *b, size_t keep)
{
    if (cb_buf_size(b) == 0 && b->cap > keep)
        cb_buf_free(b);
}
