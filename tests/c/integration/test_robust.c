/*
 * Integration tests: servers (and resolvers) that go silent, answer slowly
 * or ask for too much must never hold an operation past its timeout, nor
 * the loop for long.
 *
 *   - a fake REST port (rest_*): answers each request after a delay, or
 *     never;
 *   - getaddrinfo() is overridden for the whole process (libcurl's resolver
 *     thread included): names under .hang.test hang until released, names
 *     under .fail.test fail at once, names under .slow.test take 300 ms,
 *     names under .lo.test are 127.0.0.1; anything else (and every
 *     AI_NUMERICHOST call) goes to the real resolver.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cbffi.h"
#include "client_private.h"
#include "servers.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the resolver ---------------------------------------------------------- */

static atomic_int hang_released;  /* .hang.test lookups return (EAI_AGAIN) */
static atomic_int hanging;        /* .hang.test lookups in progress */
static atomic_int lookups;        /* name lookups seen (not numeric ones) */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *,
                      struct addrinfo **);

int getaddrinfo(const char *node, const char *service,
                const struct addrinfo *hints, struct addrinfo **res)
{
    static gai_fn real;
    if (!real)
        real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
    if (node && !(hints && (hints->ai_flags & AI_NUMERICHOST))) {
        lookups++;
        if (ends_with(node, ".fail.test"))
            return EAI_NONAME;
        if (ends_with(node, ".hang.test")) {
            hanging++;
            while (!hang_released)
                usleep(1000);
            hanging--;
            return EAI_AGAIN;
        }
        if (ends_with(node, ".slow.test")) {
            usleep(300000);
            node = "127.0.0.1";
        } else if (ends_with(node, ".lo.test")) {
            node = "127.0.0.1";
        }
    }
    return real(node, service, hints, res);
}

/* Let every hung lookup return, and wait until they have. */
static void release_lookups(void)
{
    hang_released = 1;
    for (int i = 0; i < 5000 && hanging; i++)
        usleep(1000);
    usleep(20000); /* their threads clean up */
    hang_released = 0;
}

/* ---- a fake REST port -------------------------------------------------------- */

typedef struct rest_server {
    int lfd, port;
    int delay_ms;           /* < 0: never answer */
    char body[4096];        /* the reply body ("" = none) */
    atomic_int stop;
    atomic_int requests;    /* requests read so far */
    pthread_t thr;
} rest_server;

enum { REST_MAXCL = 128 };

