/*
 * client.c - the client: creation, routing, scheduling, per-operation
 * timeouts, turning responses into results, and harvesting.
 */
#include "client_private.h"
#include "errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    DEFAULT_OP_TIMEOUT = 2500000,      /* 2.5 s */
    DEFAULT_CONNECT_TIMEOUT = 2000000, /* 2 s */
    MAX_VALUE = 20 * 1024 * 1024,
    MAX_BODY = 64 * 1024 * 1024
};

uint64_t cb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void cb_set_error(cbffi_client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->last_error, sizeof(c->last_error), fmt, ap);
    va_end(ap);
}

/* ---- creation ------------------------------------------------------------- */

static void write_err(char *errbuf, size_t n, const char *msg)
{
    if (errbuf && n)
        snprintf(errbuf, n, "%s", msg);
}

static int build_routing(cbffi_client *c)
{
    if (c->nconns < 2)
        return 0;
    const char **names = calloc((size_t)c->nconns, sizeof(*names));
    char (*auth)[300] = calloc((size_t)c->nconns, sizeof(*auth));
    int rc = -1;
    if (names && auth) {
        for (int i = 0; i < c->nconns; i++) {
            const cb_hostport *h = &c->cs.hosts[i];
            cb_ketama_authority(auth[i], sizeof(auth[i]), h->host, h->ipv6,
                                h->port, 1);
            names[i] = auth[i];
        }
        rc = cb_ketama_build(&c->ketama, names, (size_t)c->nconns);
    }
    free(names);
    free(auth);
    return rc;
}

static int setup(cbffi_client *c, const char *connstr, const char *user,
                 const char *pass, char *errbuf, size_t nerr)
{
    int rc = cb_connstr_parse(connstr, &c->cs, errbuf, nerr);
    if (rc != CBFFI_OK)
        return rc;
    if (c->cs.scheme != CB_SCHEME_MEMCACHED) {
        write_err(errbuf, nerr,
                  "couchbase:// and http:// bootstrap are not available in "
                  "this build; use memcached://");
        return CBFFI_NOT_SUPPORTED;
    }
    (void)user;
    (void)pass;
    c->type = CBFFI_TYPE_MEMCACHED;
    if (c->cs.operation_timeout_us)
        c->op_timeout = c->cs.operation_timeout_us;
    if (c->cs.connect_timeout_us)
        c->connect_timeout = c->cs.connect_timeout_us;
    c->conns = calloc(c->cs.nhosts, sizeof(*c->conns));
    if (!c->conns)
        return CBFFI_CLIENT_ENOMEM;
    for (size_t i = 0; i < c->cs.nhosts; i++) {
        if (cb_conn_init(&c->conns[i], c, (int)i, &c->cs.hosts[i]) != 0)
            return CBFFI_CLIENT_ENOMEM;
        c->nconns++;
    }
    if (build_routing(c) != 0)
        return CBFFI_CLIENT_ENOMEM;
    return CBFFI_OK;
}

int cbffi_client_create(cbffi_client **out, const char *connstr,
                        const char *username, const char *password,
                        char *errbuf, size_t nerrbuf)
{
    if (!out) {
        write_err(errbuf, nerrbuf, "no output pointer given");
        return CBFFI_EINVAL;
    }
    *out = NULL;
    cbffi_client *c = calloc(1, sizeof(*c));
    if (!c) {
        write_err(errbuf, nerrbuf, "out of memory");
        return CBFFI_CLIENT_ENOMEM;
    }
    c->op_timeout = DEFAULT_OP_TIMEOUT;
    c->connect_timeout = DEFAULT_CONNECT_TIMEOUT;
    c->max_value = MAX_VALUE;
    c->max_body = MAX_BODY;
    c->pending.pnext = c->pending.pprev = &c->pending;
    c->next_deadline = UINT64_MAX;
    int rc = setup(c, connstr, username, password, errbuf, nerrbuf);
    if (rc != CBFFI_OK) {
        if (rc == CBFFI_CLIENT_ENOMEM)
            write_err(errbuf, nerrbuf, "out of memory");
        cbffi_client_destroy(c);
        return rc;
    }
    *out = c;
    return CBFFI_OK;
}

