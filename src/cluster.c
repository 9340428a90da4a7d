/*
 * cluster.c - couchbase:// : bootstrap, the cluster map, routing and
 * retries (PROTOCOL.md 3, 5).
 *
 * Bootstrap: the connection string's hosts are tried in turn through one
 * "seed" conn whose handshake ends with GET_CLUSTER_CONFIG.  The first map
 * creates a conn per data node (the seed is adopted when it is one of them)
 * and releases the operations that waited for it.
 *
 * Routing: every couchbase:// op keeps its encoded packet (op->pkt), so it
 * can be sent again: to the new owner after NOT_MY_VBUCKET, after a
 * temporary failure (with backoff), or after its connection died when that
 * is safe (the packet never left, or the op is a read).  A retried op keeps
 * its deadline; a temporary failure still unresolved at the deadline is
 * reported as itself, anything else as a timeout.  NOT_MY_VBUCKET never
 * reaches the user.
 *
 * Config changes: a newer map (from a NOT_MY_VBUCKET body or a refresh)
 * rebuilds the conns array: conns whose node stays keep their socket and
 * queue; nodes that left are retired (their queued ops rerouted or failed)
 * and freed at the next io call (cb_cluster_bury), never while a caller
 * up the stack may still hold them.
 *
 * Ownership: the client owns the map, the seed and the graveyard; the retry
 * and wait lists hold one reference on each op they hold.
 */
#include "client_private.h"
#include "errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    DEFAULT_BOOTSTRAP_TIMEOUT = 5000000, /* 5 s, libcouchbase's default */
    NMV_RETRY_DELAY = 100000,            /* 100 ms without a newer map */
    LOST_RETRY_DELAY = 10000,            /* 10 ms after a dropped socket */
    REFRESH_WAIT = 500000,               /* longest wait for a refresh */
    REFRESH_INTERVAL = 100000,           /* at most one refresh per 100 ms */
    TMPFAIL_BACKOFF_FIRST = 2000,        /* 2 ms, doubling ... */
    TMPFAIL_BACKOFF_MAX = 250000         /* ... up to 250 ms */
};

/* ---- setup ----------------------------------------------------------------- */

int cb_cluster_setup(cbffi_client *c)
{
    if (!c->cs.bucket[0]) {
        free(c->cs.bucket);
        c->cs.bucket = strdup("default");
        if (!c->cs.bucket)
            return CBFFI_CLIENT_ENOMEM;
    }
    if (!c->username) {
        /* Classic (pre-RBAC) credentials: the bucket name is the user. */
        c->username = strdup(c->cs.bucket);
        if (!c->username)
            return CBFFI_CLIENT_ENOMEM;
    }
    if (!c->password) {
        c->password = strdup("");
        if (!c->password)
            return CBFFI_CLIENT_ENOMEM;
    }
    c->bootstrap_timeout = c->cs.config_total_timeout_us
                               ? c->cs.config_total_timeout_us
                               : DEFAULT_BOOTSTRAP_TIMEOUT;
    return CBFFI_OK;
}

static void bury(cbffi_client *c, cb_conn *conn)
{
    cb_conn_undirty(conn);
    conn->retired = 1;
    conn->gnext = c->graveyard;
    c->graveyard = conn;
}

void cb_cluster_bury(cbffi_client *c)
{
    while (c->graveyard) {
        cb_conn *next = c->graveyard->gnext;
        cb_conn_free(c->graveyard);
        c->graveyard = next;
    }
}

static void release_list(cbffi_client *c, cb_op *op)
{
    while (op) {
        cb_op *next = op->rnext;
        op->rnext = NULL;
        cb_op_unref(c, op);
        op = next;
    }
}

void cb_cluster_destroy(cbffi_client *c)
{
    release_list(c, c->waitq);
    release_list(c, c->retryq);
    c->waitq = c->waitq_tail = c->retryq = NULL;
    if (c->seed)
        cb_conn_free(c->seed);
    c->seed = NULL;
    cb_cluster_bury(c);
    cb_http_free(c);
    cb_clustermap_free(&c->map);
}

/* ---- bootstrap --------------------------------------------------------------- */

