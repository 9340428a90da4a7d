/*
 * views.c - views and design documents: cbffi_view_request schedules one
 * HTTP request (GET, POST, PUT or DELETE) to <capi base>/<bucket><path>
 * (PROTOCOL.md 8.1).  The capi base is a nodesExt entry's "capi" port
 * (with TLS "capiSSL", over https), the nodes taken in turn; a map without
 * capi ports in nodesExt falls back to nodes[].couchApiBase (already
 * ".../<bucket>", plain http only).
 *
 * The machinery is query.c's: a CBFFI_OP_VIEW cb_op on the pending list
 * (deadline: the view timeout) goes through cb_cluster_dispatch, waits for
 * the first map if there is none, then cluster.c hands it to
 * cb_view_dispatch, which starts an http.c service request
 * (cb_http_service_method) with the time left.  The response's status and
 * body are the op's one result; the request limit is shared with N1QL.
 *
 * cbffi_view_stream: the same with a stream attached to the op (stream.c),
 * which receives the rows as they arrive and the final result.
 *
 * Ownership: op->pkt holds "<path>\0<body>" (the op's, freed with it);
 * op->cmd the cbffi_http_method.  The URL is built on the stack or heap
 * here and copied by libcurl; the HTTP request holds one op reference
 * while it runs (http.c).
 */
#include "client_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    VIEW_MAX_INFLIGHT = 64,        /* with N1QL's: cb_http_service_count */
    VIEW_MAX_PATH = 64 * 1024,
    VIEW_MAX_BODY = 20 * 1024 * 1024
};

static const char *const method_names[] = {"GET", "POST", "PUT", "DELETE"};

static cb_cm_service capi_svc(const cbffi_client *c)
{
    return c->cs.tls ? CB_SVC_CAPI_SSL : CB_SVC_CAPI;
}

static uint32_t count_ext(const cbffi_client *c)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->map.nnodes_ext; i++)
        n += c->map.nodes_ext[i].ports[capi_svc(c)] && c->map.nodes_ext[i].hostname;
    return n;
}

static uint32_t count_bases(const cbffi_client *c)
{
    uint32_t n = 0;
    if (c->cs.tls)
        return 0; /* couchApiBase is an http:// URL */
    for (uint32_t i = 0; i < c->map.nnodes; i++)
        n += c->map.nodes[i].couch_api_base != NULL;
    return n;
}

static int no_view_node(cbffi_client *c)
{
    cb_set_error(c, "no node of the cluster runs the view service (no \"%s\" port "
                    "in the map's nodesExt%s)",
                 c->cs.tls ? "capiSSL" : "capi", c->cs.tls ? "" : " and no couchApiBase");
    return CBFFI_NOT_SUPPORTED;
}

/* Percent-encode the bucket name into out (room for 3 * strlen + 1). */
static void escape_bucket(const char *b, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *b; b++) {
        unsigned char ch = (unsigned char)*b;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
            (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            *out++ = (char)ch;
        } else {
            *out++ = '%';
            *out++ = hex[ch >> 4];
            *out++ = hex[ch & 15];
        }
    }
    *out = '\0';
}

void cb_view_dispatch(cbffi_client *c, cb_op *op)
{
    if (op->done)
        return;
    uint32_t next = count_ext(c), nbase = next ? 0 : count_bases(c);
    if (next + nbase == 0) {
        cb_op_fail(c, op, no_view_node(c), -1);
        return;
    }
    if (cb_http_service_count(c) >= VIEW_MAX_INFLIGHT) {
        cb_set_error(c, "%d N1QL / view requests are in flight already", VIEW_MAX_INFLIGHT);
        cb_op_fail(c, op, CBFFI_EBUSY, -1);
        return;
    }
    const char *path = cb_buf_head(&op->pkt);
    size_t npath = strlen(path);
    const char *body = path + npath + 1;
    size_t nbody = cb_buf_size(&op->pkt) - npath - 1;
    uint32_t want = c->view_rr++ % (next + nbase);
    const char *host = NULL;
    char *url = NULL;
    if (next) {
        const cb_cm_node_ext *ne = NULL;
        for (uint32_t i = 0; i < c->map.nnodes_ext && !ne; i++) {
            const cb_cm_node_ext *e = &c->map.nodes_ext[i];
            if (e->ports[capi_svc(c)] && e->hostname && want-- == 0)
                ne = e;
        }
        size_t n = 40 + strlen(ne->hostname) + 3 * strlen(c->cs.bucket) + npath;
        char *bucket = malloc(3 * strlen(c->cs.bucket) + 1);
        url = bucket ? malloc(n) : NULL;
        if (url) {
            escape_bucket(c->cs.bucket, bucket);
            snprintf(url, n, "%s://%s%s%s:%u/%s%s", c->cs.tls ? "https" : "http",
                     ne->ipv6 ? "[" : "", ne->hostname, ne->ipv6 ? "]" : "",
                     (unsigned)ne->ports[capi_svc(c)], bucket, path);
        }
        free(bucket);
        host = ne->hostname;
    } else {
        const char *base = NULL;
        for (uint32_t i = 0; i < c->map.nnodes && !base; i++)
            if (c->map.nodes[i].couch_api_base && want-- == 0)
                base = c->map.nodes[i].couch_api_base;
        size_t n = strlen(base) + npath + 1;
        url = malloc(n);
        if (url)
            snprintf(url, n, "%s%s", base, path);
        host = base;
    }
    if (!url) {
        cb_set_error(c, "out of memory starting a view request");
        cb_op_fail(c, op, CBFFI_CLIENT_ENOMEM, -1);
        return;
    }
    uint64_t now = cb_now();
    uint64_t left = op->deadline > now ? op->deadline - now : 1000;
    int rc = cb_http_service_method(c, op, method_names[op->cmd], url, host, body, nbody,
                                    "application/json", left, c->http_max_response);
    free(url);
    if (rc != CBFFI_OK) {
        cb_set_error(c, "out of memory starting a view request");
        cb_op_fail(c, op, rc, -1);
    }
}

