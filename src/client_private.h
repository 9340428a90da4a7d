/*
 * client_private.h - the structures behind cbffi_client, shared by client.c
 * (scheduling, results), conn.c (sockets, pipelining), negotiate.c (the
 * per-connection handshake), cluster.c (couchbase:// bootstrap, cluster map,
 * routing, retries), durability.c (observe, endure) and io.c (host loop
 * interface, built-in loop).
 *
 * Ownership:
 *   cbffi_client owns its conns array and every cb_conn in it (heap objects,
 *   so that a config change can reorder them without moving them), the
 *   bootstrap conn (seed), retired conns waiting to be freed (graveyard), the
 *   connection string, the current cluster map, its TLS context (tls, see
 *   tls.h), the op pool (every cb_op),
 *   the result queue and its data arena, the watch-change queue, and its
 *   reference on the background-job eventfd (bg, shared with the job
 *   threads still running, see bg.h).
 *   cb_conn owns its host and name strings, its socket, its host name
 *   lookup job (lookup), its write buffers (handshake packets in hbuf,
 *   operation packets in wbuf), its read buffer, its resolved address list,
 *   its handshake state (nego, which owns its key-derivation job), its TLS
 *   session (tls, see tls.h) and its op queue (references to ops, each
 *   holding one op reference).
 *   cb_op is reference counted: the pending state (not yet completed) holds
 *   one reference, each conn queue slot holding it one, the retry and
 *   wait-for-config lists one each, and each child of a parent op one on
 *   its parent.  It returns to the pool at zero, releasing what it owns: its
 *   kept packet (pkt, couchbase:// only, for retries) and its durability
 *   state (dur).
 */
#ifndef CBFFI_CLIENT_PRIVATE_H
#define CBFFI_CLIENT_PRIVATE_H

#include <stdint.h>
#include <stddef.h>

#include "buf.h"
#include "cbffi.h"
#include "clustermap.h"
#include "codec.h"
#include "connstr.h"
#include "ketama.h"

struct addrinfo;
typedef struct cb_bg cb_bg;
typedef struct cb_job cb_job;
typedef struct cb_op cb_op;
typedef struct cb_conn cb_conn;
typedef struct cb_nego cb_nego;
typedef struct cb_dur cb_dur;
typedef struct cb_http cb_http;
typedef struct cb_tls cb_tls;
typedef struct cb_tls_ctx cb_tls_ctx;
/* cbffi_stream (stream.c) is declared in cbffi.h */

/* Internal op kinds (never reported in a cbffi_result). */
enum {
    CB_OP_CONFIG = 100,     /* GET_CLUSTER_CONFIG refresh */
    CB_OP_PROBE = 101       /* one OBSERVE of an endure round */
};

/* How a couchbase:// op picks its server from the key's vbucket chain. */
enum {
    CB_ROUTE_CHAIN = 0,     /* vbucket chain entry `replica` (0 = active) */
    CB_ROUTE_FIXED = 1      /* the server index in `server` */
};

struct cb_op {
    uint64_t cookie;
    uint64_t deadline;      /* monotonic microseconds */
    uint64_t retry_at;      /* when on the retry list */
    uint64_t wpos;          /* stream offset of its packet on its conn */
    cb_op *pnext, *pprev;   /* client pending list (top-level ops only) */
    cb_op *parent;          /* parent (broadcast / observe / endure), for children */
    cb_op *wnext;           /* conn connect-waiter list */
    cb_op *rnext;           /* retry list / wait-for-config list */
    cb_buf pkt;             /* couchbase://: the encoded request, kept */
    cb_dur *dur;            /* durability requirements and round state */
    cbffi_stream *stream;   /* QUERY / VIEW in streaming mode: where its rows
                               and its final result go (stream.c), until the
                               stream lets go of it */
    uint32_t opaque;
    int32_t first_rc;       /* parent: first error seen */
    int32_t last_rc;        /* a retried temporary failure: reported at the
                               deadline instead of a plain timeout */
    uint32_t refs;
    uint32_t stat_bytes;    /* STAT child: bytes queued for its reply so far */
    uint16_t remaining;     /* parent: children not finished */
    uint16_t vb;            /* vbucket of the key (couchbase://) */
    uint8_t op;             /* cbffi_op or CB_OP_* */
    uint8_t cmd;            /* wire opcode as sent */
    uint8_t done;           /* result produced (or parent aggregated) */
    uint8_t quiet;          /* sent as a quiet get: silence means a miss */
    uint8_t any_ok;         /* parent: some child succeeded */
    uint8_t internal;       /* produces no result, not on the pending list */
    uint8_t route;          /* CB_ROUTE_* */
    uint8_t replica;        /* chain index (CB_ROUTE_CHAIN) */
    uint8_t replica_any;    /* GET_REPLICA: try the next replica on failure */
    uint8_t retries;        /* temporary-failure retries so far */
    uint8_t vb_header;      /* write vb into the header (not for OBSERVE) */
    uint8_t dur_wait;       /* on the retry list for its next OBSERVE round */
    uint8_t await_refresh;  /* on the retry list until a config refresh ends */
    uint8_t nspecs;         /* LOOKUP_IN / MUTATE_IN: the request's spec count */
    uint8_t streaming;      /* a stream's request: counted in nstreaming while
                               pending */
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
    CB_CONN_NEGOTIATING = 2,/* connected; HELLO / SASL / SELECT_BUCKET */
    CB_CONN_CONNECTED = 3   /* ready for operations */
} cb_conn_state;

