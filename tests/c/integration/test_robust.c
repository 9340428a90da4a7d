/*
 * Integration tests: servers (and resolvers) that go silent, answer slowly
 * or ask for too much must never hold an operation past its timeout, nor
 * the loop for long.
 *
 *   - a fake REST port (rest_*): answers each request after a delay, or
 *     never;
 *   - a fake Couchbase data node (kv_*) for the handshake: SCRAM-SHA512 with
 *     the iteration count the test chooses (the proof is never accepted);
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
#include "sasl.h"
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

/* Upper time bounds are multiplied by CBFFI_TEST_SLACK (default 1):
   scripts/test.sh sets it for the valgrind run, where everything is ~20x
   slower and two shared cores make thread starts late.  Lower bounds (a
   timeout must not fire early) are never relaxed. */
static double slack(void)
{
    const char *v = getenv("CBFFI_TEST_SLACK");
    double f = v ? atof(v) : 1.0;
    return f >= 1.0 ? f : 1.0;
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
            double t0 = now_s(); /* 5 s at most: a client that waits for it
                                    still fails its test, and ends */
            while (!hang_released && now_s() - t0 < 5)
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

/* ---- a fake data node: the handshake up to SCRAM's proof ------------------------ */

typedef struct kv_server {
    int lfd, port;
    unsigned long iter;     /* i= in server-first */
    atomic_int stop;
    atomic_int steps;       /* SASL_STEPs received */
    pthread_t thr;
} kv_server;

static void kv_reply(int fd, uint8_t opcode, uint16_t status, const unsigned char *opaque,
                     const char *value, size_t nvalue)
{
    unsigned char h[24] = {0x81, opcode};
    h[6] = (unsigned char)(status >> 8);
    h[7] = (unsigned char)status;
    h[8] = (unsigned char)(nvalue >> 24);
    h[9] = (unsigned char)(nvalue >> 16);
    h[10] = (unsigned char)(nvalue >> 8);
    h[11] = (unsigned char)nvalue;
    memcpy(h + 12, opaque, 4);
    send(fd, h, sizeof h, MSG_NOSIGNAL);
    if (nvalue)
        send(fd, value, nvalue, MSG_NOSIGNAL);
}

static int read_full(kv_server *s, int fd, unsigned char *p, size_t n)
{
    size_t got = 0;
    while (got < n && !s->stop) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 20) <= 0)
            continue;
        ssize_t k = recv(fd, p + got, n - got, 0);
        if (k <= 0)
            return -1;
        got += (size_t)k;
    }
    return got == n ? 0 : -1;
}

static void kv_serve(kv_server *s, int fd)
{
    static unsigned char body[65536];
    for (;;) {
        unsigned char h[24];
        if (read_full(s, fd, h, 24) != 0)
            return;
        size_t n = (size_t)h[8] << 24 | (size_t)h[9] << 16 | (size_t)h[10] << 8 | h[11];
        size_t nkey = (size_t)h[2] << 8 | h[3], next = h[4];
        if (n > sizeof body - 1 || read_full(s, fd, body, n) != 0)
            return;
        body[n] = 0;
        const char *value = (const char *)body + next + nkey;
        switch (h[1]) {
        case 0x1f: /* HELLO: no features */
            kv_reply(fd, 0x1f, 0, h + 12, NULL, 0);
            break;
        case 0x20: /* SASL_LIST_MECHS */
            kv_reply(fd, 0x20, 0, h + 12, "SCRAM-SHA512", 12);
            break;
        case 0x21: { /* SASL_AUTH: client-first "n,,n=user,r=nonce" */
            const char *r = strstr(value, ",r=");
            char sf[512];
            int k = snprintf(sf, sizeof sf, "r=%sfake,s=QSXCR+Q6sek8bf92,i=%lu",
                             r ? r + 3 : "x", s->iter);
            kv_reply(fd, 0x21, 0x21 /* AUTH_CONTINUE */, h + 12, sf, (size_t)k);
            break;
        }
        case 0x22: /* SASL_STEP: the proof is never right */
            s->steps++;
            kv_reply(fd, 0x22, 0x20 /* AUTH_ERROR */, h + 12, NULL, 0);
            break;
        default:
            kv_reply(fd, h[1], 0x81, h + 12, NULL, 0);
        }
    }
}