static void waitq_push(cbffi_client *c, cb_op *op)
{
    op->refs++;
    op->rnext = NULL;
    if (c->waitq_tail)
        c->waitq_tail->rnext = op;
    else
        c->waitq = op;
    c->waitq_tail = op;
}

/* Release every op that waited for the first map: CONNECT ops complete
   with rc, the others are routed (rc == 0) or fail with rc. */
static void drain_waitq(cbffi_client *c, int rc)
{
    cb_op *op = c->waitq;
    c->waitq = c->waitq_tail = NULL;
    while (op) {
        cb_op *next = op->rnext;
        op->rnext = NULL;
        if (!op->done) {
            if (op->op == CBFFI_OP_CONNECT || rc != CBFFI_OK)
                cb_op_fail(c, op, rc, -1);
            else
                cb_cluster_dispatch(c, op);
        }
        cb_op_unref(c, op);
        op = next;
    }
}

/* The KV and REST ports of a connection-string host (PROTOCOL.md 8.3: in
   couchbase://h:8091 the port is the REST one). */
static uint16_t kv_port(const cbffi_client *c, const cb_hostport *h)
{
    if (c->cs.scheme == CB_SCHEME_HTTP || h->proto == CB_SCHEME_HTTP ||
        (h->port == 8091 && !h->proto))
        return 11210;
    return h->port;
}

static uint16_t rest_port(const cbffi_client *c, const cb_hostport *h)
{
    if (c->cs.scheme == CB_SCHEME_HTTP || h->proto == CB_SCHEME_HTTP)
        return h->port;
    return 8091;
}

/* Which bootstrap attempts run: CCCP over every host, then HTTP over every
   host.  http:// asks for HTTP only unless bootstrap_on says otherwise. */
static int use_cccp(const cbffi_client *c)
{
    if (c->cs.bootstrap_on == CB_BOOTSTRAP_ALL)
        return c->cs.scheme != CB_SCHEME_HTTP;
    return c->cs.bootstrap_on == CB_BOOTSTRAP_CCCP;
}

static int use_http(const cbffi_client *c)
{
    return c->cs.bootstrap_on != CB_BOOTSTRAP_CCCP;
}

/* Start the next bootstrap attempt; -1 when none is left. */
static int start_seed(cbffi_client *c)
{
    if (c->seed) {
        cb_conn_close(c->seed);
        bury(c, c->seed);
        c->seed = NULL;
    }
    size_t n = c->cs.nhosts;
    while (c->seed_next < 2 * n) {
        size_t k = c->seed_next++;
        const cb_hostport *h = &c->cs.hosts[k % n];
        if (k < n && use_cccp(c)) {
            c->seed = cb_conn_new(c, -1, h->host, kv_port(c, h), h->ipv6);
            if (!c->seed)
                return -1;
            c->seed->fetch_config = 1;
            cb_conn_mark_dirty(c->seed);
            return 0;
        }
        if (k >= n && use_http(c)) {
            int rc = cb_http_start(c, h->host, h->ipv6, rest_port(c, h));
            if (rc == CBFFI_OK)
                return 0;
            c->seed_rc = rc;
        }
    }
    return -1;
}

static void bootstrap_begin(cbffi_client *c)
{
    if (c->seed || cb_http_bootstrapping(c))
        return; /* under way */
    c->seed_next = 0;
    c->seed_rc = CBFFI_CONNECT_ERROR;
    c->seed_err[0] = 0;
    if (start_seed(c) != 0)
        drain_waitq(c, c->seed_rc);
}

int cb_cluster_connect(cbffi_client *c, uint64_t cookie)
{
    cb_op *op = cb_op_new(c, CBFFI_OP_CONNECT, cookie);
    if (!op)
        return CBFFI_CLIENT_ENOMEM;
    cb_pending_add(c, op, c->bootstrap_timeout);
    if (c->have_map) {
        cb_op_fail(c, op, CBFFI_OK, -1);
        return CBFFI_OK;
    }
    waitq_push(c, op);
    bootstrap_begin(c);
    return CBFFI_OK;
}

static int fatal_for_bootstrap(int rc)
{
    return rc == CBFFI_AUTH_ERROR || rc == CBFFI_BUCKET_ENOENT ||
           rc == CBFFI_SASLMECH_UNAVAILABLE || rc == CBFFI_EINVAL ||
           rc == CBFFI_CLIENT_ENOMEM || rc == CBFFI_NOT_SUPPORTED;
}