struct cb_conn {
    cbffi_client *client;
    int index;              /* in client->conns; -1 for the seed */
    char *host;
    char port[8];
    char *name;             /* "host:port" ("[v6]:port"), the map's authority
                               form: compared with it whole, never cut */
    int fd;
    cb_conn_state state;
    uint64_t connect_deadline;  /* covers connect and handshake */
    uint64_t last_read;     /* monotonic us of the last bytes received */
    struct addrinfo *ai, *ai_next;
    cb_job *lookup;         /* host name lookup running (bg.c), or NULL; kept
                               when an attempt gives up, for the next one */
    uint8_t resolving;      /* CONNECTING, waiting for lookup (fd < 0) */
    cb_buf hbuf;            /* handshake packets not yet sent */
    cb_buf wbuf;            /* encoded packets; [off, len) not yet sent */
    cb_buf rbuf;            /* received bytes not yet decoded */
    uint64_t wqueued;       /* bytes ever appended to wbuf (this socket) */
    uint64_t wsent;         /* bytes of wbuf ever sent (this socket) */
    cb_opq queue;           /* ops whose packets are in wbuf or on the wire */
    cb_op *waiters;         /* CONNECT children waiting for this conn */
    cb_op *tail_quiet;      /* last queued packet if it is a quiet get */
    size_t tail_off;        /* its offset in wbuf */
    cb_nego *nego;          /* handshake in progress, NULL otherwise */
    cb_tls *tls;            /* TLS session (tls.c), NULL on plain conns */
    uint32_t tls_want;      /* TLS: events OpenSSL waits for beyond the
                               plain ones (the handshake's; WRITE for a
                               read that must write first); 0 on plain */
    uint32_t next_opaque;
    uint32_t watched;       /* events the host was last told */
    uint64_t rcvtimeo;      /* SO_RCVTIMEO in force (us), 0 = none */
    uint8_t dirty;          /* in the client's flush list */
    uint8_t negotiate;      /* run the handshake after connecting */
    uint8_t fetch_config;   /* the handshake ends with GET_CLUSTER_CONFIG */
    uint8_t was_ready;      /* reached CB_CONN_CONNECTED on this socket */
    uint8_t xerror;         /* HELLO accepted XERROR */
    uint8_t push;           /* HELLO accepted DUPLEX and
                               CLUSTERMAP_CHANGE_NOTIFICATION */
    uint8_t retired;        /* left the cluster; in the graveyard */
    uint8_t tls_hs;         /* TCP up, TLS handshake running (CONNECTING) */
    uint8_t tls_wr;         /* TLS: a write waits for readability */
    cb_conn *dnext;         /* flush list */
    cb_conn *gnext;         /* graveyard */
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
    cb_conn **conns;
    int nconns;
    cb_ketama ketama;
    uint64_t op_timeout;       /* us */
    uint64_t connect_timeout;  /* us */
    uint64_t bootstrap_timeout;/* us, config_total_timeout */
    uint64_t dur_timeout;      /* us */
    uint64_t dur_interval;     /* us */
    uint64_t http_timeout;     /* us, REST requests that are operations */
    uint64_t query_timeout;    /* us, N1QL requests (query.c) */
    size_t http_max_response;  /* bytes: a service response's cap (query.c) */
    uint32_t query_rr;         /* round-robin over the query nodes */
    uint64_t view_timeout;     /* us, view / design-document requests (views.c) */
    uint32_t view_rr;          /* round-robin over the capi nodes */
    uint32_t max_body;         /* response body cap */
    size_t max_value;          /* request value cap */
    char *username;            /* couchbase://: SASL user (bucket name if none) */
    char *password;            /* "" if none */