static void *kv_main(void *arg)
{
    kv_server *s = arg;
    while (!s->stop) {
        struct pollfd p = {s->lfd, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        kv_serve(s, fd);
        close(fd);
    }
    return NULL;
}

static kv_server *kv_start(unsigned long iter)
{
    kv_server *s = calloc(1, sizeof(*s));
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->iter = iter;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s->lfd, 16) != 0 ||
        getsockname(s->lfd, (struct sockaddr *)&a, &len) != 0) {
        close(s->lfd);
        free(s);
        return NULL;
    }
    s->port = ntohs(a.sin_port);
    pthread_create(&s->thr, NULL, kv_main, s);
    return s;
}

static void kv_stop(kv_server *s)
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
        if (took < 0.25 || took > 0.8 * slack())
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
    if (took > 2.0 * slack())
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

/* ---- SCRAM's iteration count (sasl.c, negotiate.c) ------------------------------ */

/* How long PBKDF2-SHA512 at the cap takes here. */
static double kdf_seconds(void)
{
    unsigned char key[64];
    size_t n;
    double t0 = now_s();
    assert_int_equal(cb_scram_derive(CB_SASL_SCRAM_SHA512, "password", 8,
                                     (const unsigned char *)"salt", 4,
                                     CB_SCRAM_MAX_ITER, key, &n), CB_SASL_OK);
    return now_s() - t0;
}

/* i=10000000 was accepted: about 6 s of PBKDF2 on the loop, past any
   timeout.  Above CB_SCRAM_MAX_ITER the handshake now fails at once. */
static void scram_iteration_count_over_the_cap_is_refused(void **state)
{
    (void)state;
    static const unsigned long counts[] = {10000000, CB_SCRAM_MAX_ITER + 1, 99999999999UL};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        kv_server *s = kv_start(counts[i]);
        assert_non_null(s);
        cbffi_client *c = client_for("couchbase://127.0.0.1:%d/default?bootstrap_on=cccp",
                                     s->port);
        double t0 = now_s();
        assert_int_equal(cbffi_connect(c, 0), CBFFI_OK);
        cbffi_result r[2];
        assert_int_equal(cbffi_wait(c, r, 2), 1);
        double took = now_s() - t0;
        if (r[0].rc != CBFFI_PROTOCOL_ERROR || took > 1.0 * slack())
            fail_msg("i=%lu: rc 0x%x after %.3f s: %s", counts[i], r[0].rc, took,
                     cbffi_client_last_error(c));
        const char *e = cbffi_client_last_error(c);
        if (!strstr(e, "iterations") || !strstr(e, "100000"))
            fail_msg("i=%lu: unclear message: %s", counts[i], e);
        assert_int_equal(s->steps, 0); /* nothing derived, no proof sent */
        cbffi_client_destroy(c);
        kv_stop(s);
    }
}

/* At the cap, the derivation (tens of ms) ran on the loop: no other
   connection was served, no timeout fired and the host loop's call did not
   return meanwhile.  Now it runs in a thread: every call into the client
   returns at once, and the handshake ends at its deadline all the same. */
