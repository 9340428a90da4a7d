/*
 * http.c - bootstrap over the REST port (PROTOCOL.md 5.1): one
 * GET /pools/default/b/<bucket> with basic auth, through libcurl's multi
 * "socket" interface, driven by the same host-loop calls as the KV conns:
 * libcurl says which sockets to watch (reported through the watch-change
 * queue like any conn's), cbffi_io_event hands their readiness back, and
 * libcurl's timer is one more deadline for cbffi_io_deadline / _tick.
 *
 * The reply's config is applied as a CCCP one would be ($HOST is the REST
 * host); 401 means wrong credentials, 404 an unknown bucket.  Afterwards
 * the KV conns refresh the map over CCCP.
 *
 * Timeouts: a bootstrap attempt has the connect timeout (as a CCCP
 * attempt: connect + handshake + map), within the bootstrap op's own
 * deadline; a flush is an operation with the REST timeout
 * (CBFFI_TIMEOUT_HTTP), both as its pending deadline and as libcurl's.
 * At most MAX_REQS requests are in flight: past that cb_http_flush refuses
 * with CBFFI_EBUSY.  The sockets libcurl asks to watch are all kept track
 * of (a growable list): a socket the host watches but whose readiness we
 * dropped would stall its transfer until its timeout.
 *
 * Service requests (cb_http_service, for query.c): a POST of a body that
 * libcurl copies, with a Content-Type and no "Expect: 100-continue", that
 * is an operation: its status and body (at most max_bytes) complete the
 * op in one result; transport failures get their own typed rc.
 * cb_http_service_method (views.c) is the same with another method: GET
 * and DELETE without a body, PUT with one.  A stream's request (its op has
 * op->stream) hands the body to stream.c as it comes instead: the splitter
 * keeps the meta in the request's body buffer, the rows go to the stream,
 * and a full stream pauses the transfer (CURL_WRITEFUNC_PAUSE) until
 * stream.c resumes it (cb_http_resume); closing the stream cancels the
 * request (cb_http_cancel).
 *
 * TLS (couchbases:// or ssl=on): https only, to the map's mgmtSSL port
 * (flush) and the REST host's 18091 by default (bootstrap), with the KV
 * conns' settings: the same CA file (truststorepath / certpath, else
 * libcurl's default store), TLS 1.2 or later, no checks at all with
 * ssl=no_verify.  A certificate that fails verification is
 * CBFFI_SSL_CANTVERIFY, any other TLS failure CBFFI_SSL_ERROR.
 *
 * Ownership: cb_http belongs to the client (client->http); it owns the curl
 * multi and easy handles, the watched-socket list, and each request's URL,
 * host, header list and reply body.
 */
#include "client_private.h"

#include <curl/curl.h>
#include <stdio.h>

#if LIBCURL_VERSION_NUM < 0x075400
#error "libcbffi needs libcurl >= 7.84 (thread-safe curl_global_init, CURLOPT_PROTOCOLS_STR)"
#endif
#include <stdlib.h>
#include <string.h>

enum { MAX_REQS = 16 };

typedef enum { REQ_BOOTSTRAP = 1, REQ_FLUSH = 2, REQ_SERVICE = 3 } req_kind;

/* One HTTP request in flight. */
typedef struct cb_http_req {
    struct cb_http_req *next;
    CURL *easy;
    req_kind kind;
    cb_op *op;              /* REQ_FLUSH: the op it completes (one reference) */
    cb_buf body;
    char *host;             /* the host asked, for $HOST (whole: a cut name
                               would become the servers' names) */
    int too_big;
    size_t max_bytes;       /* the body's cap; 0 = CB_CM_MAX_BYTES */
    struct curl_slist *headers; /* REQ_SERVICE: Content-Type, no Expect */
} cb_http_req;

struct cb_http {
    CURLM *multi;
    cb_http_req *reqs;
    uint64_t timer;         /* libcurl's deadline, UINT64_MAX = none */
    int *fds;               /* sockets libcurl asked us to watch */
    int nfds, capfds;
    int nreqs;
};

/* Track fd (events != 0) or forget it; -1 if out of memory (nothing
   changed). */
