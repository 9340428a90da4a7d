/* codec.c - binary protocol encode/decode (see codec.h). */
#include "codec.h"

#include <string.h>

int cb_encode(cb_buf *out, const cb_req *r)
{
    size_t body = (size_t)r->next + r->nkey + r->nvalue;
    if (body > UINT32_MAX)
        return -1;
    if (cb_buf_reserve(out, CB_HEADER_LEN + body) != 0)
        return -1;
    char *p = out->data + out->len;
    p[0] = (char)CB_MAGIC_REQ;
    p[1] = (char)r->opcode;
    cb_put16(p + 2, r->nkey);
    p[4] = (char)r->next;
    p[5] = (char)r->datatype;
    cb_put16(p + 6, r->vbucket);
    cb_put32(p + 8, (uint32_t)body);
    memcpy(p + 12, &r->opaque, 4); /* opaque is echoed, byte order is ours */
    cb_put64(p + 16, r->cas);
    p += CB_HEADER_LEN;
    if (r->next) {
        memcpy(p, r->ext, r->next);
        p += r->next;
    }
    if (r->nkey) {
        memcpy(p, r->key, r->nkey);
        p += r->nkey;
    }
    if (r->nvalue)
        memcpy(p, r->value, r->nvalue);
    out->len += CB_HEADER_LEN + body;
    return 0;
}

uint8_t cb_ext_store(char ext[8], uint32_t flags, uint32_t exptime)
{
    cb_put32(ext, flags);
    cb_put32(ext + 4, exptime);
    return 8;
}

uint8_t cb_ext_counter(char ext[20], uint64_t delta, uint64_t initial,
                       uint32_t exptime)
{
    cb_put64(ext, delta);
    cb_put64(ext + 8, initial);
    cb_put32(ext + 16, exptime);
    return 20;
}

uint8_t cb_ext_exptime(char ext[4], uint32_t exptime)
{
    cb_put32(ext, exptime);
    return 4;
}

int cb_decode_header(const char *p, cb_resp *r, uint32_t max_body,
                     const char **why)
{
    const unsigned char *u = (const unsigned char *)p;
    r->magic = u[0];
    if (r->magic == CB_MAGIC_RES) {
        r->nframe = 0;
        r->nkey = cb_get16(p + 2);
    } else if (r->magic == CB_MAGIC_ALT_RES) {
        r->nframe = u[2];
        r->nkey = u[3];
    } else {
        *why = "bad magic byte in response header";
        return CB_DECODE_BAD;
    }
    r->opcode = u[1];
    r->next = u[4];
    r->datatype = u[5];
    r->status = cb_get16(p + 6);
    r->bodylen = cb_get32(p + 8);
    memcpy(&r->opaque, p + 12, 4);
    r->cas = cb_get64(p + 16);
    if (r->bodylen > max_body) {
        *why = "response body larger than the configured maximum";
        return CB_DECODE_BAD;
    }
    uint32_t fixed = (uint32_t)r->nframe + r->next + r->nkey;
    if (fixed > r->bodylen) {
        *why = "framing, extras and key longer than the body";
        return CB_DECODE_BAD;
    }
    r->nvalue = r->bodylen - fixed;
    return 0;
}

ssize_t cb_decode(const char *p, size_t n, cb_resp *r, uint32_t max_body,
                  const char **why)
{
    if (n < CB_HEADER_LEN)
        return CB_DECODE_NEED_MORE;
    if (cb_decode_header(p, r, max_body, why) != 0)
        return CB_DECODE_BAD;
    size_t total = (size_t)CB_HEADER_LEN + r->bodylen;
    if (n < total)
        return CB_DECODE_NEED_MORE;
    const char *b = p + CB_HEADER_LEN + r->nframe;
    r->ext = r->next ? b : NULL;
    r->key = r->nkey ? b + r->next : NULL;
    r->value = r->nvalue ? b + r->next + r->nkey : NULL;
    return (ssize_t)total;
}

ssize_t cb_decode_server_req(const char *p, size_t n, cb_resp *r,
                             uint32_t max_body, const char **why)
{
    if (n < CB_HEADER_LEN)
        return CB_DECODE_NEED_MORE;
    const unsigned char *u = (const unsigned char *)p;
    if (u[0] != CB_MAGIC_SERVER_REQ) {
        *why = "not a server request";
        return CB_DECODE_BAD;
    }
    r->magic = u[0];
    r->opcode = u[1];
    r->nkey = cb_get16(p + 2);
    r->next = u[4];
    r->datatype = u[5];
    r->nframe = 0;
    r->status = 0;
    r->bodylen = cb_get32(p + 8);
    memcpy(&r->opaque, p + 12, 4);
    r->cas = cb_get64(p + 16);
    if (r->bodylen > max_body) {
        *why = "server request body larger than the configured maximum";
        return CB_DECODE_BAD;
    }
    uint32_t fixed = (uint32_t)r->next + r->nkey;
    if (fixed > r->bodylen) {
        *why = "server request extras and key longer than the body";
        return CB_DECODE_BAD;
    }
    r->nvalue = r->bodylen - fixed;
    size_t total = (size_t)CB_HEADER_LEN + r->bodylen;
    if (n < total)
        return CB_DECODE_NEED_MORE;
    const char *b = p + CB_HEADER_LEN;
    r->ext = r->next ? b : NULL;
    r->key = r->nkey ? b + r->next : NULL;
    r->value = r->nvalue ? b + r->next + r->nkey : NULL;
    return (ssize_t)total;
}

uint8_t cb_quiet_of(uint8_t opcode)
{
    switch (opcode) {
    case CB_CMD_GET: return CB_CMD_GETQ;
    case CB_CMD_GETK: return CB_CMD_GETKQ;
    case CB_CMD_GAT: return CB_CMD_GATQ;
    default: return opcode;
    }
}

uint8_t cb_loud_of(uint8_t opcode)
{
    switch (opcode) {
    case CB_CMD_GETQ: return CB_CMD_GET;
    case CB_CMD_GETKQ: return CB_CMD_GETK;
    case CB_CMD_GATQ: return CB_CMD_GAT;
    default: return opcode;
    }
}
