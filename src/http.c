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
 * Ownership: cb_http belongs to the client (client->http); it owns the curl
 * multi and easy handles, the URL and the reply body.
 */
#include "client_private.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_SOCKS = 8 };

struct cb_http {
    CURLM *multi;
    CURL *easy;             /* the request in flight, or NULL */
    cb_buf body;
    char host[260];         /* the REST host asked, for $HOST */
    uint64_t timer;         /* libcurl's deadline, UINT64_MAX = none */
    int fds[MAX_SOCKS];     /* sockets libcurl asked us to watch */
    int nfds;
    int too_big;
};

static void watch(cbffi_client *c, int fd, uint32_t events)
{
    cb_http *h = c->http;
    int i = 0;
    while (i < h->nfds && h->fds[i] != fd)
        i++;
    if (events == 0) {
        if (i < h->nfds)
            h->fds[i] = h->fds[--h->nfds];
    } else if (i == h->nfds && h->nfds < MAX_SOCKS) {
        h->fds[h->nfds++] = fd;
    }
    (void)cb_watch_push(c, fd, events); /* out of memory: libcurl's timer still runs */
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
    watch(c, (int)s, what == CURL_POLL_REMOVE ? 0 : ev);
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    cbffi_client *c = userp;
    c->http->timer = timeout_ms < 0 ? UINT64_MAX
                                    : cb_now() + (uint64_t)timeout_ms * 1000u;
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *userp)
{
    cb_http *h = userp;
    size_t len = size * n;
    if (cb_buf_size(&h->body) + len > CB_CM_MAX_BYTES) {
        h->too_big = 1;
        return 0; /* aborts the transfer */
    }
    return cb_buf_append(&h->body, p, len) == 0 ? len : 0;
}

static void end_request(cb_http *h)
{
    if (!h->easy)
        return;
    curl_multi_remove_handle(h->multi, h->easy);
    curl_easy_cleanup(h->easy);
    h->easy = NULL;
}

void cb_http_free(cbffi_client *c)
{
    cb_http *h = c->http;
    if (!h)
        return;
    end_request(h);
    if (h->multi)
        curl_multi_cleanup(h->multi);
    cb_buf_free(&h->body);
    free(h);
    c->http = NULL;
}

int cb_http_active(const cbffi_client *c)
{
    return c->http && c->http->easy;
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

/* The transfer finished (or failed): apply the config or report why not. */
static void finish(cbffi_client *c, CURLcode code)
{
    cb_http *h = c->http;
    long status = 0;
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
    end_request(h);
    int rc = CBFFI_OK;
    if (code == CURLE_OPERATION_TIMEDOUT) {
        cb_set_error(c, "%s: REST bootstrap timed out", h->host);
        rc = CBFFI_ETIMEDOUT;
    } else if (code == CURLE_COULDNT_RESOLVE_HOST) {
        cb_set_error(c, "%s: cannot resolve host", h->host);
        rc = CBFFI_UNKNOWN_HOST;
    } else if (code != CURLE_OK) {
        cb_set_error(c, "%s: REST bootstrap failed: %s", h->host,
                     h->too_big ? "config too large" : curl_easy_strerror(code));
        rc = h->too_big ? CBFFI_PROTOCOL_ERROR : CBFFI_CONNECT_ERROR;
    } else if (status == 401 || status == 403) {
        cb_set_error(c, "%s: REST bootstrap: HTTP %ld (wrong credentials?)",
                     h->host, status);
        rc = CBFFI_AUTH_ERROR;
    } else if (status == 404) {
        cb_set_error(c, "%s: bucket '%s' not found (HTTP 404)", h->host,
                     c->cs.bucket);
        rc = CBFFI_BUCKET_ENOENT;
    } else if (status != 200) {
        cb_set_error(c, "%s: REST bootstrap: HTTP %ld", h->host, status);
        rc = CBFFI_PROTOCOL_ERROR;
    } else if (cb_cluster_apply_json(c, cb_buf_head(&h->body),
                                     cb_buf_size(&h->body), h->host) < 0) {
        rc = CBFFI_PROTOCOL_ERROR;
    }
    cb_buf_clear(&h->body);
    if (rc != CBFFI_OK)
        cb_cluster_seed_failed(c, rc);
}

static void check_done(cbffi_client *c)
{
    cb_http *h = c->http;
    CURLMsg *m;
    int left;
    while (h->easy && (m = curl_multi_info_read(h->multi, &left)) != NULL)
        if (m->msg == CURLMSG_DONE && m->easy_handle == h->easy)
            finish(c, m->data.result);
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
    static int global_done;
    if (!global_done) {
        /* Not thread-safe in old libcurls: done once, on first use. */
        curl_global_init(CURL_GLOBAL_DEFAULT);
        global_done = 1;
    }
    cb_http *h = calloc(1, sizeof(*h));
    if (!h)
        return -1;
    h->timer = UINT64_MAX;
    h->multi = curl_multi_init();
    if (!h->multi) {
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

int cb_http_start(cbffi_client *c, const char *host, int ipv6, uint16_t port)
{
    if (setup_multi(c) != 0)
        return CBFFI_CLIENT_ENOMEM;
    cb_http *h = c->http;
    end_request(h);
    cb_buf_clear(&h->body);
    h->too_big = 0;
    snprintf(h->host, sizeof(h->host), "%s", host);
    CURL *e = curl_easy_init();
    if (!e)
        return CBFFI_CLIENT_ENOMEM;
    char *bucket = curl_easy_escape(e, c->cs.bucket, 0);
    char url[700];
    snprintf(url, sizeof(url), "http://%s%s%s:%u/pools/default/b/%s",
             ipv6 ? "[" : "", host, ipv6 ? "]" : "", (unsigned)port,
             bucket ? bucket : "");
    curl_free(bucket);
    long timeout_ms = (long)(c->connect_timeout / 1000u);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(e, CURLOPT_USERNAME, c->username);
    curl_easy_setopt(e, CURLOPT_PASSWORD, c->password);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "couchbase-ffi/0.1.0");
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        return CBFFI_CLIENT_ENOMEM;
    }
    h->easy = e;
    return CBFFI_OK;
}