static int watch(cbffi_client *c, int fd, uint32_t events)
{
    cb_http *h = c->http;
    int i = 0, added = 0;
    while (i < h->nfds && h->fds[i] != fd)
        i++;
    if (events == 0) {
        if (i < h->nfds)
            h->fds[i] = h->fds[--h->nfds];
    } else if (i == h->nfds) {
        if (h->nfds == h->capfds) {
            int cap = h->capfds ? 2 * h->capfds : 8;
            int *fds = realloc(h->fds, (size_t)cap * sizeof(*fds));
            if (!fds)
                return -1;
            h->fds = fds;
            h->capfds = cap;
        }
        h->fds[h->nfds++] = fd;
        added = 1;
    }
    if (cb_watch_push(c, fd, events) != 0 && events) {
        if (added) /* the host never hears of it: fail the transfer */
            h->nfds--;
        return -1;
    }
    return 0;
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp,
                     void *socketp)
{
    (void)easy;
    (void)socketp;
    cbffi_client *c = userp;
    uint32_t ev = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        ev |= CBFFI_IO_READ;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        ev |= CBFFI_IO_WRITE;
    /* -1: libcurl fails the transfer using s (CURLE_ABORTED_BY_CALLBACK) */
    return watch(c, (int)s, what == CURL_POLL_REMOVE ? 0 : ev);
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    cbffi_client *c = userp;
    c->http->timer = timeout_ms < 0 ? UINT64_MAX
                                    : cb_now() + (uint64_t)timeout_ms * 1000u;
    return 0;
}

/* A stream's body (stream.c): split as it comes, or paused for room. */
static size_t on_stream_body(cb_http_req *q, char *p, size_t len)
{
    long status = 0;
    curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status);
    switch (cb_stream_body(q->op->stream, &q->body, p, len, status,
                           q->max_bytes ? q->max_bytes : CB_CM_MAX_BYTES)) {
    case CB_STREAM_TOOK:
        return len;
    case CB_STREAM_PAUSE:
        return CURL_WRITEFUNC_PAUSE; /* libcurl keeps the chunk */
    default:
        return 0; /* aborts the transfer */
    }
}

static size_t on_body(char *p, size_t size, size_t n, void *userp)
{
    cb_http_req *q = userp;
    size_t len = size * n;
    if (q->op && q->op->done)
        return 0; /* its op ended (timed out, closed): stop reading */
    if (q->op && q->op->stream)
        return on_stream_body(q, p, len);
    if (cb_buf_size(&q->body) + len > (q->max_bytes ? q->max_bytes : CB_CM_MAX_BYTES)) {
        q->too_big = 1;
        return 0; /* aborts the transfer */
    }
    return cb_buf_append(&q->body, p, len) == 0 ? len : 0;
}

/* Unlink and free q (its op reference is the caller's business). */
static void end_request(cbffi_client *c, cb_http_req *q)
{
    cb_http *h = c->http;
    cb_http_req **pp = &h->reqs;
    while (*pp && *pp != q)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = q->next;
        h->nreqs--;
    }
    curl_multi_remove_handle(h->multi, q->easy);
    curl_easy_cleanup(q->easy);
    curl_slist_free_all(q->headers);
    cb_buf_free(&q->body);
    free(q->host);
    free(q);
}

void cb_http_free(cbffi_client *c)
{
    cb_http *h = c->http;
    if (!h)
        return;
    while (h->reqs) {
        cb_op *op = h->reqs->op;
        end_request(c, h->reqs);
        if (op)
            cb_op_unref(c, op);
    }
    curl_multi_cleanup(h->multi);
    curl_global_cleanup();
    free(h->fds);
    free(h);
    c->http = NULL;
}

int cb_http_active(const cbffi_client *c)
{
    return c->http && c->http->reqs;
}

int cb_http_bootstrapping(const cbffi_client *c)
{
    if (!c->http)
        return 0;
    for (const cb_http_req *q = c->http->reqs; q; q = q->next)
        if (q->kind == REQ_BOOTSTRAP)
            return 1;
    return 0;
}

int cb_http_watching(const cbffi_client *c)
{
    return c->http && c->http->nfds > 0;
}

int cb_http_owns_fd(const cbffi_client *c, int fd)
{
    if (!c->http)
        return 0;
    for (int i = 0; i < c->http->nfds; i++)
        if (c->http->fds[i] == fd)
            return 1;
    return 0;
}

uint64_t cb_http_timer(const cbffi_client *c)
{
    return cb_http_active(c) ? c->http->timer : UINT64_MAX;
}