void cbffi_client_destroy(cbffi_client *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->nconns; i++)
        cb_conn_destroy(&c->conns[i]);
    free(c->conns);
    cb_ketama_free(&c->ketama);
    cb_connstr_free(&c->cs);
    while (c->chunks) {
        cb_op_chunk *next = c->chunks->next;
        free(c->chunks);
        c->chunks = next;
    }
    free(c->res);
    cb_buf_free(&c->rdata);
    free(c->changes);
    free(c->pfds);
    free(c);
}

/* ---- getters -------------------------------------------------------------- */

int cbffi_client_set_timeout(cbffi_client *c, int kind, uint64_t usec)
{
    if (usec == 0)
        return CBFFI_EINVAL;
    if (kind == CBFFI_TIMEOUT_OPERATION)
        c->op_timeout = usec;
    else if (kind == CBFFI_TIMEOUT_CONNECT)
        c->connect_timeout = usec;
    else
        return CBFFI_EINVAL;
    return CBFFI_OK;
}

uint64_t cbffi_client_get_timeout(cbffi_client *c, int kind)
{
    if (kind == CBFFI_TIMEOUT_OPERATION)
        return c->op_timeout;
    if (kind == CBFFI_TIMEOUT_CONNECT)
        return c->connect_timeout;
    return 0;
}

int cbffi_client_type_of(cbffi_client *c) { return (int)c->type; }
int cbffi_client_server_count(cbffi_client *c) { return c->nconns; }

const char *cbffi_client_server_name(cbffi_client *c, int i)
{
    return i >= 0 && i < c->nconns ? c->conns[i].name : NULL;
}

const char *cbffi_client_bucket(cbffi_client *c) { return c->cs.bucket; }
const char *cbffi_client_last_error(cbffi_client *c) { return c->last_error; }
size_t cbffi_pending(cbffi_client *c) { return c->npending; }
size_t cbffi_ready(cbffi_client *c) { return c->res_len - c->res_head; }

static int route(cbffi_client *c, const char *key, size_t nkey)
{
    if (c->nconns == 1)
        return 0;
    return cb_ketama_lookup(&c->ketama,
                            cb_ketama_hash(&c->ketama, key, nkey));
}

int cbffi_client_server_for_key(cbffi_client *c, const char *key, size_t nkey)
{
    if (!key || nkey == 0)
        return -1;
    return route(c, key, nkey);
}

/* ---- op pool and pending list --------------------------------------------- */

cb_op *cb_op_new(cbffi_client *c, int op, uint64_t cookie)
{
    if (!c->free_ops) {
        cb_op_chunk *ch = malloc(sizeof(*ch));
        if (!ch)
            return NULL;
        ch->next = c->chunks;
        c->chunks = ch;
        for (size_t i = 0; i < sizeof(ch->ops) / sizeof(ch->ops[0]); i++) {
            ch->ops[i].pnext = c->free_ops;
            c->free_ops = &ch->ops[i];
        }
    }
    cb_op *o = c->free_ops;
    c->free_ops = o->pnext;
    memset(o, 0, sizeof(*o));
    o->cookie = cookie;
    o->op = (uint8_t)op;
    o->server = -1;
    return o;
}

void cb_op_unref(cbffi_client *c, cb_op *op)
{
    if (--op->refs > 0)
        return;
    if (op->parent)
        cb_op_unref(c, op->parent);
    op->pnext = c->free_ops;
    c->free_ops = op;
}

static void pending_add(cbffi_client *c, cb_op *op)
{
    op->deadline = (c->batch_now ? c->batch_now : cb_now()) + c->op_timeout;
    if (op->deadline < c->next_deadline)
        c->next_deadline = op->deadline;
    op->pprev = c->pending.pprev;
    op->pnext = &c->pending;
    c->pending.pprev->pnext = op;
    c->pending.pprev = op;
    op->refs++;
    c->npending++;
}