void cb_cluster_seed_failed(cbffi_client *c, int rc)
{
    /* Keep the most telling reason: a refusal beats "unreachable", and the
       first "unreachable" is reported with its own message. */
    if (!c->seed_err[0] || fatal_for_bootstrap(rc) ||
        (c->seed_rc == CBFFI_CONNECT_ERROR && rc != CBFFI_CONNECT_ERROR)) {
        c->seed_rc = rc;
        snprintf(c->seed_err, sizeof(c->seed_err), "%s", c->last_error);
    }
    if (!fatal_for_bootstrap(rc) && start_seed(c) == 0)
        return;
    if (c->seed) {
        bury(c, c->seed);
        c->seed = NULL;
    }
    if (!c->have_map) {
        snprintf(c->last_error, sizeof(c->last_error), "%s", c->seed_err);
        drain_waitq(c, c->seed_rc);
    }
}

void cb_cluster_seed_done(cbffi_client *c, cb_conn *conn)
{
    if (c->seed != conn)
        return; /* adopted: it is one of the data nodes */
    c->seed = NULL;
    cb_conn_close(conn);
    bury(c, conn);
}

/* ---- applying a map ----------------------------------------------------------- */

static int build_ketama(cbffi_client *c)
{
    cb_ketama_free(&c->ketama);
    if (c->map.locator != CB_CM_KETAMA || c->map.nservers < 1)
        return 0;
    const char **names = calloc(c->map.nservers, sizeof(*names));
    if (!names)
        return -1;
    for (uint32_t i = 0; i < c->map.nservers; i++)
        names[i] = c->map.servers[i].authority;
    int rc = cb_ketama_build(&c->ketama, names, c->map.nservers);
    free(names);
    return rc;
}

/* Install map m (consumed): new conns array, then retire the old nodes.
   Each entry of the new server list reuses a distinct old conn (or the
   seed) of the same name, else gets a new one: a name listed twice gets two
   conns. */
static int install(cbffi_client *c, cb_clustermap *m)
{
    uint32_t n = m->nservers;
    cb_conn **fresh = calloc(n ? n : 1, sizeof(*fresh));
    int *src = calloc(n ? n : 1, sizeof(*src)); /* old index, SRC_* */
    uint8_t *taken = calloc(c->nconns ? (size_t)c->nconns : 1, 1);
    enum { SRC_NEW = -1, SRC_SEED = -2 };
    if (!fresh || !src || !taken) {
        free(fresh);
        free(src);
        free(taken);
        return -1;
    }
    /* First the allocations, so that failing leaves everything as it was. */
    int seed_taken = 0;
    for (uint32_t i = 0; i < n; i++) {
        const cb_cm_server *s = &m->servers[i];
        int k = -1;
        for (int j = 0; j < c->nconns && k < 0; j++)
            if (!taken[j] && strcmp(c->conns[j]->name, s->authority) == 0)
                k = j;
        if (k >= 0) {
            taken[k] = 1;
            src[i] = k;
            continue;
        }
        if (c->seed && !seed_taken && strcmp(c->seed->name, s->authority) == 0) {
            seed_taken = 1;
            src[i] = SRC_SEED;
            continue;
        }
        src[i] = SRC_NEW;
        fresh[i] = cb_conn_new(c, (int)i, s->host, s->port, s->ipv6);
        if (!fresh[i]) {
            for (uint32_t j = 0; j < i; j++)
                if (src[j] == SRC_NEW)
                    cb_conn_free(fresh[j]);
            free(fresh);
            free(src);
            free(taken);
            return -1;
        }
    }
    free(taken);
    cb_conn **old = c->conns;
    int nold = c->nconns;
    for (uint32_t i = 0; i < n; i++) {
        if (src[i] >= 0) {
            fresh[i] = old[src[i]];
            old[src[i]] = NULL;
        } else if (src[i] == SRC_SEED) {
            fresh[i] = c->seed; /* adopt the bootstrap conn */
            c->seed = NULL;
            fresh[i]->fetch_config = 0;
        }
        cb_conn *conn = fresh[i];
        conn->index = (int)i;
        for (size_t q = 0; q < conn->queue.count; q++)
            conn->queue.items[(conn->queue.head + q) % conn->queue.cap]->server =
                (int16_t)i;
    }
    free(src);
    cb_clustermap_free(&c->map);
    c->map = *m;
    memset(m, 0, sizeof(*m));
    c->conns = fresh;
    c->nconns = (int)n;
    c->have_map = 1;
    if (build_ketama(c) != 0)
        cb_set_error(c, "out of memory building the ketama continuum");
    /* Nodes that left: their queued ops go to the new owners (or fail). */
    for (int i = 0; i < nold; i++) {
        if (!old[i])
            continue;
        bury(c, old[i]);
        cb_conn_fail(old[i], CBFFI_NETWORK_ERROR, "the node left the cluster map");
    }
    free(old);
    return 0;
}