/* The transport settings every request shares: http or https, and TLS's. */
static void transport_opts(cbffi_client *c, CURL *e)
{
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, c->cs.tls ? "https" : "http");
    if (!c->cs.tls)
        return;
    curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (c->cs.tls == CB_TLS_NO_VERIFY) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (c->cs.ca_file) {
        curl_easy_setopt(e, CURLOPT_CAINFO, c->cs.ca_file);
    }
}

/* A TLS failure's rc, or 0 if code is not one. */
static int tls_rc(CURLcode code)
{
    switch (code) {
    case CURLE_PEER_FAILED_VERIFICATION:
        return CBFFI_SSL_CANTVERIFY;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_USE_SSL_FAILED:
        return CBFFI_SSL_ERROR;
    default:
        return 0;
    }
}

/* The rc for a finished transfer, before looking at the body. */
static int transfer_rc(cbffi_client *c, cb_http_req *q, CURLcode code, long status)
{
    const char *what = q->kind == REQ_BOOTSTRAP ? "REST bootstrap" : "REST flush";
    if (code == CURLE_OPERATION_TIMEDOUT) {
        cb_set_error(c, "%s: %s timed out", q->host, what);
        return CBFFI_ETIMEDOUT;
    }
    if (code == CURLE_COULDNT_RESOLVE_HOST) {
        cb_set_error(c, "%s: cannot resolve host", q->host);
        return CBFFI_UNKNOWN_HOST;
    }
    if (tls_rc(code)) {
        cb_set_error(c, "%s: %s failed: %s", q->host, what,
                     curl_easy_strerror(code));
        return tls_rc(code);
    }
    if (code != CURLE_OK) {
        cb_set_error(c, "%s: %s failed: %s", q->host, what,
                     q->too_big ? "reply too large" : curl_easy_strerror(code));
        return q->too_big ? CBFFI_PROTOCOL_ERROR : CBFFI_CONNECT_ERROR;
    }
    if (status == 200)
        return CBFFI_OK;
    cb_set_error(c, "%s: %s: HTTP %ld%s%.*s", q->host, what, status,
                 cb_buf_size(&q->body) ? ": " : "",
                 (int)(cb_buf_size(&q->body) > 120 ? 120 : cb_buf_size(&q->body)),
                 cb_buf_head(&q->body));
    if (status == 401 || status == 403)
        return CBFFI_AUTH_ERROR;
    if (status == 404)
        return CBFFI_BUCKET_ENOENT;
    if (status == 400 && q->kind == REQ_FLUSH)
        return CBFFI_NOT_SUPPORTED; /* flush is not enabled on the bucket */
    return CBFFI_PROTOCOL_ERROR;
}

static void finish_service(cbffi_client *c, cb_http_req *q, CURLcode code,
                           long status);

/* The transfer finished (or failed): apply the config / complete the op. */
static void finish(cbffi_client *c, cb_http_req *q, CURLcode code)
{
    long status = 0;
    curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status);
    int rc = transfer_rc(c, q, code, status);
    if (q->kind == REQ_SERVICE) {
        finish_service(c, q, code, status);
        return;
    }
    if (q->kind == REQ_BOOTSTRAP) {
        if (rc == CBFFI_OK &&
            cb_cluster_apply_json(c, cb_buf_head(&q->body), cb_buf_size(&q->body),
                                  q->host) < 0)
            rc = CBFFI_PROTOCOL_ERROR;
        end_request(c, q);
        if (rc != CBFFI_OK)
            cb_cluster_seed_failed(c, rc);
        return;
    }
    cb_op *op = q->op;
    end_request(c, q);
    cb_op_fail(c, op, rc, -1); /* completes it, rc OK included */
    cb_op_unref(c, op);
}