static void *rest_main(void *arg)
{
    rest_server *s = arg;
    struct {
        int fd;
        char buf[8192];
        size_t n;
        double due; /* 0: no request waiting */
    } cl[REST_MAXCL];
    int ncl = 0;
    while (!s->stop) {
        struct pollfd p[REST_MAXCL + 1];
        p[0] = (struct pollfd){s->lfd, POLLIN, 0};
        for (int i = 0; i < ncl; i++)
            p[i + 1] = (struct pollfd){cl[i].fd, POLLIN, 0};
        poll(p, (nfds_t)ncl + 1, 2);
        double now = now_s();
        /* backwards: a client removed swaps in one already handled */
        for (int i = ncl - 1; i >= 0; i--) {
            if (!(p[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t k = recv(cl[i].fd, cl[i].buf + cl[i].n,
                             sizeof cl[i].buf - 1 - cl[i].n, MSG_DONTWAIT);
            if (k <= 0) {
                close(cl[i].fd);
                cl[i] = cl[--ncl];
                continue;
            }
            cl[i].n += (size_t)k;
            cl[i].buf[cl[i].n] = 0;
            if (!cl[i].due && strstr(cl[i].buf, "\r\n\r\n")) {
                s->requests++;
                cl[i].due = now + (s->delay_ms < 0 ? 1e9 : s->delay_ms / 1000.0);
            }
        }
        if ((p[0].revents & POLLIN) && ncl < REST_MAXCL) {
            int fd = accept(s->lfd, NULL, NULL);
            if (fd >= 0) {
                cl[ncl].fd = fd;
                cl[ncl].n = 0;
                cl[ncl].due = 0;
                ncl++;
            }
        }
        for (int i = 0; i < ncl; i++) {
            if (cl[i].due && now >= cl[i].due) {
                char head[256];
                int n = snprintf(head, sizeof head,
                                 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 "Content-Length: %zu\r\n\r\n", strlen(s->body));
                send(cl[i].fd, head, (size_t)n, MSG_NOSIGNAL);
                send(cl[i].fd, s->body, strlen(s->body), MSG_NOSIGNAL);
                cl[i].due = 0;
                cl[i].n = 0;
            }
        }
    }
    for (int i = 0; i < ncl; i++)
        close(cl[i].fd);
    return NULL;
}

static rest_server *rest_start(int delay_ms, const char *body)
{
    rest_server *s = calloc(1, sizeof(*s));
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->delay_ms = delay_ms;
    snprintf(s->body, sizeof s->body, "%s", body ? body : "");
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s->lfd, 128) != 0 ||
        getsockname(s->lfd, (struct sockaddr *)&a, &len) != 0) {
        close(s->lfd);
        free(s);
        return NULL;
    }
    s->port = ntohs(a.sin_port);
    pthread_create(&s->thr, NULL, rest_main, s);
    return s;
}

static void rest_stop(rest_server *s)
{
    s->stop = 1;
    pthread_join(s->thr, NULL);
    close(s->lfd);
    free(s);
}

/* ---- helpers ------------------------------------------------------------------ */

static cbffi_client *client_for(const char *fmt, ...)
{
    char cs[1024], err[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cs, sizeof cs, fmt, ap);
    va_end(ap);
    cbffi_client *c = NULL;
    int rc = cbffi_client_create(&c, cs, NULL, NULL, err, sizeof err);
    if (rc != CBFFI_OK)
        fail_msg("create %s: %s", cs, err);
    return c;
}

/* A couchbase:// client that has a map whose REST port is rest_port (the
   data node, port 9, is never contacted). */
static cbffi_client *mapped_client(const char *options, int rest_port)
{
    cbffi_client *c = client_for("couchbase://127.0.0.1:9/default%s", options);
    char json[1024];
    int n = snprintf(json, sizeof json,
                     "{\"rev\":1,\"name\":\"default\",\"nodeLocator\":\"vbucket\","
                     "\"nodesExt\":[{\"hostname\":\"127.0.0.1\",\"services\":"
                     "{\"kv\":9,\"mgmt\":%d}}],"
                     "\"vBucketServerMap\":{\"hashAlgorithm\":\"CRC\",\"numReplicas\":0,"
                     "\"serverList\":[\"127.0.0.1:9\"],\"vBucketMap\":[[0],[0],[0],[0]]}}",
                     rest_port);
    assert_int_equal(cb_cluster_apply_json(c, json, (size_t)n, "127.0.0.1"), 1);
    return c;
}

/* ---- REST (http.c) --------------------------------------------------------------- */

/* flush over REST had a fixed 30 s timeout, whatever the client's
   timeouts: now CBFFI_TIMEOUT_HTTP (http_timeout in the connection string). */
static void rest_flush_to_a_silent_server_ends_at_the_http_timeout(void **state)
{
    (void)state;
    rest_server *s = rest_start(-1, NULL);
    assert_non_null(s);
    for (int how = 0; how < 2; how++) {
        cbffi_client *c = mapped_client(how ? "" : "?http_timeout=300ms", s->port);
        if (how)
            assert_int_equal(cbffi_client_set_timeout(c, CBFFI_TIMEOUT_HTTP, 300000),
                             CBFFI_OK);
        assert_int_equal(cbffi_client_get_timeout(c, CBFFI_TIMEOUT_HTTP), 300000);
        double t0 = now_s();
        assert_int_equal(cbffi_flush(c, 1), CBFFI_OK);
        cbffi_result r[2];
        assert_int_equal(cbffi_wait(c, r, 2), 1);
        double took = now_s() - t0;
        assert_int_equal(r[0].rc, CBFFI_ETIMEDOUT);
        assert_int_equal(r[0].op, CBFFI_OP_FLUSH);
        if (took < 0.25 || took > 0.8)
            fail_msg("flush ended after %.3f s, http timeout 0.3 s", took);
        cbffi_client_destroy(c);
    }
    rest_stop(s);
}

/* The default REST timeout is libcouchbase's http_timeout. */
static void rest_timeout_defaults(void **state)
{
    (void)state;
    cbffi_client *c = client_for("couchbase://127.0.0.1:9/default");
    assert_int_equal(cbffi_client_get_timeout(c, CBFFI_TIMEOUT_HTTP), 75000000);
    cbffi_client_destroy(c);
    char err[256];
    c = NULL;
    assert_int_equal(cbffi_client_create(&c, "couchbase://h/b?http_timeout=soon", NULL,
                                         NULL, err, sizeof err), CBFFI_EINVAL);
    assert_non_null(strstr(err, "http_timeout"));
}

/* http.c kept track of 16 sockets: libcurl's 17th socket and later were
   watched by the host, but their readiness was dropped, so those transfers
   stalled until their timeout (30 s) although the server had answered.
   Now every socket is followed, and more than 16 REST requests in flight
   are refused at once with CBFFI_EBUSY. */
static void many_rest_requests_at_once(void **state)
{
    (void)state;
    rest_server *s = rest_start(300, "");
    assert_non_null(s);
    cbffi_client *c = mapped_client("?http_timeout=10s", s->port);
    int scheduled = 0, busy = 0;
    for (int i = 0; i < 24; i++) {
        int rc = cbffi_flush(c, (uint64_t)i);
        if (rc == CBFFI_OK) {
            scheduled++;
        } else {
            assert_int_equal(rc, CBFFI_EBUSY);
            assert_non_null(strstr(cbffi_client_last_error(c), "in flight"));
            busy++;
        }
    }
    assert_int_equal(scheduled, 16);
    assert_int_equal(cbffi_pending(c), 16);
    double t0 = now_s();
    cbffi_result r[32];
    size_t n = cbffi_wait(c, r, 32);
    double took = now_s() - t0;
    assert_int_equal(n, 16);
    for (size_t i = 0; i < n; i++)
        if (r[i].rc != CBFFI_OK)
            fail_msg("flush %llu: rc 0x%x after %.3f s", (unsigned long long)r[i].cookie,
                     r[i].rc, took);
    if (took > 2.0)
        fail_msg("16 flushes answered after 0.3 s ended after %.3f s", took);
    /* and the slots are free again */
    assert_int_equal(cbffi_flush(c, 99), CBFFI_OK);
    assert_int_equal(cbffi_wait(c, r, 2), 1);
    assert_int_equal(r[0].rc, CBFFI_OK);
    cbffi_client_destroy(c);
    rest_stop(s);
}

/* A REST bootstrap from a port that accepts and never answers ends within
   the bootstrap timeout, and each attempt within the connect timeout. */
static void rest_bootstrap_from_a_silent_server(void **state)
{
    (void)state;
    rest_server *s = rest_start(-1, NULL);
    assert_non_null(s);
    static const struct { const char *opts; double want; } cases[] = {
        {"config_total_timeout=300ms", 0.3},
        {"connect_timeout=200ms", 0.2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cbffi_client *c = client_for("http://127.0.0.1:%d/default?%s", s->port,
                                     cases[i].opts);
        double t0 = now_s();
        assert_int_equal(cbffi_connect(c, 0), CBFFI_OK);
        cbffi_result r[2];
        assert_int_equal(cbffi_wait(c, r, 2), 1);
        double took = now_s() - t0;
        assert_int_equal(r[0].op, CBFFI_OP_CONNECT);
        assert_int_equal(r[0].rc, CBFFI_ETIMEDOUT);
        if (took > cases[i].want + 0.5)
            fail_msg("%s: bootstrap ended after %.3f s", cases[i].opts, took);
        cbffi_client_destroy(c);
    }
    rest_stop(s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rest_flush_to_a_silent_server_ends_at_the_http_timeout),
        cmocka_unit_test(rest_timeout_defaults),
        cmocka_unit_test(many_rest_requests_at_once),
        cmocka_unit_test(rest_bootstrap_from_a_silent_server),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    release_lookups();
    mc_kill_all();
    return rc;
}
