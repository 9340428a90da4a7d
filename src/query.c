/*
 * query.c - N1QL: cbffi_query schedules one POST /query/service to a node
 * whose nodesExt entry has a "n1ql" port (PROTOCOL.md 5.2, 8.2; with TLS
 * the "n1qlSSL" port, over https), the query nodes taken in turn.  The
 * request itself is an http.c service request on
 * the same host loop as everything else; its response (HTTP status and
 * body) is the op's one result.
 *
 * An op is a CBFFI_OP_QUERY cb_op on the pending list (deadline: the query
 * timeout) whose kept packet (op->pkt) is the request body.  It goes
 * through cb_cluster_dispatch like a KV op, so that before the first
 * cluster map it waits for one (and fails with the bootstrap's rc); with a
 * map, cluster.c hands it to cb_query_dispatch, which picks the node and
 * starts the HTTP request with the time left until the op's deadline.  A
 * deadline that passes first ends the op with CBFFI_ETIMEDOUT (cb_expire)
 * and http.c abandons the request.
 *
 * cbffi_query_stream is the same request with a stream attached to the op
 * (stream.c): the response's rows go to the stream as they arrive, and so
 * does the final result.
 *
 * Ownership: the body is the op's (op->pkt, freed with the op); the HTTP
 * request holds one op reference while it runs (http.c), the stream one
 * until the request ends (stream.c).
 */
#include "client_private.h"

#include <stdio.h>
#include <string.h>

enum {
    QUERY_MAX_INFLIGHT = 64,
    QUERY_MAX_BODY = 20 * 1024 * 1024
};

/* The query service's port: n1qlSSL over TLS (https), else n1ql. */
static cb_cm_service query_svc(const cbffi_client *c)
{
    return c->cs.tls ? CB_SVC_N1QL_SSL : CB_SVC_N1QL;
}

/* The next query node (round-robin), or NULL if the map lists none. */
static const cb_cm_node_ext *pick_node(cbffi_client *c)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->map.nnodes_ext; i++)
        if (c->map.nodes_ext[i].ports[query_svc(c)] && c->map.nodes_ext[i].hostname)
            n++;
    if (n == 0)
        return NULL;
    uint32_t want = c->query_rr++ % n;
    for (uint32_t i = 0; i < c->map.nnodes_ext; i++) {
        const cb_cm_node_ext *ne = &c->map.nodes_ext[i];
        if (ne->ports[query_svc(c)] && ne->hostname && want-- == 0)
            return ne;
    }
    return NULL;
}

static int no_query_node(cbffi_client *c)
{
    cb_set_error(c, "no node of the cluster runs the query service "
                    "(no \"%s\" port in the map's nodesExt)",
                 c->cs.tls ? "n1qlSSL" : "n1ql");
    return CBFFI_NOT_SUPPORTED;
}

void cb_query_dispatch(cbffi_client *c, cb_op *op)
{
    if (op->done)
        return;
    const cb_cm_node_ext *ne = pick_node(c);
    if (!ne) {
        cb_op_fail(c, op, no_query_node(c), -1);
        return;
    }
    if (cb_http_service_count(c) >= QUERY_MAX_INFLIGHT) {
        cb_set_error(c, "%d N1QL requests are in flight already", QUERY_MAX_INFLIGHT);
        cb_op_fail(c, op, CBFFI_EBUSY, -1);
        return;
    }
    char url[700];
    int len = snprintf(url, sizeof url, "%s://%s%s%s:%u/query/service",
                       c->cs.tls ? "https" : "http",
                       ne->ipv6 ? "[" : "", ne->hostname, ne->ipv6 ? "]" : "",
                       (unsigned)ne->ports[query_svc(c)]);
    if (len < 0 || (size_t)len >= sizeof url) {
        cb_set_error(c, "query node name '%.40s...' too long", ne->hostname);
        cb_op_fail(c, op, CBFFI_NOT_SUPPORTED, -1);
        return;
    }
    uint64_t now = cb_now();
    uint64_t left = op->deadline > now ? op->deadline - now : 1000;
    int rc = cb_http_service(c, op, url, ne->hostname, cb_buf_head(&op->pkt),
                             cb_buf_size(&op->pkt), "application/json", left,
                             c->http_max_response);
    if (rc != CBFFI_OK) {
        cb_set_error(c, "out of memory starting a N1QL request");
        cb_op_fail(c, op, rc, -1);
    }
}

/* cbffi_query, or with `s` (not NULL) cbffi_query_stream's request. */
static int schedule(cbffi_client *c, const char *body, size_t nbody,
                    uint64_t timeout_us, uint64_t cookie, cbffi_stream *s)
{
    if (c->type != CBFFI_TYPE_COUCHBASE) {
        cb_set_error(c, "N1QL needs a couchbase:// cluster");
        return CBFFI_NOT_SUPPORTED;
    }
    if (!body || nbody == 0) {
        cb_set_error(c, "empty N1QL request body");
        return CBFFI_EINVAL;
    }
    if (nbody > QUERY_MAX_BODY) {
        cb_set_error(c, "N1QL request body of %zu bytes is over %d bytes", nbody,
                     QUERY_MAX_BODY);
        return CBFFI_E2BIG;
    }
    if (c->have_map) {
        uint32_t n = 0;
        for (uint32_t i = 0; i < c->map.nnodes_ext; i++)
            n += c->map.nodes_ext[i].ports[query_svc(c)] && c->map.nodes_ext[i].hostname;
        if (n == 0)
            return no_query_node(c);
        if (cb_http_service_count(c) >= QUERY_MAX_INFLIGHT) {
            cb_set_error(c, "%d N1QL requests are in flight already", QUERY_MAX_INFLIGHT);
            return CBFFI_EBUSY;
        }
    }
    cb_op *op = cb_op_new(c, CBFFI_OP_QUERY, cookie);
    if (!op) {
        cb_set_error(c, "out of memory");
        return CBFFI_CLIENT_ENOMEM;
    }
    if (cb_buf_append(&op->pkt, body, nbody) != 0) {
        op->refs = 1;
        cb_op_unref(c, op);
        cb_set_error(c, "out of memory");
        return CBFFI_CLIENT_ENOMEM;
    }
    op->server = -1;
    cb_pending_add(c, op, timeout_us ? timeout_us : c->query_timeout);
    if (s)
        cb_stream_attach(c, s, op);
    op->refs++; /* ours, while dispatching */
    cb_cluster_dispatch(c, op);
    cb_op_unref(c, op);
    return CBFFI_OK;
}

int cbffi_query(cbffi_client *c, const char *body, size_t nbody,
                uint64_t timeout_us, uint64_t cookie)
{
    return schedule(c, body, nbody, timeout_us, cookie, NULL);
}

int cbffi_query_stream(cbffi_client *c, const char *body, size_t nbody,
                       uint64_t timeout_us, uint64_t cookie, cbffi_stream **out)
{
    int rc;
    cbffi_stream *s = cb_stream_begin(c, CBFFI_OP_QUERY, cookie, out, "cbffi_query_stream", &rc);
    if (!s)
        return rc;
    return cb_stream_finish(c, s, schedule(c, body, nbody, timeout_us, cookie, s), out);
}