/* Mark a top-level op done and drop its pending reference. */
static void pending_done(cbffi_client *c, cb_op *op)
{
    op->done = 1;
    op->pprev->pnext = op->pnext;
    op->pnext->pprev = op->pprev;
    op->pnext = op->pprev = NULL;
    c->npending--;
    cb_op_unref(c, op);
}

/* ---- results --------------------------------------------------------------- */

/* Forget results handed out by earlier harvests, once all are taken.  Run
   where the contract lets their pointers die: at the start of cbffi_harvest
   and of every cbffi_io_* call (cbffi_wait starts with cbffi_io_flush), i.e.
   before an IO call pushes new results.  Releasing only in cbffi_harvest
   never happened in the synchronous pattern (schedule, wait, harvest one):
   the next result was always pushed before the check, so the result queue
   and its arena grew by every result ever received. */
void cb_release_harvested(cbffi_client *c)
{
    if (c->res_head == c->res_len) {
        c->res_head = c->res_len = 0;
        cb_buf_clear(&c->rdata);
        cb_buf_shrink(&c->rdata, 1 << 20);
    }
}

cb_result_rec *cb_result_push(cbffi_client *c, const cbffi_result *r,
                              const char *key, size_t nkey,
                              const char *value, size_t nvalue)
{
    if (c->res_len == c->res_cap) {
        size_t cap = c->res_cap ? c->res_cap * 2 : 64;
        cb_result_rec *n = realloc(c->res, cap * sizeof(*n));
        if (!n)
            return NULL; /* dropped: see cb_op_fail's fallback */
        c->res = n;
        c->res_cap = cap;
    }
    cb_result_rec *rec = &c->res[c->res_len];
    rec->r = *r;
    rec->koff = rec->voff = 0;
    if (cb_buf_reserve(&c->rdata, nkey + nvalue) != 0) {
        rec->r.rc = CBFFI_CLIENT_ENOMEM;
        nkey = nvalue = 0;
    }
    rec->r.nkey = (uint32_t)nkey;
    rec->r.nvalue = (uint32_t)nvalue;
    if (nkey) {
        rec->koff = c->rdata.len;
        cb_buf_append(&c->rdata, key, nkey);
    }
    if (nvalue) {
        rec->voff = c->rdata.len;
        cb_buf_append(&c->rdata, value, nvalue);
    }
    c->res_len++;
    return rec;
}

static void push_simple(cbffi_client *c, const cb_op *op, int rc, int server,
                        int final)
{
    cbffi_result r;
    memset(&r, 0, sizeof(r));
    r.cookie = op->cookie;
    r.rc = rc;
    r.op = op->op;
    r.server = (int16_t)server;
    r.final = (uint8_t)final;
    cb_result_push(c, &r, NULL, 0, NULL, 0);
}

void cb_op_fail(cbffi_client *c, cb_op *op, int rc, int server)
{
    if (op->done)
        return;
    push_simple(c, op, rc, server, 1);
    pending_done(c, op);
}

/* Count one finished child of parent p; the last one completes p. */
static void parent_account(cbffi_client *c, cb_op *p, int rc)
{
    if (p->done)
        return;
    if (rc == CBFFI_OK)
        p->any_ok = 1;
    else if (p->first_rc == CBFFI_OK)
        p->first_rc = rc;
    if (--p->remaining > 0)
        return;
    int final_rc = p->first_rc;
    if (p->op == CBFFI_OP_CONNECT && p->any_ok)
        final_rc = CBFFI_OK;
    push_simple(c, p, final_rc, -1, 1);
    pending_done(c, p);
}

void cb_child_finish(cbffi_client *c, cb_op *child, int rc)
{
    cb_op *p = child->parent;
    if (child->done)
        return;
    child->done = 1;
    /* VERSION/FLUSH/NOOP report each server; STATS reports each stat. */
    if (!p->done && p->op != CBFFI_OP_STATS && p->op != CBFFI_OP_CONNECT)
        push_simple(c, child, rc, child->server, 0);
    parent_account(c, p, rc);
}

