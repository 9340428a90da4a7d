/*
 * codec.h - memcached / Couchbase binary protocol encoding and decoding.
 *
 * Pure functions over byte buffers: no sockets, no clocks, no allocation
 * except growing the caller's cb_buf.  Fuzzable on their own.
 * Wire facts: PROTOCOL.md sections 1-3.
 */
#ifndef CBFFI_CODEC_H
#define CBFFI_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

enum {
    CB_HEADER_LEN = 24,
    CB_MAGIC_REQ = 0x80,
    CB_MAGIC_RES = 0x81,
    CB_MAGIC_ALT_REQ = 0x08,
    CB_MAGIC_ALT_RES = 0x18,
    CB_MAX_KEY = 250
};

/* Wire opcodes (PROTOCOL.md 2.1). */
enum {
    CB_CMD_GET = 0x00, CB_CMD_SET = 0x01, CB_CMD_ADD = 0x02,
    CB_CMD_REPLACE = 0x03, CB_CMD_DELETE = 0x04, CB_CMD_INCR = 0x05,
    CB_CMD_DECR = 0x06, CB_CMD_QUIT = 0x07, CB_CMD_FLUSH = 0x08,
    CB_CMD_GETQ = 0x09, CB_CMD_NOOP = 0x0a, CB_CMD_VERSION = 0x0b,
    CB_CMD_GETK = 0x0c, CB_CMD_GETKQ = 0x0d, CB_CMD_APPEND = 0x0e,
    CB_CMD_PREPEND = 0x0f, CB_CMD_STAT = 0x10, CB_CMD_SETQ = 0x11,
    CB_CMD_ADDQ = 0x12, CB_CMD_REPLACEQ = 0x13, CB_CMD_DELETEQ = 0x14,
    CB_CMD_INCRQ = 0x15, CB_CMD_DECRQ = 0x16, CB_CMD_QUITQ = 0x17,
    CB_CMD_FLUSHQ = 0x18, CB_CMD_APPENDQ = 0x19, CB_CMD_PREPENDQ = 0x1a,
    CB_CMD_TOUCH = 0x1c, CB_CMD_GAT = 0x1d, CB_CMD_GATQ = 0x1e,
    CB_CMD_HELLO = 0x1f, CB_CMD_SASL_LIST_MECHS = 0x20,
    CB_CMD_SASL_AUTH = 0x21, CB_CMD_SASL_STEP = 0x22,
    CB_CMD_GET_REPLICA = 0x83, CB_CMD_SELECT_BUCKET = 0x89,
    CB_CMD_OBSERVE_SEQNO = 0x91, CB_CMD_OBSERVE = 0x92,
    CB_CMD_GET_LOCKED = 0x94, CB_CMD_UNLOCK_KEY = 0x95,
    CB_CMD_GET_CLUSTER_CONFIG = 0xb5, CB_CMD_SUBDOC_MULTI_LOOKUP = 0xd0,
    CB_CMD_SUBDOC_MULTI_MUTATION = 0xd1, CB_CMD_GET_ERROR_MAP = 0xfe
};

/* A request to encode.  Pointers are borrowed. */
typedef struct cb_req {
    uint8_t opcode;
    uint8_t datatype;
    uint16_t vbucket;
    uint32_t opaque;
    uint64_t cas;
    const char *ext;   /* extras */
    uint8_t next;
    const char *key;
    uint16_t nkey;
    const char *value;
    uint32_t nvalue;
} cb_req;

/* A decoded response.  Pointers point into the decoded buffer. */
typedef struct cb_resp {
    uint8_t magic;
    uint8_t opcode;
    uint8_t datatype;
    uint8_t next;
    uint8_t nframe;    /* framing extras length (magic 0x18) */
    uint16_t nkey;
    uint16_t status;
    uint32_t bodylen;
    uint32_t opaque;
    uint64_t cas;
    const char *ext;
    const char *key;
    const char *value;
    uint32_t nvalue;
} cb_resp;

/* Append one request packet to `out`.  Returns 0, or -1 on allocation
   failure (out unchanged). */
int cb_encode(cb_buf *out, const cb_req *r);

/* Extras builders: write into `ext`, return the extras length. */
uint8_t cb_ext_store(char ext[8], uint32_t flags, uint32_t exptime);
uint8_t cb_ext_counter(char ext[20], uint64_t delta, uint64_t initial,
                       uint32_t exptime);
uint8_t cb_ext_exptime(char ext[4], uint32_t exptime);

/* Decode result codes. */
enum { CB_DECODE_NEED_MORE = 0, CB_DECODE_BAD = -1 };

/*
 * Validate the header at p (n >= 24 bytes available) without looking at the
 * body: magic must be 0x81 or 0x18, framing + extras + key must fit in the
 * body, and the body must not exceed max_body.  Returns 0 and fills the
 * header fields of r, or CB_DECODE_BAD with *why set to a static reason.
 */
int cb_decode_header(const char *p, cb_resp *r, uint32_t max_body,
                     const char **why);

/*
 * Decode one whole response from p[0..n).  Returns the packet size (> 0)
 * and fills r (pointers into p), CB_DECODE_NEED_MORE if the packet is not
 * complete yet (nothing is allocated for it), or CB_DECODE_BAD with *why.
 */
ssize_t cb_decode(const char *p, size_t n, cb_resp *r, uint32_t max_body,
                  const char **why);

/* Quiet form of a GET-family opcode and back; other opcodes unchanged. */
uint8_t cb_quiet_of(uint8_t opcode);
uint8_t cb_loud_of(uint8_t opcode);

#endif