static void scram_derivation_leaves_the_loop_free(void **state)
{
    (void)state;
    /* Every check here is a timing of two threads against each other, and
       valgrind runs one thread at a time: under it (CBFFI_TEST_SLACK) the
       test says nothing; the plain and ASan runs make it. */
    if (slack() > 1.0)
        skip();
    double kdf = kdf_seconds();
    if (kdf < 0.02)
        skip(); /* too fast a machine to tell */
    kv_server *s = kv_start(CB_SCRAM_MAX_ITER);
    assert_non_null(s);
    /* the host-loop interface: how long does any one call take?  (Long
       timeouts: under valgrind the derivation takes seconds.) */
    cbffi_client *c = client_for("couchbase://127.0.0.1:%d/default?bootstrap_on=cccp&"
                                 "connect_timeout=100s&config_total_timeout=100s",
                                 s->port);
    struct pollfd pf[16];
    int npf = 0;
    double worst = 0, t0 = now_s();
    assert_int_equal(cbffi_connect(c, 0), CBFFI_OK);
    size_t got = 0;
    cbffi_result r[2];
    for (int round = 0; got == 0 && now_s() - t0 < 100; round++) {
        double a = now_s();
        if (round == 0)
            cbffi_io_flush(c);
        cbffi_watch w[16];
        size_t nw;
        while ((nw = cbffi_io_watches(c, w, 16)) > 0) {
            for (size_t i = 0; i < nw; i++) {
                int j = 0;
                while (j < npf && pf[j].fd != w[i].fd)
                    j++;
                if (!w[i].events) {
                    if (j < npf)
                        pf[j] = pf[--npf];
                    continue;
                }
                if (j == npf)
                    npf++;
                pf[j].fd = w[i].fd;
                pf[j].events = (short)(((w[i].events & CBFFI_IO_READ) ? POLLIN : 0) |
                                       ((w[i].events & CBFFI_IO_WRITE) ? POLLOUT : 0));
            }
        }
        int64_t dl = cbffi_io_deadline(c);
        double b = now_s();
        if (b - a > worst)
            worst = b - a;
        int k = poll(pf, (nfds_t)npf, dl < 0 ? 100 : (int)(dl / 1000) + 1);
        a = now_s();
        if (k <= 0) {
            cbffi_io_tick(c);
        } else {
            int fds[16];
            uint32_t ev[16];
            int nr = 0;
            for (int j = 0; j < npf; j++)
                if (pf[j].revents) {
                    fds[nr] = pf[j].fd;
                    ev[nr++] = ((pf[j].revents & (POLLIN | POLLHUP | POLLERR)) ? CBFFI_IO_READ : 0) |
                               ((pf[j].revents & (POLLOUT | POLLHUP | POLLERR)) ? CBFFI_IO_WRITE : 0);
                }
            for (int j = 0; j < nr; j++)
                cbffi_io_event(c, fds[j], ev[j]);
        }
        got = cbffi_harvest(c, r, 2);
        b = now_s();
        if (b - a > worst)
            worst = b - a;
    }
    assert_int_equal(got, 1);
    assert_int_equal(s->steps, 1);                 /* the proof went out */
    assert_int_equal(r[0].rc, CBFFI_AUTH_ERROR);   /* and was refused */
    if (worst > kdf / 2)
        fail_msg("a call into the client took %.1f ms (PBKDF2 at the cap: %.1f ms)",
                 worst * 1e3, kdf * 1e3);
    cbffi_client_destroy(c);

    /* the bootstrap deadline falls in the middle of the derivation */
    char cs[256];
    snprintf(cs, sizeof cs,
             "couchbase://127.0.0.1:%d/default?bootstrap_on=cccp&config_total_timeout=%dms",
             s->port, (int)(kdf * 1e3 / 3) + 1);
    c = client_for("%s", cs);
    t0 = now_s();
    assert_int_equal(cbffi_connect(c, 0), CBFFI_OK);
    assert_int_equal(cbffi_wait(c, r, 2), 1);
    double took = now_s() - t0;
    assert_int_equal(r[0].rc, CBFFI_ETIMEDOUT);
    if (took > kdf * 0.8)
        fail_msg("bootstrap (timeout %.1f ms) ended after %.1f ms, PBKDF2 takes %.1f ms",
                 kdf * 1e3 / 3, took * 1e3, kdf * 1e3);
    cbffi_client_destroy(c); /* the derivation is abandoned mid-way */
    kv_stop(s);
}

/* ---- host name lookups (conn.c, bg.c) ----------------------------------------- */

static cbffi_result wait_one(cbffi_client *c, double *took)
{
    cbffi_result r[2];
    double t0 = now_s();
    assert_int_equal(cbffi_wait(c, r, 2), 1);
    *took = now_s() - t0;
    return r[0];
}