size_t cbffi_harvest(cbffi_client *c, cbffi_result *out, size_t max)
{
    cb_release_harvested(c);
    size_t n = c->res_len - c->res_head;
    if (n > max)
        n = max;
    for (size_t i = 0; i < n; i++) {
        cb_result_rec *rec = &c->res[c->res_head + i];
        out[i] = rec->r;
        out[i].key = rec->r.nkey ? c->rdata.data + rec->koff : NULL;
        out[i].value = rec->r.nvalue ? c->rdata.data + rec->voff : NULL;
    }
    c->res_head += n;
    return n;
}

/* ---- responses -------------------------------------------------------------- */

static int is_mutation(int op)
{
    return op >= CBFFI_OP_SET && op <= CBFFI_OP_COUNTER;
}

/* Produce the final result of a single-key op from a response. */
static int complete_keyop(cbffi_client *c, cb_conn *conn, cb_op *op,
                          const cb_resp *r)
{
    cbffi_result res;
    memset(&res, 0, sizeof(res));
    res.cookie = op->cookie;
    res.op = op->op;
    res.status = r->status;
    res.datatype = r->datatype;
    res.server = (int16_t)conn->index;
    res.final = 1;
    res.cas = r->cas;
    res.rc = cb_status_to_rc(r->status, is_mutation(op->op));
    const char *val = NULL;
    size_t nval = 0;
    if (res.rc == CBFFI_OK) {
        if (op->op == CBFFI_OP_GET) {
            if (r->next != 4) {
                cb_conn_fail(conn, CBFFI_PROTOCOL_ERROR,
                             "GET reply with %u bytes of extras", r->next);
                return -1;
            }
            res.flags = cb_get32(r->ext);
            val = r->value;
            nval = r->nvalue;
        } else if (op->op == CBFFI_OP_COUNTER) {
            if (r->nvalue != 8) {
                cb_conn_fail(conn, CBFFI_PROTOCOL_ERROR,
                             "counter reply with a %u-byte value",
                             (unsigned)r->nvalue);
                return -1;
            }
            res.u64 = cb_get64(r->value);
        }
    } else {
        val = r->value; /* the server's error text, if any */
        nval = r->nvalue;
    }
    if (!op->done) {
        cb_result_push(c, &res, NULL, 0, val, nval);
        pending_done(c, op);
    }
    return 0;
}

/* One packet of a broadcast op (STAT, VERSION, FLUSH, NOOP). */
static int complete_child(cbffi_client *c, cb_conn *conn, cb_op *op,
                          const cb_resp *r)
{
    int rc = cb_status_to_rc(r->status, 0);
    int more = op->op == CBFFI_OP_STATS && rc == CBFFI_OK && r->nkey > 0;
    if ((more || (op->op == CBFFI_OP_VERSION && rc == CBFFI_OK)) &&
        !op->parent->done) {
        cbffi_result res;
        memset(&res, 0, sizeof(res));
        res.cookie = op->cookie;
        res.op = op->op;
        res.status = r->status;
        res.server = (int16_t)conn->index;
        cb_result_push(c, &res, r->key, r->nkey, r->value, r->nvalue);
    }
    if (more)
        return 1;
    if (op->op == CBFFI_OP_VERSION && rc == CBFFI_OK) {
        op->done = 1; /* its per-server result went out above */
        parent_account(c, op->parent, rc);
    } else {
        cb_child_finish(c, op, rc);
    }
    return 0;
}

int cb_handle_response(cbffi_client *c, cb_conn *conn, cb_op *op,
                       const cb_resp *r)
{
    int stay;
    if (op->parent)
        stay = complete_child(c, conn, op, r);
    else
        stay = complete_keyop(c, conn, op, r);
    if (stay != 0)
        return stay < 0 ? -1 : 1;
    /* Pop the head (it is op) and drop the queue's reference. */
    conn->queue.head = (conn->queue.head + 1) % conn->queue.cap;
    conn->queue.count--;
    cb_op_unref(c, op);
    return 0;
}

void cb_handle_silence(cbffi_client *c, cb_conn *conn, cb_op *op)
{
    cbffi_result res;
    if (op->done)
        return;
    memset(&res, 0, sizeof(res));
    res.cookie = op->cookie;
    res.op = op->op;
    res.rc = CBFFI_KEY_ENOENT;
    res.status = CB_ST_KEY_ENOENT;
    res.server = (int16_t)conn->index;
    res.final = 1;
    cb_result_push(c, &res, NULL, 0, NULL, 0);
    pending_done(c, op);
}

