/*
 * durability.c - OBSERVE (PROTOCOL.md 2.2) and client-side durability:
 * endure, and persist_to / replicate_to on mutations, by polling OBSERVE
 * on the key's active node and replicas until enough of them report the
 * key (at the expected CAS) in memory / on disk, as libcouchbase 2.x does.
 *
 * A poll round sends one OBSERVE "probe" per node of the key's vbucket
 * chain; probes are children of the waiting op (an ENDURE op, or the
 * mutation itself once it succeeded).  When the last probe of a round has
 * answered or failed, the round is judged: done, a definite failure (the
 * key changed or vanished), or another round after the interval (the op
 * waits on the cluster's retry list).  The op's deadline ends it with
 * CBFFI_ETIMEDOUT.
 *
 * Ownership: cb_dur belongs to its op (op->dur) and is freed with it; it
 * owns the OBSERVE request value it re-sends each round.
 */
#include "client_private.h"
#include "errors.h"

#include <stdlib.h>
#include <string.h>

struct cb_dur {
    int persist_to, replicate_to;   /* as asked; -1 = every node */
    uint8_t check_removed;
    uint64_t cas;                   /* expected CAS; 0 = any */
    uint64_t interval;              /* us between rounds */
    uint16_t vb;
    cb_buf obsval;                  /* vb | keylen | key */
    cb_buf value;                   /* the mutation reply's value, reported */
    /* the round in progress */
    int outstanding, persisted, replicated, verdict;
};

void cb_dur_free(cb_dur *d)
{
    if (!d)
        return;
    cb_buf_free(&d->obsval);
    cb_buf_free(&d->value);
    free(d);
}

/* ---- the request ------------------------------------------------------------- */

static int observe_value(cb_buf *b, uint16_t vb, const char *key, size_t nkey)
{
    char hdr[4];
    cb_put16(hdr, vb);
    cb_put16(hdr + 2, (uint16_t)nkey);
    if (cb_buf_append(b, hdr, 4) != 0 || cb_buf_append(b, key, nkey) != 0)
        return -1;
    return 0;
}

/* A child OBSERVE of parent for chain entry i, or NULL (out of memory). */
static cb_op *observe_child(cbffi_client *c, cb_op *parent, int kind,
                            uint32_t i, uint16_t vb, const cb_buf *val)
{
    cb_op *k = cb_op_new(c, kind, parent->cookie);
    if (!k)
        return NULL;
    cb_req req = {.opcode = CB_CMD_OBSERVE, .value = cb_buf_head(val),
                  .nvalue = (uint32_t)cb_buf_size(val)};
    if (cb_encode(&k->pkt, &req) != 0) {
        k->refs = 1;
        cb_op_unref(c, k);
        return NULL;
    }
    k->parent = parent;
    parent->refs++;
    k->route = CB_ROUTE_CHAIN;
    k->replica = (uint8_t)i;
    k->vb = vb;
    k->internal = kind == CB_OP_PROBE;
    return k;
}

/* The chain entries of vb that exist now. */
static uint32_t chain_nodes(const cbffi_client *c, uint16_t vb, uint32_t *idx)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i <= c->map.nreplicas; i++)
        if (cb_clustermap_vb_server(&c->map, vb, i) >= 0)
            idx[n++] = i;
    return n;
}

/* ---- rounds ------------------------------------------------------------------- */

static void complete(cbffi_client *c, cb_op *op, int rc)
{
    cbffi_result res;
    memset(&res, 0, sizeof(res));
    res.cookie = op->cookie;
    res.op = op->op;
    res.rc = rc;
    res.cas = op->dur->cas;
    res.server = -1;
    res.final = 1;
    cb_op_complete(c, op, &res, cb_buf_head(&op->dur->value),
                   cb_buf_size(&op->dur->value));
}

int cb_dur_keep_value(cb_op *op, const char *value, size_t n)
{
    cb_buf_clear(&op->dur->value);
    return cb_buf_append(&op->dur->value, value, n);
}

static void judge(cbffi_client *c, cb_op *op)
{
    cb_dur *d = op->dur;
    if (op->done || d->outstanding > 0)
        return;
    if (d->verdict) {
        complete(c, op, d->verdict);
        return;
    }
    uint32_t idx[CB_CM_MAX_REPLICAS + 1];
    int navail = (int)chain_nodes(c, d->vb, idx);
    int need_p = d->persist_to < 0 ? navail : d->persist_to;
    int need_r = d->replicate_to < 0 ? navail - 1 : d->replicate_to;
    if (d->persisted >= need_p && d->replicated >= need_r) {
        complete(c, op, CBFFI_OK);
        return;
    }
    op->dur_wait = 1;
    cb_cluster_retry_at(c, op, cb_now() + d->interval);
}