int cb_cluster_apply_json(cbffi_client *c, const char *json, size_t n,
                          const char *host)
{
    cb_clustermap m;
    char err[200];
    int rc = cb_clustermap_parse(&m, json, n, host, err, sizeof(err));
    if (rc != CB_CM_OK) {
        cb_set_error(c, "%s", rc == CB_CM_ENOMEM ? "out of memory" : err);
        return -1;
    }
    if (m.nservers == 0 ||
        (m.locator == CB_CM_VBUCKET && m.nvbuckets == 0)) {
        cb_clustermap_free(&m);
        cb_set_error(c, "the cluster map has no servers or no vbuckets");
        return -1;
    }
    if (m.name && strcmp(m.name, c->cs.bucket) != 0) {
        cb_set_error(c, "got the map of bucket '%.100s', not '%.100s'", m.name,
                     c->cs.bucket);
        cb_clustermap_free(&m);
        return -1;
    }
    if (c->have_map && !cb_clustermap_is_newer(&c->map, &m)) {
        cb_clustermap_free(&m);
        return 0;
    }
    if (install(c, &m) != 0) {
        cb_clustermap_free(&m);
        cb_set_error(c, "out of memory applying a cluster map");
        return -1;
    }
    if (c->waitq)
        drain_waitq(c, CBFFI_OK);
    return 1;
}

/* ---- routing ------------------------------------------------------------------ */

static const char *pkt_key(const cb_op *op, size_t *nkey)
{
    const char *p = cb_buf_head(&op->pkt);
    *nkey = cb_get16(p + 2);
    return p + CB_HEADER_LEN + (uint8_t)p[4];
}

/* The server index for op now, or -1. */
static int server_for(cbffi_client *c, cb_op *op)
{
    if (op->route == CB_ROUTE_FIXED)
        return op->server >= 0 && op->server < c->nconns ? op->server : -1;
    if (c->map.locator == CB_CM_KETAMA) {
        size_t nkey;
        const char *key = pkt_key(op, &nkey);
        if (c->nconns == 1)
            return 0;
        return cb_ketama_lookup(&c->ketama, cb_ketama_hash(&c->ketama, key, nkey));
    }
    if (op->vb_header) {
        size_t nkey;
        const char *key = pkt_key(op, &nkey);
        op->vb = (uint16_t)cb_vbucket_of(key, nkey, c->map.nvbuckets);
    }
    int s = cb_clustermap_vb_server(&c->map, op->vb, op->replica);
    return s < c->nconns ? s : -1;
}

void cb_cluster_retry_at(cbffi_client *c, cb_op *op, uint64_t when)
{
    op->refs++;
    op->retry_at = when;
    op->rnext = c->retryq;
    c->retryq = op;
    if (when < c->next_retry)
        c->next_retry = when;
}

static void fail_child(cbffi_client *c, cb_op *op, int rc)
{
    if (op->op == CB_OP_PROBE)
        cb_dur_probe_failed(c, op, rc);
    else
        cb_child_finish(c, op, rc);
}

