/*
 * buf.h - growable byte buffer used for packet queues and read buffers.
 *
 * A cb_buf owns `data` (malloc'd).  Bytes live in [off, len); `off` advances as
 * a consumer eats from the front; cb_buf_compact() moves the live bytes back to
 * the start.  All functions return 0 or -1 on allocation failure (the buffer
 * is then unchanged).
 */
#ifndef CBFFI_BUF_H
#define CBFFI_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct cb_buf {
    char *data;
    size_t off; /* first live byte */
    size_t len; /* one past the last live byte */
    size_t cap;
} cb_buf;

/* Make room for at least `n` more bytes after len. */
int cb_buf_reserve(cb_buf *b, size_t n);
/* Append n bytes. */
int cb_buf_append(cb_buf *b, const void *p, size_t n);
/* Live byte count. */
static inline size_t cb_buf_size(const cb_buf *b) { return b->len - b->off; }
/* Pointer to the first live byte; NULL for a buffer never allocated
   (NULL + 0 is undefined behaviour). */
static inline char *cb_buf_head(const cb_buf *b)
{
    return b->data ? b->data + b->off : NULL;
}
/* Drop n bytes from the front; resets to empty when all are consumed. */
void cb_buf_consume(cb_buf *b, size_t n);
/* Move live bytes to the start of the allocation. */
void cb_buf_compact(cb_buf *b);
/* Forget all content, keep the allocation. */
static inline void cb_buf_clear(cb_buf *b) { b->off = b->len = 0; }
/* Release the allocation. */
void cb_buf_free(cb_buf *b);
/* Release the allocation if it grew beyond `keep` bytes while empty. */
void cb_buf_shrink(cb_buf *b, size_t keep);

/* Big-endian helpers. */
static inline void cb_put16(char *p, uint16_t v) {
    p[0] = (char)(v >> 8); p[1] = (char)v;
}
static inline void cb_put32(char *p, uint32_t v) {
    p[0] = (char)(v >> 24); p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8); p[3] = (char)v;
}
static inline void cb_put64(char *p, uint64_t v) {
    cb_put32(p, (uint32_t)(v >> 32)); cb_put32(p + 4, (uint32_t)v);
}
static inline uint16_t cb_get16(const char *p) {
    const unsigned char *u = (const unsigned char *)p;
    return (uint16_t)((u[0] << 8) | u[1]);
}
static inline uint32_t cb_get32(const char *p) {
    const unsigned char *u = (const unsigned char *)p;
    return ((uint32_t)u[0] << 24) | ((uint32_t)u[1] << 16) |
           ((uint32_t)u[2] << 8) | (uint32_t)u[3];
}
static inline uint64_t cb_get64(const char *p) {
    return ((uint64_t)cb_get32(p) << 32) | cb_get32(p + 4);
}

#endif