    /* couchbase:// state */
    cb_clustermap map;         /* current config; map.nservers == nconns */
    int have_map;
    cb_conn *seed;             /* the bootstrap conn, not in conns */
    size_t seed_next;          /* next connection-string host to try */
    int seed_rc;               /* why the bootstrap failed, so far */
    char seed_err[256];        /* and the message that said so */
    cb_op *bootstrap;          /* CONNECT op waiting for the first config */
    cb_op *waitq, *waitq_tail; /* ops waiting for a config or a server */
    cb_op *retryq;             /* ops waiting for retry_at */
    uint64_t next_retry;       /* no retry is due earlier */
    uint64_t last_refresh;     /* when a config refresh was last sent */
    int refresh_rr;            /* round-robin over conns for refreshes */
    int refresh_wanted;        /* a refresh was asked for too soon */
    uint64_t poll_interval;    /* us between config polls, 0 = none
                                  (config_poll_interval) */
    uint64_t next_poll;        /* when the next poll is due (0: not yet
                                  scheduled: no map) */
    cb_conn *graveyard;        /* retired conns, freed at the next io call */
    cb_http *http;             /* REST bootstrap (libcurl), NULL until used */
    cb_bg *bg;                 /* background jobs' eventfd (bg.c), NULL until
                                  the first job */
    cb_tls_ctx *tls;           /* TLS settings (tls.c), NULL without TLS */
    uint8_t tls_more;          /* a TLS conn holds bytes no event announces:
                                  the deadline is 0 until a tick reads them */
    unsigned njobs;            /* jobs started and not released */