void cb_cluster_dispatch(cbffi_client *c, cb_op *op)
{
    if (op->done)
        return;
    if (!c->have_map) {
        waitq_push(c, op);
        bootstrap_begin(c);
        return;
    }
    if (op->op == CBFFI_OP_QUERY) { /* an HTTP request: query.c */
        cb_query_dispatch(c, op);
        return;
    }
    int s = server_for(c, op);
    if (s < 0 && op->parent) {
        fail_child(c, op, CBFFI_NO_MATCHING_SERVER);
        return;
    }
    if (s < 0) {
        /* No node owns the vbucket now (failover in progress?): wait for a
           newer map until the deadline. */
        if (!op->last_rc)
            op->last_rc = CBFFI_NO_MATCHING_SERVER;
        cb_cluster_refresh(c, NULL);
        cb_cluster_retry_at(c, op, cb_now() + NMV_RETRY_DELAY);
        return;
    }
    if (cb_conn_enqueue_pkt(c->conns[s], op) == 0)
        return;
    if (op->parent)
        fail_child(c, op, CBFFI_CLIENT_ENOMEM);
    else
        cb_op_fail(c, op, CBFFI_CLIENT_ENOMEM, s);
}

void cb_cluster_run_retries(cbffi_client *c, uint64_t now)
{
    if (now < c->next_retry)
        return;
    cb_op *op = c->retryq;
    c->retryq = NULL;
    c->next_retry = UINT64_MAX;
    while (op) {
        cb_op *next = op->rnext;
        op->rnext = NULL;
        if (op->done) {
            cb_op_unref(c, op);
        } else if (op->retry_at > now) {
            op->rnext = c->retryq;
            c->retryq = op;
            if (op->retry_at < c->next_retry)
                c->next_retry = op->retry_at;
        } else {
            if (op->dur_wait)
                cb_dur_next_round(c, op);
            else
                cb_cluster_dispatch(c, op);
            cb_op_unref(c, op);
        }
        op = next;
    }
    if (c->refresh_wanted) {
        uint64_t due = c->last_refresh + REFRESH_INTERVAL;
        if (due <= now)
            cb_cluster_refresh(c, NULL);
        else if (due < c->next_retry)
            c->next_retry = due;
    }
}

uint64_t cb_cluster_next_timer(cbffi_client *c)
{
    uint64_t t = c->next_retry;
    if (c->seed && c->seed->state != CB_CONN_IDLE &&
        c->seed->connect_deadline < t && c->seed->state != CB_CONN_CONNECTED)
        t = c->seed->connect_deadline;
    return t;
}

/* ---- config refresh -------------------------------------------------------------- */

void cb_cluster_refresh(cbffi_client *c, const cb_conn *avoid)
{
    if (!c->have_map || c->nconns == 0)
        return;
    uint64_t now = cb_now();
    if (c->last_refresh && now < c->last_refresh + REFRESH_INTERVAL) {
        c->refresh_wanted = 1; /* cb_cluster_run_retries sends it later */
        if (c->last_refresh + REFRESH_INTERVAL < c->next_retry)
            c->next_retry = c->last_refresh + REFRESH_INTERVAL;
        return;
    }
    c->refresh_wanted = 0;
    cb_conn *pick = NULL;
    for (int k = 0; k < c->nconns && !pick; k++) {
        cb_conn *conn = c->conns[(c->refresh_rr + 1 + k + c->nconns) % c->nconns];
        if (conn != avoid && conn->state == CB_CONN_CONNECTED)
            pick = conn;
    }
    for (int k = 0; k < c->nconns && !pick; k++)
        if (c->conns[k] != avoid)
            pick = c->conns[k];
    if (!pick)
        pick = c->conns[0];
    c->refresh_rr = pick->index;
    c->last_refresh = now;
    cb_op *op = cb_op_new(c, CB_OP_CONFIG, 0);
    if (!op)
        return;
    op->internal = 1;
    op->route = CB_ROUTE_FIXED;
    op->server = (int16_t)pick->index;
    cb_req req = {.opcode = CB_CMD_GET_CLUSTER_CONFIG};
    op->refs = 1; /* ours, until queued */
    if (cb_encode(&op->pkt, &req) == 0)
        cb_cluster_dispatch(c, op);
    cb_op_unref(c, op);
}

void cb_cluster_refresh_done(cbffi_client *c)
{
    uint64_t now = cb_now();
    for (cb_op *op = c->retryq; op; op = op->rnext) {
        if (op->await_refresh) {
            op->await_refresh = 0;
            op->retry_at = now;
            c->next_retry = now;
        }
    }
}