static void start_round(cbffi_client *c, cb_op *op)
{
    cb_dur *d = op->dur;
    uint32_t idx[CB_CM_MAX_REPLICAS + 1];
    uint32_t n = chain_nodes(c, d->vb, idx);
    d->persisted = d->replicated = d->verdict = 0;
    d->outstanding = (int)n;
    for (uint32_t k = 0; k < n; k++) {
        cb_op *p = observe_child(c, op, CB_OP_PROBE, idx[k], d->vb, &d->obsval);
        if (!p) {
            d->outstanding--;
            continue;
        }
        p->refs = 1; /* ours, until dispatched */
        cb_cluster_dispatch(c, p);
        cb_op_unref(c, p);
    }
    judge(c, op);
}

void cb_dur_next_round(cbffi_client *c, cb_op *op)
{
    op->dur_wait = 0;
    if (!op->done)
        start_round(c, op);
}

void cb_dur_probe_failed(cbffi_client *c, cb_op *probe, int rc)
{
    (void)rc;
    if (probe->done)
        return;
    probe->done = 1;
    cb_op *op = probe->parent;
    op->dur->outstanding--;
    judge(c, op);
}

/* Count one node's answer toward the round. */
static void tally(cb_dur *d, uint32_t chain, uint8_t state, uint64_t cas)
{
    int found = state == CBFFI_OBS_FOUND || state == CBFFI_OBS_PERSISTED;
    if (chain == 0) {
        if (d->check_removed) {
            if (found)
                d->verdict = CBFFI_KEY_EEXISTS; /* written again */
            else if (state == CBFFI_OBS_NOT_FOUND)
                d->persisted++;
        } else if (!found) {
            d->verdict = CBFFI_KEY_ENOENT;
        } else if (d->cas && cas != d->cas) {
            d->verdict = CBFFI_KEY_EEXISTS; /* modified meanwhile */
        } else if (state == CBFFI_OBS_PERSISTED) {
            d->persisted++;
        }
        return;
    }
    if (d->check_removed) {
        if (!found) {
            d->replicated++;
            if (state == CBFFI_OBS_NOT_FOUND)
                d->persisted++;
        }
    } else if (found && (!d->cas || cas == d->cas)) {
        d->replicated++;
        if (state == CBFFI_OBS_PERSISTED)
            d->persisted++;
    }
}

/* Parse an OBSERVE reply for a single key: 0 or -1 if malformed. */
static int parse_reply(const cb_resp *r, uint8_t *state, uint64_t *cas)
{
    if (r->nvalue < 4)
        return -1;
    uint16_t nkey = cb_get16(r->value + 2);
    if (r->nvalue < 4u + nkey + 9u)
        return -1;
    *state = (uint8_t)r->value[4 + nkey];
    *cas = cb_get64(r->value + 4 + nkey + 1);
    return 0;
}

int cb_observe_response(cbffi_client *c, cb_conn *conn, cb_op *op,
                        const cb_resp *r)
{
    uint8_t state = 0;
    uint64_t cas = 0;
    int rc = cb_status_to_rc(r->status, 0);
    if (rc == CBFFI_OK && parse_reply(r, &state, &cas) != 0)
        rc = CBFFI_PROTOCOL_ERROR;
    if (op->op == CB_OP_PROBE) {
        if (rc != CBFFI_OK) {
            cb_dur_probe_failed(c, op, rc);
        } else if (!op->done) {
            op->done = 1;
            cb_op *parent = op->parent;
            if (!parent->done)
                tally(parent->dur, op->replica, state, cas);
            parent->dur->outstanding--;
            judge(c, parent);
        }
        return 0;
    }
    /* a user OBSERVE: one result per node */
    if (rc != CBFFI_OK) {
        cb_child_finish(c, op, rc);
        return 0;
    }
    if (op->done)
        return 0;
    op->done = 1;
    cb_op *parent = op->parent;
    if (!parent->done) {
        cbffi_result res;
        memset(&res, 0, sizeof(res));
        res.cookie = op->cookie;
        res.op = CBFFI_OP_OBSERVE;
        res.flags = state;
        res.cas = cas;
        res.u64 = r->cas; /* ttp << 32 | ttr */
        res.replica = op->replica;
        res.server = (int16_t)conn->index;
        res.status = r->status;
        cb_result_push(c, &res, NULL, 0, NULL, 0);
    }
    cb_parent_account(c, parent, CBFFI_OK);
    return 0;
}

/* ---- scheduling ------------------------------------------------------------------ */

static int check_vbucket_bucket(cbffi_client *c)
{
    if (c->type != CBFFI_TYPE_COUCHBASE) {
        cb_set_error(c, "this needs a Couchbase bucket (couchbase://)");
        return CBFFI_NOT_SUPPORTED;
    }
    if (!c->have_map) {
        cb_set_error(c, "not connected yet: no cluster map");
        return CBFFI_CLIENT_ENOCONF;
    }
    if (c->map.locator != CB_CM_VBUCKET) {
        cb_set_error(c, "this needs a Couchbase bucket (this is a memcached bucket)");
        return CBFFI_NOT_SUPPORTED;
    }
    return CBFFI_OK;
}

