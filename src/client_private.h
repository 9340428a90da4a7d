/*
 * client_private.h - the structures behind cbffi_client, shared by client.c
 * (scheduling, results), conn.c (sockets, pipelining) and io.c (host loop
 * interface, built-in loop).
 *
 * Ownership:
 *   cbffi_client owns its conns array, the connection string, the op pool
 *   (every cb_op), the result queue and its data arena, and the watch-change
 *   queue.
 *   cb_conn owns its socket, its write buffer (encoded packets), its read
 *   buffer, its resolved address list and its op queue (references to ops,
 *   each holding one op reference).
 *   cb_op is reference counted: the pending state (not yet completed) holds
 *   one reference, each conn queue slot holding it one, and each child of a
 *   broadcast op one on its parent.  It returns to the pool at zero.
 */
#ifndef CBFFI_CLIENT_PRIVATE_H
#define CBFFI_CLIENT_PRIVATE_H

#include <stdint.h>
#include <stddef.h>

#include "buf.h"
#include "cbffi.h"
#include "codec.h"
#include "connstr.h"
#include "ketama.h"

struct addrinfo;
typedef struct cb_op cb_op;
typedef struct cb_conn cb_conn;

struct cb_op {
    uint64_t cookie;
    uint64_t deadline;      /* monotonic microseconds */
    cb_op *pnext, *pprev;   /* client pending list (top-level ops only) */
    cb_op *parent;          /* broadcast parent, for children */
    cb_op *wnext;           /* conn connect-waiter list */
    uint32_t opaque;
    int32_t first_rc;       /* parent: first error seen */
    uint32_t refs;
    uint16_t remaining;     /* parent: children not finished */
    uint8_t op;             /* cbffi_op */
    uint8_t cmd;            /* wire opcode as sent */
    uint8_t done;           /* result produced (or parent aggregated) */
    uint8_t quiet;          /* sent as a quiet get: silence means a miss */
    uint8_t any_ok;         /* parent: some child succeeded */
    int16_t server;
};

/* A FIFO of op references, in the order their packets were queued. */
typedef struct cb_opq {
    cb_op **items;
    size_t head, count, cap;
} cb_opq;

typedef enum {
    CB_CONN_IDLE = 0,       /* no socket */
    CB_CONN_CONNECTING = 1,
    CB_CONN_CONNECTED = 2
} cb_conn_state;

struct cb_conn {
    cbffi_client *client;
    int index;
    char *host;
    char port[8];
    char name[280];         /* "host:port" */
    int fd;
    cb_conn_state state;
    uint64_t connect_deadline;
    uint64_t last_read;     /* monotonic us of the last bytes received */
    struct addrinfo *ai, *ai_next;
    cb_buf wbuf;            /* encoded packets; [off, len) not yet sent */
    cb_buf rbuf;            /* received bytes not yet decoded */
    cb_opq queue;           /* ops whose packets are in wbuf or on the wire */
    cb_op *waiters;         /* CONNECT children waiting for this conn */
    cb_op *tail_quiet;      /* last queued packet if it is a quiet get */
    size_t tail_off;        /* its offset in wbuf */
    uint32_t next_opaque;
    uint32_t watched;       /* events the host was last told */
    uint64_t rcvtimeo;      /* SO_RCVTIMEO in force (us), 0 = none */
    uint8_t dirty;          /* in the client's flush list */
    cb_conn *dnext;
};

/* A finished result waiting to be harvested: key/value are offsets into
   the client's result arena until harvest turns them into pointers. */
typedef struct cb_result_rec {
    cbffi_result r;
    size_t koff, voff;
} cb_result_rec;

typedef struct cb_op_chunk {
    struct cb_op_chunk *next;
    cb_op ops[128];
} cb_op_chunk;

struct cbffi_client {
    cb_connstr cs;
    cbffi_client_type type;
    cb_conn *conns;
    int nconns;
    cb_ketama ketama;
    uint64_t op_timeout;       /* us */
    uint64_t connect_timeout;  /* us */
    uint32_t max_body;         /* response body cap */
    size_t max_value;          /* request value cap */