/* A name that does not resolve is CBFFI_UNKNOWN_HOST, at once, for an
   operation as for a bootstrap. */
static void unresolvable_name_is_a_typed_error_at_once(void **state)
{
    (void)state;
    double took;
    cbffi_client *c = client_for("memcached://nowhere.fail.test:11211");
    assert_int_equal(cbffi_get(c, "k", 1, CBFFI_GET_PLAIN, 0, 1), CBFFI_OK);
    cbffi_result r = wait_one(c, &took);
    assert_int_equal(r.rc, CBFFI_UNKNOWN_HOST);
    assert_true(took < 0.5 * slack());
    assert_non_null(strstr(cbffi_client_last_error(c), "resolve"));
    cbffi_client_destroy(c);
    c = client_for("couchbase://nowhere.fail.test/default?bootstrap_on=cccp");
    assert_int_equal(cbffi_connect(c, 0), CBFFI_OK);
    r = wait_one(c, &took);
    assert_int_equal(r.rc, CBFFI_UNKNOWN_HOST);
    assert_true(took < 0.5 * slack());
    cbffi_client_destroy(c);
}

/* Numeric addresses never reach the resolver. */
static void numeric_addresses_are_not_looked_up(void **state)
{
    (void)state;
    int before = lookups;
    static const char *hosts[] = {"127.0.0.1:9", "[::1]:9"};
    for (int i = 0; i < 2; i++) {
        cbffi_client *c = client_for("memcached://%s?connect_timeout=500ms", hosts[i]);
        assert_int_equal(cbffi_get(c, "k", 1, CBFFI_GET_PLAIN, 0, 1), CBFFI_OK);
        double took;
        cbffi_result r = wait_one(c, &took);
        assert_int_not_equal(r.rc, CBFFI_UNKNOWN_HOST);
        cbffi_client_destroy(c);
    }
    assert_int_equal(lookups, before);
}

/* getaddrinfo() ran on the loop: a lookup that hangs held every operation
   (and cbffi_io_flush) for as long as it hung. */
static void hanging_lookup_ends_within_the_timeouts(void **state)
{
    (void)state;
    double took;
    /* the operation's own timeout */
    cbffi_client *c = client_for("memcached://stuck.hang.test:11211?operation_timeout=200ms");
    assert_int_equal(cbffi_get(c, "k", 1, CBFFI_GET_PLAIN, 0, 1), CBFFI_OK);
    cbffi_result r = wait_one(c, &took);
    assert_int_equal(r.rc, CBFFI_ETIMEDOUT);
    if (took > 0.7 * slack())
        fail_msg("the GET ended after %.3f s (timeout 0.2 s)", took);
    cbffi_client_destroy(c); /* with the lookup still running */

    /* the connect timeout first: the lookup is what is reported */
    c = client_for("memcached://stuck.hang.test:11211?operation_timeout=2s&"
                   "connect_timeout=150ms");
    assert_int_equal(cbffi_get(c, "k", 1, CBFFI_GET_PLAIN, 0, 1), CBFFI_OK);
    r = wait_one(c, &took);
    assert_int_equal(r.rc, CBFFI_UNKNOWN_HOST);
    assert_non_null(strstr(cbffi_client_last_error(c), "lookup"));
    if (took > 0.65 * slack())
        fail_msg("the GET ended after %.3f s (connect timeout 0.15 s)", took);
    /* and the next attempt waits for the same lookup: no second thread */
    int before = hanging;
    assert_int_equal(cbffi_get(c, "k", 1, CBFFI_GET_PLAIN, 0, 2), CBFFI_OK);
    r = wait_one(c, &took);
    assert_int_equal(r.rc, CBFFI_UNKNOWN_HOST);
    assert_int_equal(hanging, before);
    cbffi_client_destroy(c);

    /* the host-loop interface never blocks */
    c = client_for("memcached://stuck.hang.test:11211");
    assert_int_equal(cbffi_get(c, "k", 1, CBFFI_GET_PLAIN, 0, 1), CBFFI_OK);
    double t0 = now_s();
    cbffi_io_flush(c);
    cbffi_io_tick(c);
    took = now_s() - t0;
    size_t pending = cbffi_pending(c);
    cbffi_client_destroy(c);
    if (took > 1.0 * slack()) /* the lookup hangs for 5 s (valgrind: thread start ~0.1 s) */
        fail_msg("cbffi_io_flush + tick took %.3f s", took);
    assert_int_equal(pending, 1);

    /* a bootstrap through a hanging name: within the bootstrap timeout */
    c = client_for("couchbase://stuck.hang.test/default?bootstrap_on=cccp&"
                   "config_total_timeout=300ms");
    assert_int_equal(cbffi_connect(c, 0), CBFFI_OK);
    r = wait_one(c, &took);
    assert_int_equal(r.rc, CBFFI_ETIMEDOUT);
    if (took > 0.8 * slack())
        fail_msg("the bootstrap ended after %.3f s (timeout 0.3 s)", took);
    cbffi_client_destroy(c);
    release_lookups();
}

