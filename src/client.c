/*
 * client.c - the client: creation, routing, scheduling, per-operation
 * timeouts, turning responses into results, and harvesting.
 */
#include "bg.h"
#include "client_private.h"
#include "errors.h"
#include "tls.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    DEFAULT_OP_TIMEOUT = 2500000,      /* 2.5 s */
    DEFAULT_CONNECT_TIMEOUT = 2000000, /* 2 s */
    DEFAULT_DUR_TIMEOUT = 5000000,     /* 5 s */
    DEFAULT_DUR_INTERVAL = 10000,      /* 10 ms */
    DEFAULT_HTTP_TIMEOUT = 75000000,   /* 75 s, libcouchbase's http_timeout */
    DEFAULT_QUERY_TIMEOUT = 75000000,  /* 75 s, libcouchbase's n1ql_timeout */
    DEFAULT_VIEW_TIMEOUT = 75000000,   /* 75 s, libcouchbase's views_timeout */
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

static int copy_cred(char **dst, const char *arg, const char *fromstr)
{
    const char *v = arg ? arg : fromstr;
    if (!v)
        return CBFFI_OK;
    *dst = strdup(v);
    return *dst ? CBFFI_OK : CBFFI_CLIENT_ENOMEM;
}

static int setup(cbffi_client *c, const char *connstr, const char *user,
                 const char *pass, char *errbuf, size_t nerr)
{
    int rc = cb_connstr_parse(connstr, &c->cs, errbuf, nerr);
    if (rc != CBFFI_OK)
        return rc;
    if (c->cs.operation_timeout_us)
        c->op_timeout = c->cs.operation_timeout_us;
    if (c->cs.connect_timeout_us)
        c->connect_timeout = c->cs.connect_timeout_us;
    if (c->cs.http_timeout_us)
        c->http_timeout = c->cs.http_timeout_us;
    if (c->cs.query_timeout_us)
        c->query_timeout = c->cs.query_timeout_us;
    if (c->cs.view_timeout_us)
        c->view_timeout = c->cs.view_timeout_us;
    if (c->cs.http_max_response)
        c->http_max_response = (size_t)c->cs.http_max_response;
    if ((rc = copy_cred(&c->username, user, c->cs.username)) != CBFFI_OK ||
        (rc = copy_cred(&c->password, pass, c->cs.password)) != CBFFI_OK)
        return rc;
    if (c->cs.tls &&
        (rc = cb_tls_ctx_new(&c->tls, c->cs.tls, c->cs.ca_file, errbuf, nerr)) !=
            CBFFI_OK)
        return rc;
    if (c->cs.scheme != CB_SCHEME_MEMCACHED) {
        c->type = CBFFI_TYPE_COUCHBASE;
        return cb_cluster_setup(c);
    }
    c->type = CBFFI_TYPE_MEMCACHED;
    if (c->password && c->password[0] && !(c->username && c->username[0])) {
        if (errbuf && nerr)
            snprintf(errbuf, nerr, "a password without a username: "
                     "memcached:// SASL needs both");
        return CBFFI_EINVAL;
    }
    c->conns = calloc(c->cs.nhosts, sizeof(*c->conns));
    if (!c->conns)
        return CBFFI_CLIENT_ENOMEM;
    for (size_t i = 0; i < c->cs.nhosts; i++) {
        const cb_hostport *h = &c->cs.hosts[i];
        c->conns[i] = cb_conn_new(c, (int)i, h->host, h->port, h->ipv6);
        if (!c->conns[i])
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
    c->dur_timeout = DEFAULT_DUR_TIMEOUT;
    c->dur_interval = DEFAULT_DUR_INTERVAL;
    c->http_timeout = DEFAULT_HTTP_TIMEOUT;
    c->query_timeout = DEFAULT_QUERY_TIMEOUT;
    c->view_timeout = DEFAULT_VIEW_TIMEOUT;
    c->http_max_response = MAX_BODY;
    c->next_retry = UINT64_MAX;
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
    cb_cluster_destroy(c);
    cb_streams_free(c); /* after libcurl let go of their requests */
    for (int i = 0; i < c->nconns; i++)
        cb_conn_free(c->conns[i]);
    free(c->conns);
    cb_bg_free(c); /* after every conn released its jobs */
    cb_tls_ctx_free(c->tls); /* after every conn freed its session */
    cb_ketama_free(&c->ketama);
    cb_connstr_free(&c->cs);
    free(c->username);
    free(c->password);
    while (c->chunks) {
        cb_op_chunk *next = c->chunks->next;
        /* Ops still referenced somewhere own packets and durability state. */
        for (size_t i = 0; i < sizeof(c->chunks->ops) / sizeof(c->chunks->ops[0]); i++) {
            cb_buf_free(&c->chunks->ops[i].pkt);
            cb_dur_free(c->chunks->ops[i].dur);
        }
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

static uint64_t *timeout_slot(cbffi_client *c, int kind)
{
    switch (kind) {
    case CBFFI_TIMEOUT_OPERATION: return &c->op_timeout;
    case CBFFI_TIMEOUT_CONNECT: return &c->connect_timeout;
    case CBFFI_TIMEOUT_BOOTSTRAP: return &c->bootstrap_timeout;
    case CBFFI_TIMEOUT_DURABILITY: return &c->dur_timeout;
    case CBFFI_TIMEOUT_DURABILITY_INTERVAL: return &c->dur_interval;
    case CBFFI_TIMEOUT_HTTP: return &c->http_timeout;
    case CBFFI_TIMEOUT_QUERY: return &c->query_timeout;
    case CBFFI_TIMEOUT_CONFIG_POLL: return &c->poll_interval;
    case CBFFI_TIMEOUT_VIEW: return &c->view_timeout;
    default: return NULL;
    }
}

int cbffi_client_set_timeout(cbffi_client *c, int kind, uint64_t usec)
{
    if (kind == CBFFI_TIMEOUT_CONFIG_POLL)
        return cb_cluster_set_poll(c, usec);
    if (usec == 0)
        return CBFFI_EINVAL;
    uint64_t *t = timeout_slot(c, kind);
    if (!t)
        return CBFFI_EINVAL;
    *t = usec;
    return CBFFI_OK;
}

uint64_t cbffi_client_get_timeout(cbffi_client *c, int kind)
{
    uint64_t *t = timeout_slot(c, kind);
    return t ? *t : 0;
}

int cbffi_client_type_of(cbffi_client *c) { return (int)c->type; }
int cbffi_client_server_count(cbffi_client *c) { return c->nconns; }

const char *cbffi_client_server_name(cbffi_client *c, int i)
{
    return i >= 0 && i < c->nconns ? c->conns[i]->name : NULL;
}

const char *cbffi_client_bucket(cbffi_client *c) { return c->cs.bucket; }
const char *cbffi_client_last_error(cbffi_client *c) { return c->last_error; }
size_t cbffi_pending(cbffi_client *c) { return c->npending - c->nstreaming; }
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
    if (c->type != CBFFI_TYPE_COUCHBASE)
        return route(c, key, nkey);
    if (!c->have_map)
        return -1;
    if (c->map.locator == CB_CM_KETAMA)
        return route(c, key, nkey);
    return cb_clustermap_vb_server(&c->map,
                                   cb_vbucket_of(key, nkey, c->map.nvbuckets), 0);
}

int cbffi_client_vbucket(cbffi_client *c, const char *key, size_t nkey,
                         uint32_t *vbucket, int *server)
{
    if (c->type != CBFFI_TYPE_COUCHBASE)
        return CBFFI_NOT_SUPPORTED;
    if (!c->have_map)
        return CBFFI_CLIENT_ENOCONF;
    if (c->map.locator != CB_CM_VBUCKET)
        return CBFFI_NOT_SUPPORTED;
    if (!key || nkey == 0)
        return CBFFI_EMPTY_KEY;
    uint32_t vb = cb_vbucket_of(key, nkey, c->map.nvbuckets);
    if (vbucket)
        *vbucket = vb;
    if (server)
        *server = cb_clustermap_vb_server(&c->map, vb, 0);
    return CBFFI_OK;
}

int cbffi_client_replica_count(cbffi_client *c)
{
    if (c->type != CBFFI_TYPE_COUCHBASE || !c->have_map ||
        c->map.locator != CB_CM_VBUCKET)
        return -1;
    return (int)c->map.nreplicas;
}

int64_t cbffi_client_config_rev(cbffi_client *c)
{
    return c->have_map ? c->map.rev : -1;
}

uint32_t cbffi_client_cluster_caps(cbffi_client *c)
{
    uint32_t out = 0;
    if (c->have_map &&
        (c->map.cluster_caps & CB_CM_CCAP_N1QL_ENHANCED_PREPARED))
        out |= CBFFI_CLUSTER_CAP_N1QL_ENHANCED_PREPARED;
    return out;
}

/* ---- op pool and pending list --------------------------------------------- */

cb_op *cb_op_new(cbffi_client *c, int op, uint64_t cookie)
{
    if (!c->free_ops) {
        cb_op_chunk *ch = calloc(1, sizeof(*ch));
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
    cb_buf pkt = o->pkt; /* a small allocation kept from its last use */
    memset(o, 0, sizeof(*o));
    o->pkt = pkt;
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
    /* Keep a small packet buffer for the next op (couchbase:// encodes
       every op into its own); free big ones. */
    cb_buf_clear(&op->pkt);
    cb_buf_shrink(&op->pkt, 512);
    if (op->dur) {
        cb_dur_free(op->dur);
        op->dur = NULL;
    }
    op->pnext = c->free_ops;
    c->free_ops = op;
}

void cb_pending_add(cbffi_client *c, cb_op *op, uint64_t timeout)
{
    op->deadline = (c->batch_now ? c->batch_now : cb_now()) + timeout;
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
    if (op->streaming)
        c->nstreaming--;
    cb_op_unref(c, op);
}

void cb_op_drop(cbffi_client *c, cb_op *op)
{
    if (!op->done)
        pending_done(c, op);
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
    r.replica = op->replica;
    cb_result_push(c, &r, NULL, 0, NULL, 0);
}

void cb_op_fail(cbffi_client *c, cb_op *op, int rc, int server)
{
    if (op->done)
        return;
    if (op->internal) {
        op->done = 1;
        return;
    }
    if (op->stream) {
        cbffi_result r;
        memset(&r, 0, sizeof(r));
        r.rc = rc;
        cb_stream_end(c, op, &r, NULL, 0);
    } else {
        push_simple(c, op, rc, server, 1);
    }
    pending_done(c, op);
}

void cb_op_complete(cbffi_client *c, cb_op *op, const cbffi_result *r,
                    const char *value, size_t nvalue)
{
    if (op->done)
        return;
    if (op->stream)
        cb_stream_end(c, op, r, value, nvalue);
    else
        cb_result_push(c, r, NULL, 0, value, nvalue);
    pending_done(c, op);
}

void cb_parent_account(cbffi_client *c, cb_op *p, int rc)
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
    /* OBSERVE: only the active node's failure fails the whole. */
    if (p->op == CBFFI_OP_OBSERVE && child->replica)
        rc = CBFFI_OK;
    cb_parent_account(c, p, rc);
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

int cb_is_mutation(int op)
{
    return (op >= CBFFI_OP_SET && op <= CBFFI_OP_COUNTER) ||
           op == CBFFI_OP_MUTATE_IN;
}

/* Produce the final result of a single-key op from a response.  The op has
   been popped from conn's queue already.  Returns -1 if the conn failed. */
static int complete_keyop(cbffi_client *c, cb_conn *conn, cb_op *op,
                          const cb_resp *r)
{
    if (op->op == CB_OP_CONFIG) {
        if (r->status == CB_ST_SUCCESS)
            cb_cluster_apply_json(c, r->value, r->nvalue, conn->host);
        op->done = 1;
        cb_cluster_refresh_done(c);
        return 0;
    }
    if (op->done)
        return 0;
    if (r->status != CB_ST_SUCCESS && c->type == CBFFI_TYPE_COUCHBASE &&
        cb_cluster_on_status(c, conn, op, r))
        return 0;
    cbffi_result res;
    memset(&res, 0, sizeof(res));
    res.cookie = op->cookie;
    res.op = op->op;
    res.status = r->status;
    res.datatype = r->datatype;
    res.server = (int16_t)conn->index;
    res.final = 1;
    res.cas = r->cas;
    res.replica = op->replica;
    res.rc = cb_status_to_rc(r->status, cb_is_mutation(op->op));
    if ((op->op == CBFFI_OP_LOOKUP_IN || op->op == CBFFI_OP_MUTATE_IN) &&
        cb_subdoc_reply(op, r, res.rc) != 0) {
        /* hostile or broken body; the framing is intact, the conn stays */
        cb_op_fail(c, op, CBFFI_PROTOCOL_ERROR, conn->index);
        return 0;
    }
    const char *val = NULL;
    size_t nval = 0;
    if (res.rc == CBFFI_OK) {
        if (op->op == CBFFI_OP_GET || op->op == CBFFI_OP_GET_REPLICA) {
            if (r->next != 4) {
                cb_op_fail(c, op, CBFFI_PROTOCOL_ERROR, conn->index);
                cb_conn_fail(conn, CBFFI_PROTOCOL_ERROR,
                             "GET reply with %u bytes of extras", r->next);
                return -1;
            }
            res.flags = cb_get32(r->ext);
            val = r->value;
            nval = r->nvalue;
        } else if (op->op == CBFFI_OP_COUNTER) {
            if (r->nvalue != 8) {
                cb_op_fail(c, op, CBFFI_PROTOCOL_ERROR, conn->index);
                cb_conn_fail(conn, CBFFI_PROTOCOL_ERROR,
                             "counter reply with a %u-byte value",
                             (unsigned)r->nvalue);
                return -1;
            }
            res.u64 = cb_get64(r->value);
        } else if (op->op == CBFFI_OP_LOOKUP_IN || op->op == CBFFI_OP_MUTATE_IN) {
            val = r->value;
            nval = r->nvalue;
        }
        /* -- mutation tokens: a mutation reply's 16 bytes of extras (vbucket
           uuid, seqno; MUTATION_SEQNO).  memcached:// replies carry no
           extras on mutations: one compare there. */
        if (r->next == 16 && c->type == CBFFI_TYPE_COUCHBASE &&
            c->map.locator != CB_CM_KETAMA && cb_is_mutation(op->op)) {
            res.vbucket = op->vb;
            res.vbuuid = cb_get64(r->ext);
            res.seqno = cb_get64(r->ext + 8);
            if (op->dur)
                cb_dur_keep_token(op, res.vbuuid, res.seqno);
        }
        /* -- end of mutation tokens */
        if (op->dur) {
            if (nval && cb_dur_keep_value(op, val, nval) != 0) {
                cb_op_fail(c, op, CBFFI_CLIENT_ENOMEM, conn->index);
                return 0;
            }
            cb_dur_start(c, op, r->cas);
            return 0;
        }
    } else {
        val = r->value; /* the server's error text, if any */
        nval = r->nvalue;
    }
    cb_op_complete(c, op, &res, val, nval);
    return 0;
}

/* One packet of a broadcast op (STAT, VERSION, FLUSH, NOOP).  Returns 1 if
   more packets follow (STAT), 0 when done, -1 if the connection failed. */
static int complete_child(cbffi_client *c, cb_conn *conn, cb_op *op,
                          const cb_resp *r)
{
    int rc = cb_status_to_rc(r->status, 0);
    int more = op->op == CBFFI_OP_STATS && rc == CBFFI_OK && r->nkey > 0;
    if (more) {
        /* A STAT reply is one reply in many packets: bounded as a whole,
           like any reply, by max_body (what it queues as results). */
        size_t add = sizeof(cb_result_rec) + r->nkey + r->nvalue;
        if (add > c->max_body - op->stat_bytes) {
            cb_conn_fail(conn, CBFFI_PROTOCOL_ERROR,
                         "STAT reply larger than %u bytes", (unsigned)c->max_body);
            return -1;
        }
        op->stat_bytes += (uint32_t)add;
    }
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
        cb_parent_account(c, op->parent, rc);
    } else {
        cb_child_finish(c, op, rc);
    }
    return 0;
}

static void pop_head(cb_conn *conn)
{
    conn->queue.head = (conn->queue.head + 1) % conn->queue.cap;
    conn->queue.count--;
}

int cb_handle_response(cbffi_client *c, cb_conn *conn, cb_op *op,
                       const cb_resp *r)
{
    int rc = 0;
    if (op->parent && op->cmd == CB_CMD_OBSERVE) {
        pop_head(conn);
        rc = cb_observe_response(c, conn, op, r);
    } else if (op->parent) {
        int more = complete_child(c, conn, op, r);
        if (more < 0)
            return -1; /* the conn failed: the queue was emptied */
        if (more)
            return 1; /* more STAT packets follow */
        pop_head(conn);
    } else {
        /* Popped first: handling may reroute the op, apply a new map or
           fail this conn, all of which walk the queues. */
        pop_head(conn);
        rc = complete_keyop(c, conn, op, r);
    }
    cb_op_unref(c, op); /* the queue's reference */
    return rc;
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

static int connect_overdue(const cb_conn *conn, uint64_t now)
{
    return (conn->state == CB_CONN_CONNECTING ||
            conn->state == CB_CONN_NEGOTIATING) &&
           now >= conn->connect_deadline;
}

static void fail_overdue(cbffi_client *c, cb_conn *conn)
{
    if (conn->resolving) {
        cb_conn_fail(conn, CBFFI_UNKNOWN_HOST,
                     "host name lookup did not end within %.3f s",
                     (double)c->connect_timeout / 1e6);
        return;
    }
    if (conn->tls_hs) {
        cb_conn_fail(conn, CBFFI_ETIMEDOUT, "TLS handshake did not finish "
                     "within %.3f s (does the server speak TLS on this port?)",
                     (double)c->connect_timeout / 1e6);
        return;
    }
    cb_conn_fail(conn, CBFFI_CONNECT_ERROR, "%s timed out after %.3f s",
                 conn->state == CB_CONN_CONNECTING ? "connect" : "handshake",
                 (double)c->connect_timeout / 1e6);
}

/* Connection attempts past their deadline fail (their ops with them). */
static void expire_connects(cbffi_client *c, uint64_t now)
{
    for (int i = 0; i < c->nconns; i++) {
        cb_conn *conn = c->conns[i];
        if (connect_overdue(conn, now)) {
            fail_overdue(c, conn);
            cb_conn_update_watch(conn);
        }
    }
    if (c->seed && connect_overdue(c->seed, now))
        fail_overdue(c, c->seed); /* moves on to the next host */
}

/* A server that has sent nothing for a whole operation timeout while
   requests wait on it is treated as dead: its socket is closed so that the
   next operation reconnects instead of queueing behind a silent peer. */
static void drop_silent_conns(cbffi_client *c, uint64_t now)
{
    expire_connects(c, now);
    for (int i = 0; i < c->nconns; i++) {
        cb_conn *conn = c->conns[i];
        /* What was still queued on it ends as timed out too: the server's
           silence, not a broken connection, is what the caller should see. */
        if (conn->state == CB_CONN_CONNECTED && conn->queue.count &&
            now - conn->last_read >= c->op_timeout)
            cb_conn_fail(conn, CBFFI_ETIMEDOUT,
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
            cb_op_fail(c, op, op->last_rc ? op->last_rc : CBFFI_ETIMEDOUT,
                       op->server);
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
    if (c->type == CBFFI_TYPE_COUCHBASE)
        cb_cluster_run_retries(c, now);
}

/* ---- scheduling ---------------------------------------------------------------- */

int cb_check_key(cbffi_client *c, const char *key, size_t nkey)
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

/* couchbase://: encode into the op's own packet and route it. */
int cb_sched_cluster(cbffi_client *c, cb_op *op, cb_req *req)
{
    op->route = CB_ROUTE_CHAIN;
    op->vb_header = 1;
    if (cb_encode(&op->pkt, req) != 0) {
        op->refs = 1;
        cb_op_unref(c, op);
        cb_set_error(c, "out of memory");
        return CBFFI_CLIENT_ENOMEM;
    }
    cb_pending_add(c, op, c->op_timeout);
    op->refs++; /* ours, while dispatching */
    cb_cluster_dispatch(c, op);
    cb_op_unref(c, op);
    return CBFFI_OK;
}

/* Route, encode and queue a single-key request.  dur: persist_to and
   replicate_to (both 0: none), check_removed for deletes. */
static int sched_key_dur(cbffi_client *c, int opkind, cb_req *req,
                         size_t nkey, uint64_t cookie, int persist_to,
                         int replicate_to)
{
    int rc = cb_check_key(c, req->key, nkey);
    if (rc != CBFFI_OK)
        return rc;
    req->nkey = (uint16_t)nkey;
    if (c->type == CBFFI_TYPE_COUCHBASE) {
        cb_op *op = cb_op_new(c, opkind, cookie);
        if (!op)
            return CBFFI_CLIENT_ENOMEM;
        if ((persist_to || replicate_to) &&
            cb_dur_attach(c, op, req->key, nkey, persist_to, replicate_to,
                          opkind == CBFFI_OP_REMOVE) != CBFFI_OK) {
            op->refs = 1;
            cb_op_unref(c, op);
            return CBFFI_CLIENT_ENOMEM;
        }
        return cb_sched_cluster(c, op, req);
    }
    int s = route(c, req->key, req->nkey);
    if (s < 0) {
        cb_set_error(c, "no server for the key");
        return CBFFI_NO_MATCHING_SERVER;
    }
    cb_op *op = cb_op_new(c, opkind, cookie);
    if (!op)
        return CBFFI_CLIENT_ENOMEM;
    op->server = (int16_t)s;
    if (cb_conn_enqueue(c->conns[s], op, req) != 0) {
        op->refs = 1;
        cb_op_unref(c, op);
        cb_set_error(c, "out of memory");
        return CBFFI_CLIENT_ENOMEM;
    }
    cb_pending_add(c, op, c->op_timeout);
    return CBFFI_OK;
}

static int sched_key(cbffi_client *c, int opkind, cb_req *req, size_t nkey,
                     uint64_t cookie)
{
    return sched_key_dur(c, opkind, req, nkey, cookie, 0, 0);
}

/* Durability needs a vbucket map: checked before anything is scheduled. */
static int check_durable(cbffi_client *c, int persist_to, int replicate_to)
{
    if (!persist_to && !replicate_to)
        return CBFFI_OK;
    if (c->type != CBFFI_TYPE_COUCHBASE ||
        (c->have_map && c->map.locator != CB_CM_VBUCKET)) {
        cb_set_error(c, "persist_to / replicate_to need a Couchbase bucket");
        return CBFFI_NOT_SUPPORTED;
    }
    if (!c->have_map) {
        cb_set_error(c, "not connected yet: no cluster map");
        return CBFFI_CLIENT_ENOCONF;
    }
    return cb_dur_check(c, persist_to, replicate_to);
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
        if (c->type != CBFFI_TYPE_COUCHBASE ||
            (c->have_map && c->map.locator != CB_CM_VBUCKET)) {
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

int cbffi_store_durable(cbffi_client *c, int op, const char *key, size_t nkey,
                        const char *value, size_t nvalue, uint32_t flags,
                        uint32_t exptime, uint64_t cas, int persist_to,
                        int replicate_to, uint64_t cookie)
{
    char ext[8];
    if (op < CBFFI_OP_SET || op > CBFFI_OP_PREPEND) {
        cb_set_error(c, "cbffi_store: %d is not a store operation", op);
        return CBFFI_EINVAL;
    }
    int rc = cb_check_key(c, key, nkey);
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
    if ((rc = check_durable(c, persist_to, replicate_to)) != CBFFI_OK)
        return rc;
    cb_req req = {.opcode = store_cmd[op], .key = key, .nkey = (uint16_t)nkey,
                  .value = value, .nvalue = (uint32_t)nvalue, .cas = cas};
    if (op <= CBFFI_OP_REPLACE) {
        req.ext = ext;
        req.next = cb_ext_store(ext, flags, exptime);
    }
    return sched_key_dur(c, op, &req, nkey, cookie, persist_to, replicate_to);
}

int cbffi_store(cbffi_client *c, int op, const char *key, size_t nkey,
                const char *value, size_t nvalue, uint32_t flags,
                uint32_t exptime, uint64_t cas, uint64_t cookie)
{
    return cbffi_store_durable(c, op, key, nkey, value, nvalue, flags, exptime,
                               cas, 0, 0, cookie);
}

int cbffi_remove_durable(cbffi_client *c, const char *key, size_t nkey,
                         uint64_t cas, int persist_to, int replicate_to,
                         uint64_t cookie)
{
    int rc = check_durable(c, persist_to, replicate_to);
    if (rc != CBFFI_OK)
        return rc;
    cb_req req = {.opcode = CB_CMD_DELETE, .key = key, .nkey = (uint16_t)nkey,
                  .cas = cas};
    return sched_key_dur(c, CBFFI_OP_REMOVE, &req, nkey, cookie, persist_to,
                         replicate_to);
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
    int rc = cb_check_key(c, key, nkey);
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
    int rc = cb_check_key(c, key, nkey);
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
    int rc = cb_check_key(c, key, nkey);
    if (rc != CBFFI_OK)
        return rc;
    if (c->type != CBFFI_TYPE_COUCHBASE ||
        (c->have_map && c->map.locator != CB_CM_VBUCKET)) {
        cb_set_error(c, "unlock needs a Couchbase bucket");
        return CBFFI_NOT_SUPPORTED;
    }
    cb_req req = {.opcode = CB_CMD_UNLOCK_KEY, .key = key,
                  .nkey = (uint16_t)nkey, .cas = cas};
    return sched_key(c, CBFFI_OP_UNLOCK, &req, nkey, cookie);
}

int cbffi_get_replica(cbffi_client *c, const char *key, size_t nkey,
                      int index, uint64_t cookie)
{
    int rc = cb_check_key(c, key, nkey);
    if (rc != CBFFI_OK)
        return rc;
    if (c->type != CBFFI_TYPE_COUCHBASE ||
        (c->have_map && c->map.locator != CB_CM_VBUCKET)) {
        cb_set_error(c, "replica reads need a Couchbase bucket");
        return CBFFI_NOT_SUPPORTED;
    }
    if (c->have_map && (c->map.nreplicas == 0 ||
                        (index >= 0 && (uint32_t)index >= c->map.nreplicas))) {
        cb_set_error(c, "the bucket has %u replica(s); replica %d asked",
                     c->map.nreplicas, index);
        return CBFFI_NO_MATCHING_SERVER;
    }
    if (index > CB_CM_MAX_REPLICAS) {
        cb_set_error(c, "replica index %d out of range", index);
        return CBFFI_NO_MATCHING_SERVER;
    }
    cb_op *op = cb_op_new(c, CBFFI_OP_GET_REPLICA, cookie);
    if (!op)
        return CBFFI_CLIENT_ENOMEM;
    op->replica = (uint8_t)(index < 0 ? 1 : index + 1);
    op->replica_any = index < 0;
    cb_req req = {.opcode = CB_CMD_GET_REPLICA, .key = key,
                  .nkey = (uint16_t)nkey};
    return cb_sched_cluster(c, op, &req);
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
    if (c->nconns == 0) {
        cb_set_error(c, "not connected yet: no servers known");
        return CBFFI_CLIENT_ENOCONF;
    }
    cb_op *p = cb_op_new(c, opkind, cookie);
    if (!p)
        return CBFFI_CLIENT_ENOMEM;
    p->remaining = (uint16_t)c->nconns;
    cb_pending_add(c, p, c->op_timeout);
    for (int i = 0; i < c->nconns; i++) {
        cb_conn *conn = c->conns[i];
        cb_op *k = cb_op_new(c, opkind, cookie);
        if (!k) {
            cb_parent_account(c, p, CBFFI_CLIENT_ENOMEM);
            continue;
        }
        k->server = (int16_t)i;
        k->route = CB_ROUTE_FIXED;
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
    if (c->type == CBFFI_TYPE_COUCHBASE)
        return cb_cluster_connect(c, cookie);
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
    if (c->type == CBFFI_TYPE_COUCHBASE && c->have_map &&
        c->map.locator == CB_CM_VBUCKET)
        return cb_http_flush(c, cookie);
    cb_req req = {.opcode = CB_CMD_FLUSH};
    return sched_broadcast(c, CBFFI_OP_FLUSH, &req, cookie);
}

int cbffi_noop(cbffi_client *c, uint64_t cookie)
{
    cb_req req = {.opcode = CB_CMD_NOOP};
    return sched_broadcast(c, CBFFI_OP_NOOP, &req, cookie);
}