/* ---- timeouts ---------------------------------------------------------------- */

/* Connection attempts past their deadline fail (their ops with them). */
static void expire_connects(cbffi_client *c, uint64_t now)
{
    for (int i = 0; i < c->nconns; i++) {
        cb_conn *conn = &c->conns[i];
        if (conn->state == CB_CONN_CONNECTING && now >= conn->connect_deadline) {
            cb_conn_fail(conn, CBFFI_CONNECT_ERROR, "connect timed out after %.3f s",
                         (double)c->connect_timeout / 1e6);
            cb_conn_update_watch(conn);
        }
    }
}

/* A server that has sent nothing for a whole operation timeout while
   requests wait on it is treated as dead: its socket is closed so that the
   next operation reconnects instead of queueing behind a silent peer. */
static void drop_silent_conns(cbffi_client *c, uint64_t now)
{
    for (int i = 0; i < c->nconns; i++) {
        cb_conn *conn = &c->conns[i];
        if (conn->state == CB_CONN_CONNECTING && now >= conn->connect_deadline)
            cb_conn_fail(conn, CBFFI_CONNECT_ERROR,
                         "connect timed out after %.3f s",
                         (double)c->connect_timeout / 1e6);
        else if (conn->state == CB_CONN_CONNECTED && conn->queue.count &&
                 now - conn->last_read >= c->op_timeout)
            cb_conn_fail(conn, CBFFI_NETWORK_ERROR,
                         "no reply for %.3f s; connection dropped",
                         (double)(now - conn->last_read) / 1e6);
        cb_conn_update_watch(conn);
    }
}

void cb_expire(cbffi_client *c, uint64_t now)
{
    uint64_t next = UINT64_MAX;
    int expired = 0;
    cb_op *op = c->pending.pnext;
    while (op != &c->pending) {
        cb_op *nx = op->pnext;
        if (op->deadline <= now) {
            cb_op_fail(c, op, CBFFI_ETIMEDOUT, op->server);
            expired = 1;
        } else if (op->deadline < next) {
            next = op->deadline;
        }
        op = nx;
    }
    c->next_deadline = next;
    /* Silence is judged when an operation has actually run out of time:
       an operation scheduled after a quiet spell must not be failed early. */
    if (expired)
        drop_silent_conns(c, now);
    else
        expire_connects(c, now);
}

/* ---- scheduling ---------------------------------------------------------------- */

static int check_key(cbffi_client *c, const char *key, size_t nkey)
{
    if (!key || nkey == 0) {
        cb_set_error(c, "empty key");
        return CBFFI_EMPTY_KEY;
    }
    if (nkey > CB_MAX_KEY) {
        cb_set_error(c, "key of %zu bytes is longer than %d bytes", nkey,
                     CB_MAX_KEY);
        return CBFFI_EINVAL;
    }
    return CBFFI_OK;
}

/* Route, encode and queue a single-key request. */
static int sched_key(cbffi_client *c, int opkind, cb_req *req, size_t nkey,
                     uint64_t cookie)
{
    int rc = check_key(c, req->key, nkey);
    if (rc != CBFFI_OK)
        return rc;
    req->nkey = (uint16_t)nkey;
    int s = route(c, req->key, req->nkey);
    if (s < 0) {
        cb_set_error(c, "no server for the key");
        return CBFFI_NO_MATCHING_SERVER;
    }
    cb_op *op = cb_op_new(c, opkind, cookie);
    if (!op)
        return CBFFI_CLIENT_ENOMEM;
    op->server = (int16_t)s;
    if (cb_conn_enqueue(&c->conns[s], op, req) != 0) {
        op->refs = 1;
        cb_op_unref(c, op);
        cb_set_error(c, "out of memory");
        return CBFFI_CLIENT_ENOMEM;
    }
    pending_add(c, op);
    return CBFFI_OK;
}