/* A path we send as it is: '/' first, printable ASCII without ' ' and '#'. */
static int path_ok(const char *p, size_t n)
{
    if (n == 0 || p[0] != '/')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '#')
            return 0;
    }
    return 1;
}

/* cbffi_view_request, or with `s` (not NULL) cbffi_view_stream's. */
static int schedule(cbffi_client *c, int method, const char *path, size_t npath,
                    const char *body, size_t nbody, uint64_t timeout_us,
                    uint64_t cookie, cbffi_stream *s)
{
    if (c->type != CBFFI_TYPE_COUCHBASE) {
        cb_set_error(c, "views need a couchbase:// cluster");
        return CBFFI_NOT_SUPPORTED;
    }
    if (method < CBFFI_HTTP_GET || method > CBFFI_HTTP_DELETE) {
        cb_set_error(c, "unknown HTTP method %d", method);
        return CBFFI_EINVAL;
    }
    if (npath > VIEW_MAX_PATH) {
        cb_set_error(c, "view path of %zu bytes is over %d bytes (POST the keys instead)",
                     npath, VIEW_MAX_PATH);
        return CBFFI_E2BIG;
    }
    if (!path || !path_ok(path, npath)) {
        cb_set_error(c, "a view path starts with '/' and holds printable ASCII only, "
                        "percent-encoded (no spaces, no '#')");
        return CBFFI_EINVAL;
    }
    if (nbody && !body) {
        cb_set_error(c, "view request body is NULL");
        return CBFFI_EINVAL;
    }
    if (nbody && (method == CBFFI_HTTP_GET || method == CBFFI_HTTP_DELETE)) {
        cb_set_error(c, "%s sends no body", method_names[method]);
        return CBFFI_EINVAL;
    }
    if (nbody > VIEW_MAX_BODY) {
        cb_set_error(c, "view request body of %zu bytes is over %d bytes", nbody,
                     VIEW_MAX_BODY);
        return CBFFI_E2BIG;
    }
    if (c->have_map) {
        if (count_ext(c) + count_bases(c) == 0)
            return no_view_node(c);
        if (cb_http_service_count(c) >= VIEW_MAX_INFLIGHT) {
            cb_set_error(c, "%d N1QL / view requests are in flight already",
                         VIEW_MAX_INFLIGHT);
            return CBFFI_EBUSY;
        }
    }
    cb_op *op = cb_op_new(c, CBFFI_OP_VIEW, cookie);
    if (!op) {
        cb_set_error(c, "out of memory");
        return CBFFI_CLIENT_ENOMEM;
    }
    if (cb_buf_append(&op->pkt, path, npath) != 0 ||
        cb_buf_append(&op->pkt, "", 1) != 0 ||
        (nbody && cb_buf_append(&op->pkt, body, nbody) != 0)) {
        op->refs = 1;
        cb_op_unref(c, op);
        cb_set_error(c, "out of memory");
        return CBFFI_CLIENT_ENOMEM;
    }
    op->cmd = (uint8_t)method;
    op->server = -1;
    cb_pending_add(c, op, timeout_us ? timeout_us : c->view_timeout);
    if (s)
        cb_stream_attach(c, s, op);
    op->refs++; /* ours, while dispatching */
    cb_cluster_dispatch(c, op);
    cb_op_unref(c, op);
    return CBFFI_OK;
}

int cbffi_view_request(cbffi_client *c, int method, const char *path, size_t npath,
                       const char *body, size_t nbody, uint64_t timeout_us,
                       uint64_t cookie)
{
    return schedule(c, method, path, npath, body, nbody, timeout_us, cookie, NULL);
}

int cbffi_view_stream(cbffi_client *c, int method, const char *path, size_t npath,
                      const char *body, size_t nbody, uint64_t timeout_us,
                      uint64_t cookie, cbffi_stream **out)
{
    int rc;
    cbffi_stream *s = cb_stream_begin(c, CBFFI_OP_VIEW, cookie, out, "cbffi_view_stream", &rc);
    if (!s)
        return rc;
    return cb_stream_finish(c, s,
                            schedule(c, method, path, npath, body, nbody, timeout_us, cookie, s),
                            out);
}