/* Check persist_to / replicate_to against the bucket's replicas. */
int cb_dur_check(cbffi_client *c, int persist_to, int replicate_to)
{
    int nrep = (int)c->map.nreplicas;
    if (persist_to > nrep + 1 || replicate_to > nrep || persist_to < -1 ||
        replicate_to < -1) {
        cb_set_error(c, "durability asks for persist_to=%d replicate_to=%d "
                     "but the bucket has %d replica(s)", persist_to,
                     replicate_to, nrep);
        return CBFFI_DURABILITY_ETOOMANY;
    }
    return CBFFI_OK;
}

static cb_dur *dur_new(cbffi_client *c, const char *key, size_t nkey,
                       int persist_to, int replicate_to, int check_removed,
                       uint64_t interval)
{
    cb_dur *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->persist_to = persist_to;
    d->replicate_to = replicate_to;
    d->check_removed = (uint8_t)(check_removed != 0);
    d->interval = interval ? interval : c->dur_interval;
    d->vb = (uint16_t)cb_vbucket_of(key, nkey, c->map.nvbuckets);
    if (observe_value(&d->obsval, d->vb, key, nkey) != 0) {
        cb_dur_free(d);
        return NULL;
    }
    return d;
}

int cbffi_endure(cbffi_client *c, const char *key, size_t nkey, uint64_t cas,
                 int persist_to, int replicate_to, int check_removed,
                 uint64_t timeout_us, uint64_t interval_us, uint64_t cookie)
{
    int rc = cb_check_key(c, key, nkey);
    if (rc == CBFFI_OK)
        rc = check_vbucket_bucket(c);
    if (rc == CBFFI_OK)
        rc = cb_dur_check(c, persist_to, replicate_to);
    if (rc != CBFFI_OK)
        return rc;
    cb_op *op = cb_op_new(c, CBFFI_OP_ENDURE, cookie);
    if (!op)
        return CBFFI_CLIENT_ENOMEM;
    op->dur = dur_new(c, key, nkey, persist_to, replicate_to, check_removed,
                      interval_us);
    if (!op->dur) {
        op->refs = 1;
        cb_op_unref(c, op);
        return CBFFI_CLIENT_ENOMEM;
    }
    op->dur->cas = cas;
    cb_pending_add(c, op, timeout_us ? timeout_us : c->dur_timeout);
    start_round(c, op);
    return CBFFI_OK;
}

int cbffi_observe(cbffi_client *c, const char *key, size_t nkey,
                  int master_only, uint64_t cookie)
{
    int rc = cb_check_key(c, key, nkey);
    if (rc == CBFFI_OK)
        rc = check_vbucket_bucket(c);
    if (rc != CBFFI_OK)
        return rc;
    uint16_t vb = (uint16_t)cb_vbucket_of(key, nkey, c->map.nvbuckets);
    uint32_t idx[CB_CM_MAX_REPLICAS + 1];
    uint32_t n = chain_nodes(c, vb, idx);
    if (n == 0 || idx[0] != 0) {
        cb_set_error(c, "no node owns the key's vbucket now");
        return CBFFI_NO_MATCHING_SERVER;
    }
    if (master_only)
        n = 1;
    cb_buf val = {0};
    if (observe_value(&val, vb, key, nkey) != 0) {
        cb_buf_free(&val);
        return CBFFI_CLIENT_ENOMEM;
    }
    cb_op *p = cb_op_new(c, CBFFI_OP_OBSERVE, cookie);
    if (!p) {
        cb_buf_free(&val);
        return CBFFI_CLIENT_ENOMEM;
    }
    p->remaining = (uint16_t)n;
    cb_pending_add(c, p, c->op_timeout);
    for (uint32_t k = 0; k < n; k++) {
        cb_op *child = observe_child(c, p, CBFFI_OP_OBSERVE, idx[k], vb, &val);
        if (!child) {
            cb_parent_account(c, p, CBFFI_CLIENT_ENOMEM);
            continue;
        }
        child->refs = 1;
        cb_cluster_dispatch(c, child);
        cb_op_unref(c, child);
    }
    cb_buf_free(&val);
    return CBFFI_OK;
}

/* ---- durability on mutations ----------------------------------------------------- */

int cb_dur_attach(cbffi_client *c, cb_op *op, const char *key, size_t nkey,
                  int persist_to, int replicate_to, int check_removed)
{
    op->dur = dur_new(c, key, nkey, persist_to, replicate_to, check_removed, 0);
    return op->dur ? CBFFI_OK : CBFFI_CLIENT_ENOMEM;
}

void cb_dur_start(cbffi_client *c, cb_op *op, uint64_t cas)
{
    /* The mutation's CAS: what replicas must show (a removal is judged by
       key state alone), and what the result reports. */
    op->dur->cas = cas;
    /* From now on the durability timeout applies; next_deadline is a lower
       bound of every pending deadline, and this one may be the earliest. */
    op->deadline = cb_now() + c->dur_timeout;
    if (op->deadline < c->next_deadline)
        c->next_deadline = op->deadline;
    start_round(c, op);
}