/* ---- answers that are not final ---------------------------------------------------- */

static int is_temporary(uint16_t st)
{
    return st == CB_ST_ETMPFAIL || st == CB_ST_EBUSY || st == CB_ST_ENOMEM ||
           st == CB_ST_NOT_INITIALIZED || st == CB_ST_SYNC_WRITE_IN_PROGRESS ||
           st == 0xa4 /* SYNC_WRITE_RE_COMMIT_IN_PROGRESS */;
}

/* Try the next replica of a first-available replica read; 1 if there is
   one. */
static int next_replica(cbffi_client *c, cb_op *op)
{
    if (!op->replica_any || op->replica >= c->map.nreplicas)
        return 0;
    op->replica++;
    cb_cluster_dispatch(c, op);
    return 1;
}

int cb_cluster_on_status(cbffi_client *c, cb_conn *conn, cb_op *op,
                         const cb_resp *r)
{
    uint64_t now = cb_now();
    if (r->status == CB_ST_NOT_MY_VBUCKET) {
        if (r->nvalue)
            cb_cluster_apply_json(c, r->value, r->nvalue, conn->host);
        /* Straight to the new owner if the map (this reply's, or one applied
           before it) names another node; otherwise wait for a newer map. */
        int s = server_for(c, op);
        if (s >= 0 && c->conns[s] != conn) {
            cb_cluster_retry_at(c, op, now);
        } else {
            cb_cluster_refresh(c, NULL);
            cb_cluster_retry_at(c, op, now + NMV_RETRY_DELAY);
        }
        return 1;
    }
    if (op->op == CBFFI_OP_GET_REPLICA && next_replica(c, op))
        return 1;
    if (!is_temporary(r->status))
        return 0;
    /* Without XERROR a locked key reads as ETMPFAIL: for GETL and UNLOCK
       that is the answer (2.x: TemporaryFailError), not a reason to wait. */
    if (op->cmd == CB_CMD_GET_LOCKED || op->cmd == CB_CMD_UNLOCK_KEY)
        return 0;
    uint64_t backoff = (uint64_t)TMPFAIL_BACKOFF_FIRST << (op->retries < 16 ? op->retries : 16);
    if (backoff > TMPFAIL_BACKOFF_MAX)
        backoff = TMPFAIL_BACKOFF_MAX;
    if (now + backoff >= op->deadline)
        return 0; /* no time left: report the failure itself */
    op->retries++;
    op->last_rc = cb_status_to_rc(r->status, cb_is_mutation(op->op));
    cb_cluster_retry_at(c, op, now + backoff);
    return 1;
}

static int idempotent(const cb_op *op)
{
    return op->cmd == CB_CMD_GET || op->cmd == CB_CMD_GETQ ||
           op->cmd == CB_CMD_GET_REPLICA || op->cmd == CB_CMD_OBSERVE ||
           op->cmd == CB_CMD_SUBDOC_MULTI_LOOKUP;
}

void cb_cluster_on_conn_lost(cbffi_client *c, cb_conn *conn, cb_op *op,
                             int rc, int sent)
{
    if (op->internal && !op->parent) {
        cb_cluster_refresh_done(c); /* a failed refresh: stop waiting */
        return;
    }
    if (op->parent) {
        fail_child(c, op, rc);
        return;
    }
    if (op->done)
        return;
    /* Never twice: a mutation that may have reached the server is not sent
       again, not even to the new owner of a node that left the map. */
    if ((conn->retired && (!sent || idempotent(op))) ||
        (conn->was_ready && (!sent || idempotent(op)) && op->retries < 8)) {
        op->retries++;
        cb_cluster_retry_at(c, op, conn->retired ? cb_now()
                                                 : cb_now() + LOST_RETRY_DELAY);
        return;
    }
    if (op->op == CBFFI_OP_GET_REPLICA && next_replica(c, op))
        return;
    if (!sent && op->retries == 0) {
        /* The node could not be reached: the map may have moved on (a
           failover).  Ask, and route once more when the answer is in; the
           same node again fails fast. */
        op->retries++;
        op->await_refresh = 1;
        cb_cluster_retry_at(c, op, cb_now() + REFRESH_WAIT);
        return;
    }
    cb_op_fail(c, op, rc, conn->index);
}