int cbffi_get(cbffi_client *c, const char *key, size_t nkey, int mode,
              uint32_t exptime, uint64_t cookie)
{
    char ext[4];
    cb_req req = {.key = key};
    switch (mode) {
    case CBFFI_GET_PLAIN:
        req.opcode = CB_CMD_GETQ;
        break;
    case CBFFI_GET_TOUCH:
        req.opcode = CB_CMD_GATQ;
        req.ext = ext;
        req.next = cb_ext_exptime(ext, exptime);
        break;
    case CBFFI_GET_LOCK:
        if (c->type != CBFFI_TYPE_COUCHBASE) {
            cb_set_error(c, "lock needs a Couchbase bucket");
            return CBFFI_NOT_SUPPORTED;
        }
        req.opcode = CB_CMD_GET_LOCKED;
        req.ext = ext;
        req.next = cb_ext_exptime(ext, exptime);
        break;
    default:
        cb_set_error(c, "unknown get mode %d", mode);
        return CBFFI_EINVAL;
    }
    return sched_key(c, CBFFI_OP_GET, &req, nkey, cookie);
}

static const uint8_t store_cmd[] = {
    [CBFFI_OP_SET] = CB_CMD_SET,         [CBFFI_OP_ADD] = CB_CMD_ADD,
    [CBFFI_OP_REPLACE] = CB_CMD_REPLACE, [CBFFI_OP_APPEND] = CB_CMD_APPEND,
    [CBFFI_OP_PREPEND] = CB_CMD_PREPEND,
};

int cbffi_store(cbffi_client *c, int op, const char *key, size_t nkey,
                const char *value, size_t nvalue, uint32_t flags,
                uint32_t exptime, uint64_t cas, uint64_t cookie)
{
    char ext[8];
    if (op < CBFFI_OP_SET || op > CBFFI_OP_PREPEND) {
        cb_set_error(c, "cbffi_store: %d is not a store operation", op);
        return CBFFI_EINVAL;
    }
    int rc = check_key(c, key, nkey);
    if (rc != CBFFI_OK)
        return rc;
    if (nvalue > c->max_value) {
        cb_set_error(c, "value of %zu bytes exceeds the %zu-byte maximum",
                     nvalue, c->max_value);
        return CBFFI_E2BIG;
    }
    if (nvalue && !value) {
        cb_set_error(c, "NULL value with a non-zero length");
        return CBFFI_EINVAL;
    }
    cb_req req = {.opcode = store_cmd[op], .key = key, .nkey = (uint16_t)nkey,
                  .value = value, .nvalue = (uint32_t)nvalue, .cas = cas};
    if (op <= CBFFI_OP_REPLACE) {
        req.ext = ext;
        req.next = cb_ext_store(ext, flags, exptime);
    }
    return sched_key(c, op, &req, nkey, cookie);
}

int cbffi_remove(cbffi_client *c, const char *key, size_t nkey, uint64_t cas,
                 uint64_t cookie)
{
    cb_req req = {.opcode = CB_CMD_DELETE, .key = key, .nkey = (uint16_t)nkey,
                  .cas = cas};
    return sched_key(c, CBFFI_OP_REMOVE, &req, nkey, cookie);
}

int cbffi_counter(cbffi_client *c, const char *key, size_t nkey, int64_t delta,
                  uint64_t initial, int create, uint32_t exptime,
                  uint64_t cookie)
{
    char ext[20];
    int rc = check_key(c, key, nkey);
    if (rc != CBFFI_OK)
        return rc;
    if (create && exptime == UINT32_MAX) {
        cb_set_error(c, "expiry 0xffffffff means 'do not create'");
        return CBFFI_EINVAL;
    }
    uint64_t mag = delta < 0 ? (uint64_t)0 - (uint64_t)delta : (uint64_t)delta;
    cb_req req = {.opcode = delta < 0 ? CB_CMD_DECR : CB_CMD_INCR, .key = key,
                  .nkey = (uint16_t)nkey, .ext = ext};
    req.next = cb_ext_counter(ext, mag, initial, create ? exptime : UINT32_MAX);
    return sched_key(c, CBFFI_OP_COUNTER, &req, nkey, cookie);
}