    cb_op pending;             /* sentinel of the pending list */
    size_t npending;
    uint64_t next_deadline;    /* no pending deadline is earlier */
    uint64_t batch_now;        /* != 0: the clock for the ops of one batch
                                  call (cbffi_get_multi...): one read, not one
                                  per op */

    cb_op *free_ops;
    cb_op_chunk *chunks;

    cb_result_rec *res;        /* ready results: [res_head, res_len) */
    size_t res_head, res_len, res_cap;
    cb_buf rdata;              /* key/value bytes of results */

    cbffi_watch *changes;      /* watch-set changes not yet read */
    size_t nchanges, changes_cap;

    cb_conn *dirty;            /* conns with something to send or connect */

    /* the built-in loop's view of the watch set */
    struct pollfd *pfds;
    size_t npfds, pfds_cap;

    char last_error[256];
};

/* ---- time ----------------------------------------------------------------- */
uint64_t cb_now(void);

/* ---- client.c: ops and results -------------------------------------------- */
cb_op *cb_op_new(cbffi_client *c, int op, uint64_t cookie);
void cb_op_unref(cbffi_client *c, cb_op *op);
/* Complete a top-level op with a single final result. */
void cb_op_fail(cbffi_client *c, cb_op *op, int rc, int server);
/* Finish one child of a broadcast op. */
void cb_child_finish(cbffi_client *c, cb_op *child, int rc);
/* Queue a result; key/value are copied into the arena.  Returns the record
   or NULL when out of memory (the result is then reduced to an rc). */
cb_result_rec *cb_result_push(cbffi_client *c, const cbffi_result *r,
                              const char *key, size_t nkey,
                              const char *value, size_t nvalue);
/* Drop the result queue and arena once every result has been harvested. */
void cb_release_harvested(cbffi_client *c);
void cb_set_error(cbffi_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Handle a decoded response for `op` (the matching queue head). Returns 1
   if the op stays at the head of the queue (more packets expected). */
int cb_handle_response(cbffi_client *c, cb_conn *conn, cb_op *op,
                       const cb_resp *r);
/* Resolve a quiet op that got no answer before a later one. */
void cb_handle_silence(cbffi_client *c, cb_conn *conn, cb_op *op);
void cb_expire(cbffi_client *c, uint64_t now);

/* ---- conn.c: sockets and pipelining --------------------------------------- */
int cb_conn_init(cb_conn *conn, cbffi_client *c, int index,
                 const cb_hostport *hp);
void cb_conn_destroy(cb_conn *conn);
int cb_opq_push(cb_opq *q, cb_op *op);
/* Queue an encoded request for op on conn (appends to wbuf). */
int cb_conn_enqueue(cb_conn *conn, cb_op *op, cb_req *req);
void cb_conn_mark_dirty(cb_conn *conn);
/* Send queued bytes / start connecting, as far as possible without
   blocking. */
void cb_conn_flush(cb_conn *conn);
/* The socket became ready for `events`. */
void cb_conn_on_event(cb_conn *conn, uint32_t events);
/* Read once, blocking up to `timeout_us` (the sync fast path). */
void cb_conn_read_blocking(cb_conn *conn, uint64_t timeout_us);
/* Close the socket and end every op queued on it with rc. */
void cb_conn_fail(cb_conn *conn, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Wait for the connection: CONNECT child ops. */
void cb_conn_add_waiter(cb_conn *conn, cb_op *child);
/* Events this conn wants from the host loop. */
uint32_t cb_conn_wanted(const cb_conn *conn);
void cb_conn_update_watch(cb_conn *conn);
/* Whether conn has packets answered-but-not-yet or unsent. */
static inline int cb_conn_busy(const cb_conn *conn)
{
    return conn->queue.count > 0 || conn->waiters != NULL;
}

#endif