static void check_done(cbffi_client *c)
{
    CURLMsg *m;
    int left;
    while (c->http && (m = curl_multi_info_read(c->http->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        for (cb_http_req *q = c->http->reqs; q; q = q->next) {
            if (q->easy == m->easy_handle) {
                finish(c, q, m->data.result);
                break;
            }
        }
    }
}

void cb_http_on_event(cbffi_client *c, int fd, uint32_t events)
{
    int running = 0, mask = 0;
    if (events & CBFFI_IO_READ)
        mask |= CURL_CSELECT_IN;
    if (events & CBFFI_IO_WRITE)
        mask |= CURL_CSELECT_OUT;
    curl_multi_socket_action(c->http->multi, fd, mask, &running);
    check_done(c);
}

void cb_http_tick(cbffi_client *c, uint64_t now)
{
    /* Requests whose op timed out are abandoned. */
    for (cb_http_req *q = c->http ? c->http->reqs : NULL, *next; q; q = next) {
        next = q->next;
        if (q->op && q->op->done) {
            cb_op *op = q->op;
            end_request(c, q);
            cb_op_unref(c, op);
        }
    }
    if (!cb_http_active(c) || now < c->http->timer)
        return;
    int running = 0;
    c->http->timer = UINT64_MAX;
    curl_multi_socket_action(c->http->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

static int setup_multi(cbffi_client *c)
{
    if (c->http)
        return 0;
    cb_http *h = calloc(1, sizeof(*h));
    if (!h)
        return -1;
    /* Reference counted and thread-safe since libcurl 7.84 (Debian 12 has
       7.88); paired with the cleanup in cb_http_free. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(h);
        return -1;
    }
    h->timer = UINT64_MAX;
    h->multi = curl_multi_init();
    if (!h->multi) {
        curl_global_cleanup();
        free(h);
        return -1;
    }
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, c);
    c->http = h;
    return 0;
}

/* Start a request for url (POST if post); q is linked in on success. */
static int start(cbffi_client *c, cb_http_req *q, const char *url, int post,
                 uint64_t timeout_us)
{
    CURL *e = curl_easy_init();
    if (!e)
        return CBFFI_CLIENT_ENOMEM;
    long timeout_ms = (long)(timeout_us / 1000u);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    transport_opts(c, e);
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(e, CURLOPT_USERNAME, c->username);
    curl_easy_setopt(e, CURLOPT_PASSWORD, c->password);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, q);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "couchbase-ffi/0.1.0");
    if (post)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    if (curl_multi_add_handle(c->http->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        return CBFFI_CLIENT_ENOMEM;
    }
    q->easy = e;
    q->next = c->http->reqs;
    c->http->reqs = q;
    c->http->nreqs++;
    return CBFFI_OK;
}

/* The URL into url[0..n): CBFFI_OK, CBFFI_CLIENT_ENOMEM, or
   CBFFI_NOT_SUPPORTED (as for a map without a REST port) if it does not
   fit: a map may name a REST host of several KiB. */
static int format_url(cbffi_client *c, char *url, size_t n, const char *host,
                      int ipv6, uint16_t port, const char *fmt, const char *bucket)
{
    char *b = curl_easy_escape(NULL, bucket, 0);
    if (!b)
        return CBFFI_CLIENT_ENOMEM;
    int len = snprintf(url, n, "%s://%s%s%s:%u", c->cs.tls ? "https" : "http",
                       ipv6 ? "[" : "", host, ipv6 ? "]" : "", (unsigned)port);
    int len2 = len >= 0 && (size_t)len < n
                   ? snprintf(url + len, n - (size_t)len, fmt, b) : -1;
    curl_free(b);
    if (len2 < 0 || (size_t)len + (size_t)len2 >= n) {
        cb_set_error(c, "REST URL for host '%.40s...' too long", host);
        return CBFFI_NOT_SUPPORTED;
    }
    return CBFFI_OK;
}

int cb_http_start(cbffi_client *c, const char *host, int ipv6, uint16_t port)
{
    if (setup_multi(c) != 0)
        return CBFFI_CLIENT_ENOMEM;
    cb_http_req *q = calloc(1, sizeof(*q));
    char url[700];
    if (!q)
        return CBFFI_CLIENT_ENOMEM;
    int rc = format_url(c, url, sizeof url, host, ipv6, port,
                        "/pools/default/b/%s", c->cs.bucket);
    if (rc != CBFFI_OK) {
        free(q);
        return rc;
    }
    q->kind = REQ_BOOTSTRAP;
    q->host = strdup(host);
    rc = q->host ? start(c, q, url, 0, c->connect_timeout) : CBFFI_CLIENT_ENOMEM;
    if (rc != CBFFI_OK) {
        free(q->host);
        free(q);
    }
    return rc;
}

int cb_http_flush(cbffi_client *c, uint64_t cookie)
{
    const cb_cm_node_ext *node = NULL;
    cb_cm_service mgmt = c->cs.tls ? CB_SVC_MGMT_SSL : CB_SVC_MGMT;
    for (uint32_t i = 0; i < c->map.nnodes_ext && !node; i++)
        if (c->map.nodes_ext[i].ports[mgmt])
            node = &c->map.nodes_ext[i];
    if (!node || !node->hostname) {
        cb_set_error(c, "flush needs the REST port, and the map lists none");
        return CBFFI_NOT_SUPPORTED;
    }
    if (setup_multi(c) != 0)
        return CBFFI_CLIENT_ENOMEM;
    if (c->http->nreqs >= MAX_REQS) {
        cb_set_error(c, "%d REST requests are in flight already", MAX_REQS);
        return CBFFI_EBUSY;
    }
    cb_http_req *q = calloc(1, sizeof(*q));
    char url[700];
    if (!q)
        return CBFFI_CLIENT_ENOMEM;
    int rc = format_url(c, url, sizeof url, node->hostname, node->ipv6,
                        node->ports[mgmt],
                        "/pools/default/buckets/%s/controller/doFlush",
                        c->cs.bucket);
    if (rc != CBFFI_OK) {
        free(q);
        return rc;
    }
    cb_op *op = cb_op_new(c, CBFFI_OP_FLUSH, cookie);
    if (!op) {
        free(q);
        return CBFFI_CLIENT_ENOMEM;
    }
    q->kind = REQ_FLUSH;
    q->op = op;
    op->refs = 1; /* the request's */
    q->host = strdup(node->hostname);
    rc = q->host ? start(c, q, url, 1, c->http_timeout) : CBFFI_CLIENT_ENOMEM;
    if (rc != CBFFI_OK) {
        free(q->host);
        free(q);
        op->refs = 1;
        cb_op_unref(c, op);
        return rc;
    }
    cb_pending_add(c, op, c->http_timeout);
    return CBFFI_OK;
}

/* ---- requests to cluster services (query.c, views.c) ------------------------- */

int cb_http_service_count(const cbffi_client *c)
{
    int n = 0;
    if (c->http)
        for (const cb_http_req *q = c->http->reqs; q; q = q->next)
            n += q->kind == REQ_SERVICE;
    return n;
}

/* A service request ended: its rc from libcurl's outcome and the status. */
static int service_rc(cbffi_client *c, cb_http_req *q, CURLcode code, long status)
{
    if (tls_rc(code)) {
        cb_set_error(c, "%s: %s", q->host, curl_easy_strerror(code));
        return tls_rc(code);
    }
    switch (code) {
    case CURLE_OK:
        break;
    case CURLE_OPERATION_TIMEDOUT:
        cb_set_error(c, "%s: no complete response within the timeout", q->host);
        return CBFFI_ETIMEDOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
        cb_set_error(c, "%s: cannot resolve host", q->host);
        return CBFFI_UNKNOWN_HOST;
    case CURLE_COULDNT_CONNECT:
        cb_set_error(c, "%s: cannot connect: %s", q->host, curl_easy_strerror(code));
        return CBFFI_CONNECT_ERROR;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL: /* an HTTP/0.9 "reply": not HTTP */
    case CURLE_BAD_CONTENT_ENCODING:
        cb_set_error(c, "%s: not an HTTP response: %s", q->host, curl_easy_strerror(code));
        return CBFFI_PROTOCOL_ERROR;
    default:
        if (q->too_big) {
            cb_set_error(c, "%s: response larger than %zu bytes (http_max_response)",
                         q->host, q->max_bytes);
            return CBFFI_E2BIG;
        }
        cb_set_error(c, "%s: the response did not arrive whole: %s", q->host,
                     curl_easy_strerror(code));
        return CBFFI_NETWORK_ERROR;
    }
    if (status >= 200 && status < 300)
        return CBFFI_OK;
    cb_set_error(c, "%s: HTTP %ld%s%.*s", q->host, status,
                 cb_buf_size(&q->body) ? ": " : "",
                 (int)(cb_buf_size(&q->body) > 160 ? 160 : cb_buf_size(&q->body)),
                 cb_buf_head(&q->body));
    return status == 401 || status == 403 ? CBFFI_AUTH_ERROR : CBFFI_HTTP_ERROR;
}

static void finish_service(cbffi_client *c, cb_http_req *q, CURLcode code,
                           long status)
{
    int rc = service_rc(c, q, code, status);
    cb_op *op = q->op;
    /* the status and body of a response that arrived whole, else none */
    int whole = code == CURLE_OK;
    if (op->stream) { /* the splitter's verdict on the body, if it failed */
        int v = cb_stream_verdict(c, op->stream, q->host, rc, whole);
        if (v != rc)
            whole = 0;
        rc = v;
    }
    cbffi_result r;
    memset(&r, 0, sizeof(r));
    r.cookie = op->cookie;
    r.rc = rc;
    r.op = op->op;
    r.server = -1;
    r.final = 1;
    r.status = whole && status > 0 && status < 1000 ? (uint16_t)status : 0;
    /* the body is copied into the result arena before q is freed */
    cb_op_complete(c, op, &r, whole ? cb_buf_head(&q->body) : NULL,
                   whole ? cb_buf_size(&q->body) : 0);
    end_request(c, q);
    cb_op_unref(c, op);
}

void cb_http_cancel(cbffi_client *c, cb_op *op)
{
    for (cb_http_req *q = c->http ? c->http->reqs : NULL; q; q = q->next) {
        if (q->op == op) {
            end_request(c, q);
            cb_op_unref(c, op);
            return;
        }
    }
}

void cb_http_resume(cbffi_client *c, cb_op *op)
{
    for (cb_http_req *q = c->http ? c->http->reqs : NULL; q; q = q->next) {
        if (q->op == op) {
            /* libcurl hands the held-back chunk to on_body from in here,
               and sets its timer to run the transfer at once */
            curl_easy_pause(q->easy, CURLPAUSE_CONT);
            return;
        }
    }
}

int cb_http_service(cbffi_client *c, cb_op *op, const char *url,
                    const char *host, const char *body, size_t nbody,
                    const char *ctype, uint64_t timeout_us, size_t max_bytes)
{
    return cb_http_service_method(c, op, "POST", url, host, body, nbody, ctype,
                                  timeout_us, max_bytes);
}

int cb_http_service_method(cbffi_client *c, cb_op *op, const char *method,
                           const char *url, const char *host, const char *body,
                           size_t nbody, const char *ctype, uint64_t timeout_us,
                           size_t max_bytes)
{
    /* GET and DELETE send no body (nor a Content-Type); POST and PUT do */
    int has_body = strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0;
    if (setup_multi(c) != 0)
        return CBFFI_CLIENT_ENOMEM;
    cb_http_req *q = calloc(1, sizeof(*q));
    if (!q)
        return CBFFI_CLIENT_ENOMEM;
    char ct[96];
    snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
    struct curl_slist *h = curl_slist_append(NULL, has_body ? ct : "Accept: application/json");
    struct curl_slist *h2 = h ? curl_slist_append(h, "Expect:") : NULL;
    q->host = strdup(host);
    if (!h2 || !q->host) {
        curl_slist_free_all(h2 ? h2 : h);
        free(q->host);
        free(q);
        return CBFFI_CLIENT_ENOMEM;
    }
    q->headers = h2;
    q->kind = REQ_SERVICE;
    q->op = op;
    q->max_bytes = max_bytes;
    CURL *e = curl_easy_init();
    if (!e) {
        curl_slist_free_all(q->headers);
        free(q->host);
        free(q);
        return CBFFI_CLIENT_ENOMEM;
    }
    long timeout_ms = (long)(timeout_us / 1000u);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    transport_opts(c, e);
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(e, CURLOPT_USERNAME, c->username ? c->username : "");
    curl_easy_setopt(e, CURLOPT_PASSWORD, c->password ? c->password : "");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, q);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "couchbase-ffi/0.1.0");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, q->headers);
    CURLcode set = CURLE_OK;
    if (has_body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)nbody);
        set = curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, nbody ? body : "");
        if (set == CURLE_OK && strcmp(method, "POST") != 0)
            set = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") == 0) {
        set = curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        set = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    if (set != CURLE_OK ||
        curl_multi_add_handle(c->http->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        curl_slist_free_all(q->headers);
        free(q->host);
        free(q);
        return CBFFI_CLIENT_ENOMEM;
    }
    q->easy = e;
    q->next = c->http->reqs;
    c->http->reqs = q;
    c->http->nreqs++;
    op->refs++; /* the request's */
    return CBFFI_OK;
}