int cbffi_touch(cbffi_client *c, const char *key, size_t nkey, uint32_t exptime,
                uint64_t cookie)
{
    char ext[4];
    int rc = check_key(c, key, nkey);
    if (rc != CBFFI_OK)
        return rc;
    cb_req req = {.opcode = CB_CMD_TOUCH, .key = key, .nkey = (uint16_t)nkey,
                  .ext = ext};
    req.next = cb_ext_exptime(ext, exptime);
    return sched_key(c, CBFFI_OP_TOUCH, &req, nkey, cookie);
}

int cbffi_unlock(cbffi_client *c, const char *key, size_t nkey, uint64_t cas,
                 uint64_t cookie)
{
    int rc = check_key(c, key, nkey);
    if (rc != CBFFI_OK)
        return rc;
    if (c->type != CBFFI_TYPE_COUCHBASE) {
        cb_set_error(c, "unlock needs a Couchbase bucket");
        return CBFFI_NOT_SUPPORTED;
    }
    cb_req req = {.opcode = CB_CMD_UNLOCK_KEY, .key = key,
                  .nkey = (uint16_t)nkey, .cas = cas};
    return sched_key(c, CBFFI_OP_UNLOCK, &req, nkey, cookie);
}

/* Give a child one reference, finish it with rc at once, and let it go. */
static void finish_now(cbffi_client *c, cb_op *child, int rc)
{
    child->refs++;
    cb_child_finish(c, child, rc);
    cb_op_unref(c, child);
}

/* A top-level op with one child per server; the parent is pending first,
   so that children that end at once (or fail to queue) are counted. */
static int sched_broadcast(cbffi_client *c, int opkind, cb_req *req,
                           uint64_t cookie)
{
    cb_op *p = cb_op_new(c, opkind, cookie);
    if (!p)
        return CBFFI_CLIENT_ENOMEM;
    p->remaining = (uint16_t)c->nconns;
    pending_add(c, p);
    for (int i = 0; i < c->nconns; i++) {
        cb_conn *conn = &c->conns[i];
        cb_op *k = cb_op_new(c, opkind, cookie);
        if (!k) {
            parent_account(c, p, CBFFI_CLIENT_ENOMEM);
            continue;
        }
        k->server = (int16_t)i;
        k->parent = p;
        p->refs++;
        if (opkind == CBFFI_OP_CONNECT) {
            if (conn->state == CB_CONN_CONNECTED)
                finish_now(c, k, CBFFI_OK);
            else
                cb_conn_add_waiter(conn, k);
        } else if (cb_conn_enqueue(conn, k, req) != 0) {
            finish_now(c, k, CBFFI_CLIENT_ENOMEM);
        }
    }
    return CBFFI_OK;
}

int cbffi_connect(cbffi_client *c, uint64_t cookie)
{
    return sched_broadcast(c, CBFFI_OP_CONNECT, NULL, cookie);
}

int cbffi_stats(cbffi_client *c, const char *group, size_t ngroup,
                uint64_t cookie)
{
    if (ngroup > CB_MAX_KEY) {
        cb_set_error(c, "stats group name too long");
        return CBFFI_EINVAL;
    }
    cb_req req = {.opcode = CB_CMD_STAT, .key = group,
                  .nkey = (uint16_t)(group ? ngroup : 0)};
    return sched_broadcast(c, CBFFI_OP_STATS, &req, cookie);
}

int cbffi_version(cbffi_client *c, uint64_t cookie)
{
    cb_req req = {.opcode = CB_CMD_VERSION};
    return sched_broadcast(c, CBFFI_OP_VERSION, &req, cookie);
}

int cbffi_flush(cbffi_client *c, uint64_t cookie)
{
    cb_req req = {.opcode = CB_CMD_FLUSH};
    return sched_broadcast(c, CBFFI_OP_FLUSH, &req, cookie);
}

int cbffi_noop(cbffi_client *c, uint64_t cookie)
{
    cb_req req = {.opcode = CB_CMD_NOOP};
    return sched_broadcast(c, CBFFI_OP_NOOP, &req, cookie);
}