    cb_op pending;             /* sentinel of the pending list */
    size_t npending;
    size_t nstreaming;         /* of them, streams' requests (stream.c): not
                                  waited for by cbffi_wait */
    cbffi_stream *streams;     /* every open stream (stream.c) */
    unsigned nresume;          /* streams to resume at the next IO call */
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
/* Put a top-level op on the pending list with a deadline `timeout` us away. */
void cb_pending_add(cbffi_client *c, cb_op *op, uint64_t timeout);
/* Complete a top-level op with a single final result (a stream's request:
   the stream's final result). */
void cb_op_fail(cbffi_client *c, cb_op *op, int rc, int server);
/* End a top-level op without any result (its stream was closed). */
void cb_op_drop(cbffi_client *c, cb_op *op);
/* Complete a top-level op with a result built from r (value, cas...). */
void cb_op_complete(cbffi_client *c, cb_op *op, const cbffi_result *r,
                    const char *value, size_t nvalue);
/* Finish one child of a parent op. */
void cb_child_finish(cbffi_client *c, cb_op *child, int rc);
/* Count one finished child of parent p; the last one completes p. */
void cb_parent_account(cbffi_client *c, cb_op *p, int rc);
/* Queue a result; key/value are copied into the arena.  Returns the record
   or NULL when out of memory (the result is then reduced to an rc). */
cb_result_rec *cb_result_push(cbffi_client *c, const cbffi_result *r,
                              const char *key, size_t nkey,
                              const char *value, size_t nvalue);
/* Drop the result queue and arena once every result has been harvested. */
void cb_release_harvested(cbffi_client *c);
void cb_set_error(cbffi_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Handle a decoded response for `op`, the head of conn's queue.  Returns 1
   if the op stays at the head (more packets expected), 0 when it was popped
   and handled, -1 if the connection failed. */
int cb_handle_response(cbffi_client *c, cb_conn *conn, cb_op *op,
                       const cb_resp *r);
/* Resolve a quiet op that got no answer before a later one. */
void cb_handle_silence(cbffi_client *c, cb_conn *conn, cb_op *op);
void cb_expire(cbffi_client *c, uint64_t now);
int cb_is_mutation(int op);
/* couchbase://: encode req into op's kept packet, make op pending and route
   it (CBFFI_OK, or CBFFI_CLIENT_ENOMEM with op released). */
int cb_sched_cluster(cbffi_client *c, cb_op *op, cb_req *req);

/* ---- subdoc.c: sub-document replies ---------------------------------------- */
/* 0 if a LOOKUP_IN / MUTATE_IN reply with rc has a body fit for the op's
   spec count (or is a document-level answer), -1 if it is malformed. */
int cb_subdoc_reply(const cb_op *op, const cb_resp *r, int rc);
/* A key must be 1..250 bytes: CBFFI_OK, CBFFI_EMPTY_KEY or CBFFI_EINVAL
   (with the client's last error set). */
int cb_check_key(cbffi_client *c, const char *key, size_t nkey);

/* ---- conn.c: sockets and pipelining --------------------------------------- */
/* Bytes one readiness event (or one sync read) reads at most, give or take
   one recv(): then back to the loop, the socket still readable. */
enum { CB_READ_BUDGET = 256 * 1024 };
/* A new idle conn for host:port (heap; free with cb_conn_free). */
cb_conn *cb_conn_new(cbffi_client *c, int index, const char *host,
                     uint16_t port, int ipv6);
void cb_conn_free(cb_conn *conn);
int cb_opq_push(cb_opq *q, cb_op *op);
/* Queue an encoded request for op on conn (appends to wbuf). */
int cb_conn_enqueue(cb_conn *conn, cb_op *op, cb_req *req);
/* Queue op's kept packet (op->pkt) on conn, patching opaque and vbucket. */
int cb_conn_enqueue_pkt(cb_conn *conn, cb_op *op);
void cb_conn_mark_dirty(cb_conn *conn);
/* Send queued bytes / start connecting, as far as possible without
   blocking. */
void cb_conn_flush(cb_conn *conn);
/* The socket became ready for `events`. */
void cb_conn_on_event(cb_conn *conn, uint32_t events);
/* Read once, blocking up to `timeout_us` (the sync fast path). */
void cb_conn_read_blocking(cb_conn *conn, uint64_t timeout_us);
/* Close the socket and end (or hand back for retry) every op queued on it. */
void cb_conn_fail(cb_conn *conn, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Close the socket without touching the queue (the caller empties it). */
void cb_conn_close(cb_conn *conn);
/* Hand conn's finished background jobs (lookup, key derivation) on. */
void cb_conn_jobs(cb_conn *conn);
/* Wait for the connection: CONNECT child ops. */
void cb_conn_add_waiter(cb_conn *conn, cb_op *child);
/* Events this conn wants from the host loop. */
uint32_t cb_conn_wanted(const cb_conn *conn);
void cb_conn_update_watch(cb_conn *conn);
/* Report a watch-set change for fd to the host (coalesced per fd). */
int cb_watch_push(cbffi_client *c, int fd, uint32_t events);
/* Append a handshake packet (sent before anything in wbuf). */
int cb_conn_send_handshake(cb_conn *conn, const cb_req *req);
/* The handshake finished: the conn is ready; send what waited. */
void cb_conn_ready(cb_conn *conn);
/* Remove conn from the client's flush list. */
void cb_conn_undirty(cb_conn *conn);
/* Whether conn has packets answered-but-not-yet or unsent. */
static inline int cb_conn_busy(const cb_conn *conn)
{
    return conn->queue.count > 0 || conn->waiters != NULL;
}

/* ---- negotiate.c: HELLO, SASL, SELECT_BUCKET, GET_CLUSTER_CONFIG ---------- */
/* Start the handshake on a freshly connected conn (queues HELLO ...). */
void cb_nego_start(cb_conn *conn);
/* A response arrived while negotiating.  Returns 0, or -1 if the conn
   failed. */
int cb_nego_response(cb_conn *conn, const cb_resp *r);
void cb_nego_free(cb_conn *conn);
/* The handshake's key derivation finished (bg.c): go on. */
void cb_nego_jobs(cb_conn *conn);

/* ---- cluster.c: couchbase:// ---------------------------------------------- */
int cb_cluster_setup(cbffi_client *c);
void cb_cluster_destroy(cbffi_client *c);
/* CONNECT for couchbase://. */
int cb_cluster_connect(cbffi_client *c, uint64_t cookie);
/* Route op (kept packet) to its server and queue it; ops that cannot be
   routed now wait for a config (and fail at their deadline). */
void cb_cluster_dispatch(cbffi_client *c, cb_op *op);
/* Put op on the retry list, to be dispatched again at `when`. */
void cb_cluster_retry_at(cbffi_client *c, cb_op *op, uint64_t when);
/* Apply a config (JSON) received from `host`.  Returns 1 if it was newer
   and applied, 0 if not, -1 if malformed. */
int cb_cluster_apply_json(cbffi_client *c, const char *json, size_t n,
                          const char *host);
/* Ask for a fresh config (rate-limited). */
void cb_cluster_refresh(cbffi_client *c, const cb_conn *avoid);
/* A config refresh ended (answered or failed): release the ops that
   waited for it. */
void cb_cluster_refresh_done(cbffi_client *c);
/* A couchbase:// response that is not a final answer (NOT_MY_VBUCKET,
   temporary failures, replica fall-through).  op is already popped from
   conn's queue.  Returns 1 if it took the op over (retry), else 0. */
int cb_cluster_on_status(cbffi_client *c, cb_conn *conn, cb_op *op,
                         const cb_resp *r);
/* conn failed with rc; op was queued on it: retry or fail it. */
void cb_cluster_on_conn_lost(cbffi_client *c, cb_conn *conn, cb_op *op,
                             int rc, int sent);
/* The seed conn delivered the map: close it unless it was adopted. */
void cb_cluster_seed_done(cbffi_client *c, cb_conn *conn);
/* The seed conn failed: try the next host or fail the bootstrap. */
void cb_cluster_seed_failed(cbffi_client *c, int rc);
/* Run due retries; returns the time of the next one (UINT64_MAX if none). */
void cb_cluster_run_retries(cbffi_client *c, uint64_t now);
/* A server request (magic 0x82) arrived on conn: a config change
   notification is applied (or fetched, when brief) if newer; anything else
   is ignored.  Never replies.  conn may fail (a map that retires it). */
void cb_cluster_server_request(cb_conn *conn, const cb_resp *r);
/* config_poll_interval: 0 disables, otherwise at least 50 ms
   (CBFFI_EINVAL). */
int cb_cluster_set_poll(cbffi_client *c, uint64_t usec);
/* Free retired conns. */
void cb_cluster_bury(cbffi_client *c);
/* Earliest retry or connect deadline. */
uint64_t cb_cluster_next_timer(cbffi_client *c);

/* ---- http.c: REST bootstrap over libcurl ------------------------------------ */
/* GET /pools/default/b/<bucket> from host:port; the outcome goes to
   cb_cluster_apply_json or cb_cluster_seed_failed. */
int cb_http_start(cbffi_client *c, const char *host, int ipv6, uint16_t port);
/* Couchbase buckets: POST .../controller/doFlush (one CBFFI_OP_FLUSH
   result). */
int cb_http_flush(cbffi_client *c, uint64_t cookie);
int cb_http_active(const cbffi_client *c);
int cb_http_bootstrapping(const cbffi_client *c);
int cb_http_owns_fd(const cbffi_client *c, int fd);
/* libcurl has sockets to watch now (a paused transfer has none: it waits for
   its resume or its timer only, both in cbffi_io_deadline). */
int cb_http_watching(const cbffi_client *c);
uint64_t cb_http_timer(const cbffi_client *c);
void cb_http_on_event(cbffi_client *c, int fd, uint32_t events);
void cb_http_tick(cbffi_client *c, uint64_t now);
void cb_http_free(cbffi_client *c);
/* A request to a cluster service that is an operation: POST body (copied)
   to url with content type ctype and Basic auth, within timeout_us; the
   response (at most max_bytes) completes op with rc, the HTTP status and
   the body (the request holds one op reference).  host is the node's, for
   messages.  Returns CBFFI_OK or CBFFI_CLIENT_ENOMEM (op untouched). */
int cb_http_service(cbffi_client *c, cb_op *op, const char *url,
                    const char *host, const char *body, size_t nbody,
                    const char *ctype, uint64_t timeout_us, size_t max_bytes);
/* The same with `method` "GET", "POST", "PUT" or "DELETE" (GET and DELETE
   send no body: body/nbody/ctype are ignored).  For views.c. */
int cb_http_service_method(cbffi_client *c, cb_op *op, const char *method,
                           const char *url, const char *host, const char *body,
                           size_t nbody, const char *ctype, uint64_t timeout_us,
                           size_t max_bytes);
/* Service requests (N1QL, views) in flight (their own limit). */
int cb_http_service_count(const cbffi_client *c);
/* A stream was closed: end op's request, if it runs (dropping its op
   reference). */
void cb_http_cancel(cbffi_client *c, cb_op *op);
/* Unpause op's transfer (stream.c's backpressure).  Not from inside a
   harvest: libcurl may hand the held-back chunk over before returning. */
void cb_http_resume(cbffi_client *c, cb_op *op);

/* ---- stream.c: N1QL / view rows as they arrive ------------------------------ */
/* What cb_stream_body did with a chunk (http.c tells libcurl). */
enum { CB_STREAM_TOOK = 0, CB_STREAM_PAUSE = 1, CB_STREAM_ABORT = 2 };
/* A new stream for a CBFFI_OP_QUERY ("results") or CBFFI_OP_VIEW ("rows")
   request, on the client's list; NULL when out of memory. */
cbffi_stream *cb_stream_new(cbffi_client *c, int op, uint64_t cookie);
/* The two ends of cbffi_query_stream / cbffi_view_stream (`fn` names the
   caller in the error).  begin: *out = NULL and a new stream, or NULL with
   *rc = CBFFI_EINVAL (out is NULL) / CBFFI_CLIENT_ENOMEM.  finish: rc is
   the scheduling of the stream's request; on failure the stream (which has
   no request) is freed, else it goes to *out.  Returns rc. */
cbffi_stream *cb_stream_begin(cbffi_client *c, int op, uint64_t cookie,
                              cbffi_stream **out, const char *fn, int *rc);
int cb_stream_finish(cbffi_client *c, cbffi_stream *s, int rc, cbffi_stream **out);
/* op (pending) becomes s's request: results go to s; s holds a reference. */
void cb_stream_attach(cbffi_client *c, cbffi_stream *s, cb_op *op);
/* Body bytes of s's response with HTTP status `status`: split (2xx; meta
   into `meta`, the request's body buffer) or kept whole in `meta` (at most
   max_bytes).  CB_STREAM_TOOK, _PAUSE (no room: deliver it again later) or
   _ABORT (bad body, too large, out of memory: cb_stream_verdict says). */
int cb_stream_body(cbffi_stream *s, cb_buf *meta, const char *p, size_t n,
                   long status, size_t max_bytes);
/* The transfer ended with rc (service_rc's); whole: all of it arrived.
   Returns the rc for the final result: the splitter's verdict when it
   failed or the body was cut short (the client's last error says why). */
int cb_stream_verdict(cbffi_client *c, cbffi_stream *s, const char *host,
                      int rc, int whole);
/* The final result of op (a stream's request), from cb_op_fail /
   cb_op_complete; the stream lets go of op. */
void cb_stream_end(cbffi_client *c, cb_op *op, const cbffi_result *r,
                   const char *value, size_t nvalue);
/* At the start of every IO call: resume the paused transfers that have
   room again. */
void cb_streams_service(cbffi_client *c);
/* Whether s's final result has been harvested (nothing more will come). */
int cb_stream_over(const cbffi_stream *s);
/* cbffi_client_destroy: free every stream left. */
void cb_streams_free(cbffi_client *c);

/* ---- query.c: N1QL ----------------------------------------------------------- */
/* A CBFFI_OP_QUERY op (body in op->pkt) once a map is known: pick a query
   node and start its HTTP request, or fail it. */
void cb_query_dispatch(cbffi_client *c, cb_op *op);

/* ---- views.c: views and design documents (capi) -------------------------------- */
/* A CBFFI_OP_VIEW op (path '\0' body in op->pkt, method in op->cmd) once a
   map is known: pick a capi node and start its HTTP request, or fail it. */
void cb_view_dispatch(cbffi_client *c, cb_op *op);

/* ---- durability.c: OBSERVE and endure -------------------------------------- */
/* An endure probe or observe child answered. */
int cb_observe_response(cbffi_client *c, cb_conn *conn, cb_op *op,
                        const cb_resp *r);
/* Give a mutation op durability requirements (checked by the caller). */
int cb_dur_attach(cbffi_client *c, cb_op *op, const char *key, size_t nkey,
                  int persist_to, int replicate_to, int check_removed);
/* Check persist_to / replicate_to against the bucket's replicas. */
int cb_dur_check(cbffi_client *c, int persist_to, int replicate_to);
/* A mutation with durability requirements succeeded: start polling. */
void cb_dur_start(cbffi_client *c, cb_op *op, uint64_t cas);
/* A round's probe finished with rc (no reply). */
void cb_dur_probe_failed(cbffi_client *c, cb_op *probe, int rc);
/* Start the next round of an op waiting on the retry list. */
void cb_dur_next_round(cbffi_client *c, cb_op *op);
void cb_dur_free(cb_dur *d);
/* Keep the mutation reply's value for the final result (MUTATE_IN counters). */
int cb_dur_keep_value(cb_op *op, const char *value, size_t n);
/* Keep the mutation's token (vbuuid, seqno) for the final result. */
void cb_dur_keep_token(cb_op *op, uint64_t vbuuid, uint64_t seqno);

#endif