/* A lookup slower than the operation timeout: the operation times out, the
   lookup goes on, and the next operation uses its answer. */
static void slow_lookup_is_used_when_it_ends(void **state)
{
    (void)state;
    mc_server mc = {0};
    assert_int_equal(mc_start(&mc), 0);
    for (int gave_up = 0; gave_up < 2; gave_up++) {
        cbffi_client *c = client_for("memcached://later.slow.test:%d?operation_timeout=100ms%s",
                                     mc.port, gave_up ? "&connect_timeout=150ms" : "");
        int before = lookups;
        double took;
        assert_int_equal(cbffi_get(c, "slow-k", 6, CBFFI_GET_PLAIN, 0, 1), CBFFI_OK);
        cbffi_result r = wait_one(c, &took);
        assert_int_equal(r.rc, CBFFI_ETIMEDOUT);
        assert_true(took < 0.25 * slack());
        if (gave_up) { /* the attempt ends at its connect timeout */
            assert_int_equal(cbffi_get(c, "slow-k", 6, CBFFI_GET_PLAIN, 0, 1), CBFFI_OK);
            r = wait_one(c, &took);
            assert_true(r.rc == CBFFI_UNKNOWN_HOST || r.rc == CBFFI_ETIMEDOUT);
        }
        usleep(400000); /* the lookup has ended by now */
        cbffi_client_set_timeout(c, CBFFI_TIMEOUT_OPERATION, 2000000);
        assert_int_equal(cbffi_get(c, "slow-k", 6, CBFFI_GET_PLAIN, 0, 2), CBFFI_OK);
        r = wait_one(c, &took);
        if (r.rc != CBFFI_KEY_ENOENT)
            fail_msg("gave_up=%d: rc 0x%x: %s", gave_up, r.rc, cbffi_client_last_error(c));
        assert_true(took < 0.2 * slack());
        assert_int_equal(lookups - before, 1);
        cbffi_client_destroy(c);
    }
    mc_kill(&mc);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rest_flush_to_a_silent_server_ends_at_the_http_timeout),
        cmocka_unit_test(rest_timeout_defaults),
        cmocka_unit_test(many_rest_requests_at_once),
        cmocka_unit_test(rest_bootstrap_from_a_silent_server),
        cmocka_unit_test(scram_iteration_count_over_the_cap_is_refused),
        cmocka_unit_test(scram_derivation_leaves_the_loop_free),
        cmocka_unit_test(unresolvable_name_is_a_typed_error_at_once),
        cmocka_unit_test(numeric_addresses_are_not_looked_up),
        cmocka_unit_test(hanging_lookup_ends_within_the_timeouts),
        cmocka_unit_test(slow_lookup_is_used_when_it_ends),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    release_lookups();
    usleep(200000); /* abandoned derivations end (leak checkers look at exit) */
    mc_kill_all();
    return rc;
}
