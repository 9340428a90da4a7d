/*
 * Integration tests: libcbffi's couchbase:// path against the mock cluster
 * (python -m couchbase_ffi.mock, a separate process; faults are injected
 * through its HTTP control API).  Run plain, under ASan+UBSan and under
 * valgrind: bootstrap, routing, retries, config changes and every
 * Couchbase-only operation, through both the built-in loop and the
 * host-loop interface, including clients destroyed with work pending.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cbffi.h"

#include <curl/curl.h>
#include <json-c/json.h>
#include <poll.h>

#include "hostloop.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CBFFI_PYTHONPATH
#error "CBFFI_PYTHONPATH must name the repository's python/ folder"
#endif

static pid_t mock_pid = -1;
static int kv_ports[4];
static int rest_port;
static char connstr[512];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the mock ------------------------------------------------------------ */

/* Start a mock (refuse: its --refuse-features, "" for none); fills its pid,
   REST port and couchbase:// connection string of bucket default. */
static int start_mock_ex(const char *refuse, pid_t *pid, int *rest,
                         char *cs, size_t ncs)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    *pid = fork();
    if (*pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        setenv("PYTHONPATH", CBFFI_PYTHONPATH, 1);
        execl("/usr/bin/python3", "python3", "-m", "couchbase_ffi.mock",
              "--nodes", "4", "--replicas", "2", "--bucket",
              "default:couchbase:secret", "--bucket", "cache:memcached:",
              "--persist-delay", "0", "--replicate-delay", "0", "--json",
              "--refuse-features", refuse, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[8192];
    FILE *f = fdopen(fds[0], "r");
    if (!f || !fgets(line, sizeof line, f))
        return -1;
    json_object *o = json_tokener_parse(line), *ports, *rp;
    if (!o || !json_object_object_get_ex(o, "kv_ports", &ports) ||
        !json_object_object_get_ex(o, "rest_port", &rp))
        return -1;
    int n = snprintf(cs, ncs, "couchbase://");
    for (int i = 0; i < 4; i++) {
        int port = json_object_get_int(json_object_array_get_idx(ports, (size_t)i));
        if (cs == connstr)
            kv_ports[i] = port;
        n += snprintf(cs + n, ncs - (size_t)n, "%s127.0.0.1:%d", i ? "," : "",
                      port);
    }
    snprintf(cs + n, ncs - (size_t)n, "/default");
    *rest = json_object_get_int(rp);
    json_object_put(o);
    /* keep f open: the mock's stdout stays a pipe nobody writes to */
    return 0;
}

static int start_mock(void)
{
    return start_mock_ex("", &mock_pid, &rest_port, connstr, sizeof connstr);
}

static size_t sink(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

typedef struct {
    char *data;
    size_t len;
} membuf;

static size_t keep(char *p, size_t s, size_t n, void *u)
{
    membuf *m = u;
    char *d = realloc(m->data, m->len + s * n + 1);
    if (!d)
        return 0;
    memcpy(d + m->len, p, s * n);
    m->data = d;
    m->len += s * n;
    d[m->len] = 0;
    return s * n;
}

/* POST /mock/<action> with a JSON body to the mock on REST port `port`;
   returns the HTTP status, and the parsed answer in *out if out. */
static long control_at(int port, const char *action, const char *body,
                       json_object **out)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/mock/%s", port, action);
    CURL *e = curl_easy_init();
    membuf m = {0};
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_USERPWD, "Administrator:password");
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, out ? keep : sink);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &m);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    long status = 0;
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    if (out)
        *out = m.data ? json_tokener_parse(m.data) : NULL;
    free(m.data);
    return status;
}

/* POST /mock/<action> with a JSON body; returns the HTTP status. */
static long control(const char *action, const char *body)
{
    return control_at(rest_port, action, body, NULL);
}

/* NOT_MY_VBUCKET answers so far, over the mock's four nodes. */
static long nmv_total(int port)
{
    long total = 0;
    for (int i = 0; i < 4; i++) {
        char body[32];
        json_object *o = NULL, *v;
        snprintf(body, sizeof body, "{\"node\": %d}", i);
        assert_int_equal(control_at(port, "node_stats", body, &o), 200);
        assert_non_null(o);
        if (json_object_object_get_ex(o, "not_my_vbucket", &v))
            total += json_object_get_int64(v);
        json_object_put(o);
    }
    return total;
}

static int setup_all(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return start_mock();
}

static int teardown_all(void **state)
{
    (void)state;
    if (mock_pid > 0) {
        kill(mock_pid, SIGTERM);
        waitpid(mock_pid, NULL, 0);
    }
    curl_global_cleanup();
    return 0;
}

static int reset(void **state)
{
    (void)state;
    return control("clear_faults", "{}") == 200 ? 0 : -1;
}

/* ---- helpers ------------------------------------------------------------- */

static cbffi_client *client_with(const char *cs, const char *user,
                                 const char *pass)
{
    char err[256];
    cbffi_client *c = NULL;
    int rc = cbffi_client_create(&c, cs, user, pass, err, sizeof err);
    if (rc != CBFFI_OK)
        fail_msg("create %s: %s", cs, err);
    return c;
}

static cbffi_result one(cbffi_client *c)
{
    cbffi_result r[2];
    size_t n = cbffi_wait(c, r, 2);
    assert_int_equal(n, 1);
    assert_true(r[0].final);
    return r[0];
}

static cbffi_client *connected(void)
{
    cbffi_client *c = client_with(connstr, NULL, "secret");
    assert_int_equal(cbffi_connect(c, 0), CBFFI_OK);
    cbffi_result r = one(c);
    assert_int_equal(r.rc, CBFFI_OK);
    assert_int_equal(r.op, CBFFI_OP_CONNECT);
    return c;
}

static int set(cbffi_client *c, const char *k, const char *v, uint64_t *cas)
{
    assert_int_equal(cbffi_store(c, CBFFI_OP_SET, k, strlen(k), v, strlen(v),
                                 0, 0, 0, 0), CBFFI_OK);
    cbffi_result r = one(c);
    if (cas)
        *cas = r.cas;
    return r.rc;
}

static int get(cbffi_client *c, const char *k, char *out, size_t nout)
{
    assert_int_equal(cbffi_get(c, k, strlen(k), CBFFI_GET_PLAIN, 0, 0), CBFFI_OK);
    cbffi_result r = one(c);
    if (out)
        snprintf(out, nout, "%.*s", (int)r.nvalue, r.value ? r.value : "");
    return r.rc;
}

/* ---- tests --------------------------------------------------------------- */

static void bootstrap_and_basic_operations(void **state)
{
    (void)state;
    cbffi_client *c = connected();
    assert_int_equal(cbffi_client_server_count(c), 4);
    assert_int_equal(cbffi_client_replica_count(c), 2);
    assert_true(cbffi_client_config_rev(c) >= 1);
    uint64_t cas;
    char v[64];
    assert_int_equal(set(c, "c:k", "hello", &cas), CBFFI_OK);
    assert_true(cas != 0);
    assert_int_equal(get(c, "c:k", v, sizeof v), CBFFI_OK);
    assert_string_equal(v, "hello");
    assert_int_equal(get(c, "c:missing", NULL, 0), CBFFI_KEY_ENOENT);
    assert_int_equal(cbffi_counter(c, "c:n", 3, 1, 10, 1, 0, 0), CBFFI_OK);
    cbffi_result r = one(c);
    assert_int_equal(r.rc, CBFFI_OK);
    assert_int_equal(r.u64, 10);
    assert_int_equal(cbffi_remove(c, "c:k", 3, 0, 0), CBFFI_OK);
    assert_int_equal(one(c).rc, CBFFI_OK);
    uint32_t vb;
    int srv;
    assert_int_equal(cbffi_client_vbucket(c, "Hello", 5, &vb, &srv), CBFFI_OK);
    assert_int_equal(vb, 977); /* PROTOCOL.md 5.4, 1024 vbuckets */
    assert_true(srv >= 0 && srv < 4);
    cbffi_client_destroy(c);
}

static void operations_before_connect_wait_for_the_map(void **state)
{
    (void)state;
    cbffi_client *c = client_with(connstr, "Administrator", "password");
    char key[16];
    for (int i = 0; i < 20; i++) {
        int n = snprintf(key, sizeof key, "early:%d", i);
        assert_int_equal(cbffi_store(c, CBFFI_OP_SET, key, (size_t)n, "v", 1, 0,
                                     0, 0, (uint64_t)i), CBFFI_OK);
    }
    cbffi_result r[32];
    size_t got = cbffi_wait(c, r, 32);
    assert_int_equal(got, 20);
    for (size_t i = 0; i < got; i++)
        assert_int_equal(r[i].rc, CBFFI_OK);
    cbffi_client_destroy(c);
}

static void bootstrap_errors(void **state)
{
    (void)state;
    cbffi_client *c = client_with(connstr, NULL, "wrong");
    cbffi_connect(c, 0);
    assert_int_equal(one(c).rc, CBFFI_AUTH_ERROR);
    cbffi_client_destroy(c);

    char cs[600];
    snprintf(cs, sizeof cs, "couchbase://127.0.0.1:%d/nosuch", kv_ports[0]);
    c = client_with(cs, "Administrator", "password");
    cbffi_connect(c, 0);
    assert_int_equal(one(c).rc, CBFFI_BUCKET_ENOENT);
    cbffi_client_destroy(c);

    /* data ops fail with the bootstrap's reason */
    c = client_with(connstr, NULL, "wrong");
    assert_int_equal(cbffi_get(c, "x", 1, CBFFI_GET_PLAIN, 0, 0), CBFFI_OK);
    assert_int_equal(one(c).rc, CBFFI_AUTH_ERROR);
    cbffi_client_destroy(c);

    c = client_with("couchbase://127.0.0.1:1/default", NULL, NULL);
    cbffi_connect(c, 0);
    assert_int_equal(one(c).rc, CBFFI_CONNECT_ERROR);
    cbffi_client_destroy(c);
}

static void http_bootstrap(void **state)
{
    (void)state;
    char cs[300];
    snprintf(cs, sizeof cs, "http://127.0.0.1:%d/default", rest_port);
    cbffi_client *c = client_with(cs, NULL, "secret");
    cbffi_connect(c, 0);
    assert_int_equal(one(c).rc, CBFFI_OK);
    assert_int_equal(cbffi_client_server_count(c), 4);
    assert_int_equal(set(c, "http:k", "v", NULL), CBFFI_OK);
    cbffi_client_destroy(c);
    c = client_with(cs, NULL, "wrong");
    cbffi_connect(c, 0);
    assert_int_equal(one(c).rc, CBFFI_AUTH_ERROR);
    cbffi_client_destroy(c);
}

static void lock_replica_observe_endure(void **state)
{
    (void)state;
    cbffi_client *c = connected();
    uint64_t cas;
    assert_int_equal(set(c, "cb:lock", "v", &cas), CBFFI_OK);
    assert_int_equal(cbffi_get(c, "cb:lock", 7, CBFFI_GET_LOCK, 5, 0), CBFFI_OK);
    cbffi_result r = one(c);
    assert_int_equal(r.rc, CBFFI_OK);
    uint64_t lock_cas = r.cas;
    assert_int_equal(set(c, "cb:lock", "w", NULL), CBFFI_KEY_EEXISTS);
    assert_int_equal(cbffi_get(c, "cb:lock", 7, CBFFI_GET_LOCK, 5, 0), CBFFI_OK);
    assert_int_equal(one(c).rc, CBFFI_ETMPFAIL);
    assert_int_equal(cbffi_unlock(c, "cb:lock", 7, lock_cas, 0), CBFFI_OK);
    assert_int_equal(one(c).rc, CBFFI_OK);

    assert_int_equal(set(c, "cb:rep", "rv", &cas), CBFFI_OK);
    assert_int_equal(cbffi_endure(c, "cb:rep", 6, cas, 3, 2, 0, 0, 0, 0), CBFFI_OK);
    r = one(c);
    assert_int_equal(r.rc, CBFFI_OK);
    assert_int_equal(r.op, CBFFI_OP_ENDURE);
    for (int idx = -1; idx < 2; idx++) {
        assert_int_equal(cbffi_get_replica(c, "cb:rep", 6, idx, 0), CBFFI_OK);
        r = one(c);
        assert_int_equal(r.rc, CBFFI_OK);
        assert_int_equal(r.op, CBFFI_OP_GET_REPLICA);
        assert_memory_equal(r.value, "rv", 2);
        assert_true(r.replica >= 1);
    }
    assert_int_equal(cbffi_get_replica(c, "cb:rep", 6, 2, 0), CBFFI_NO_MATCHING_SERVER);

    assert_int_equal(cbffi_observe(c, "cb:rep", 6, 0, 7), CBFFI_OK);
    cbffi_result rs[8];
    size_t n = cbffi_wait(c, rs, 8);
    assert_int_equal(n, 4); /* three nodes, then the summary */
    int masters = 0;
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(rs[i].final, 0);
        assert_int_equal(rs[i].flags, CBFFI_OBS_PERSISTED);
        assert_int_equal(rs[i].cas, cas);
        masters += rs[i].replica == 0;
    }
    assert_int_equal(masters, 1);
    assert_int_equal(rs[3].final, 1);
    assert_int_equal(rs[3].rc, CBFFI_OK);

    assert_int_equal(cbffi_endure(c, "cb:rep", 6, cas, 0, 3, 0, 0, 0, 0),
                     CBFFI_DURABILITY_ETOOMANY);
    assert_int_equal(cbffi_store_durable(c, CBFFI_OP_SET, "cb:d", 4, "x", 1, 0, 0,
                                         0, 1, 2, 0), CBFFI_OK);
    r = one(c);
    assert_int_equal(r.rc, CBFFI_OK);
    assert_int_equal(r.op, CBFFI_OP_SET);
    assert_true(r.cas != 0);
    assert_int_equal(cbffi_remove_durable(c, "cb:d", 4, 0, 1, 1, 0), CBFFI_OK);
    assert_int_equal(one(c).rc, CBFFI_OK);
    cbffi_client_destroy(c);
}

static void durability_times_out(void **state)
{
    (void)state;
    cbffi_client *c = connected();
    assert_int_equal(control("set_delays", "{\"persist\": 1e9}"), 200);
    cbffi_client_set_timeout(c, CBFFI_TIMEOUT_DURABILITY, 200000);
    double t0 = now_s();
    assert_int_equal(cbffi_store_durable(c, CBFFI_OP_SET, "dur:t", 5, "x", 1, 0, 0,
                                         0, 1, 0, 0), CBFFI_OK);
    assert_int_equal(one(c).rc, CBFFI_ETIMEDOUT);
    assert_true(now_s() - t0 < 1.0);
    assert_int_equal(control("set_delays", "{\"persist\": 0}"), 200);
    cbffi_client_destroy(c);
}

/* The durability timeout replaces the operation's deadline once the
   mutation succeeded; when it is the shorter one, the client must still
   wake up for it (it slept until the operation timeout: 3 s here). */
static void durability_timeout_shorter_than_the_operation_timeout(void **state)
{
    (void)state;
    cbffi_client *c = connected();
    cbffi_client_set_timeout(c, CBFFI_TIMEOUT_OPERATION, 3000000);
    cbffi_client_set_timeout(c, CBFFI_TIMEOUT_DURABILITY, 150000);
    assert_int_equal(control("drop", "{\"node\": null, \"opcodes\": [\"OBSERVE\"]}"), 200);
    double t0 = now_s();
    assert_int_equal(cbffi_store_durable(c, CBFFI_OP_SET, "dur:short", 9, "x", 1, 0, 0,
                                         0, 1, 0, 0), CBFFI_OK);
    cbffi_result r = one(c);
    assert_int_equal(r.rc, CBFFI_ETIMEDOUT);
    assert_true(now_s() - t0 < 1.0);
    cbffi_client_destroy(c);
}

static void not_my_vbucket_is_never_seen(void **state)
{
    (void)state;
    cbffi_client *c = connected();
    int64_t rev = cbffi_client_config_rev(c);
    uint32_t vb;
    int srv;
    cbffi_client_vbucket(c, "nmv:key", 7, &vb, &srv);
    char body[128];
    snprintf(body, sizeof body, "{\"bucket\": \"default\", \"vbuckets\": [%u], "
             "\"to_node\": %d}", vb, (srv + 1) % 4);
    assert_int_equal(control("move_vbuckets", body), 200);
    assert_int_equal(set(c, "nmv:key", "moved", NULL), CBFFI_OK);
    assert_true(cbffi_client_config_rev(c) > rev);
    int srv2;
    cbffi_client_vbucket(c, "nmv:key", 7, NULL, &srv2);
    assert_int_not_equal(srv2, srv);
    /* NOT_MY_VBUCKET injected twice: retried, not reported */
    assert_int_equal(control("inject_status", "{\"status\": 7, \"count\": 2}"), 200);
    char v[32];
    assert_int_equal(get(c, "nmv:key", v, sizeof v), CBFFI_OK);
    assert_string_equal(v, "moved");
    cbffi_client_destroy(c);
}

static void temporary_failures_are_retried(void **state)
{
    (void)state;
    cbffi_client *c = connected();
    assert_int_equal(control("inject_status", "{\"status\": \"ETMPFAIL\", \"count\": 3}"), 200);
    assert_int_equal(set(c, "tmp:k", "v", NULL), CBFFI_OK);
    cbffi_client_set_timeout(c, CBFFI_TIMEOUT_OPERATION, 200000);
    assert_int_equal(control("inject_status", "{\"status\": \"EBUSY\", \"count\": 100000}"), 200);
    assert_int_equal(set(c, "tmp:k", "v", NULL), CBFFI_EBUSY);
    cbffi_client_destroy(c);
}

static void failover_moves_keys_to_replicas(void **state)
{
    (void)state;
    cbffi_client *c = connected();
    char key[16], v[16];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "fo:%d", i);
        assert_int_equal(cbffi_store_durable(c, CBFFI_OP_SET, key, strlen(key),
                                             key, strlen(key), 0, 0, 0, 0, 2, 0),
                         CBFFI_OK);
        assert_int_equal(one(c).rc, CBFFI_OK);
    }
    assert_int_equal(control("failover", "{\"node\": 3}"), 200);
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "fo:%d", i);
        assert_int_equal(get(c, key, v, sizeof v), CBFFI_OK);
        assert_string_equal(v, key);
    }
    assert_int_equal(cbffi_client_server_count(c), 3);
    assert_int_equal(control("add_back", "{\"node\": 3}"), 200);
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "fo:%d", i);
        assert_int_equal(set(c, key, "again", NULL), CBFFI_OK);
    }
    assert_int_equal(cbffi_client_server_count(c), 4);
    cbffi_client_destroy(c);
}

static void host_loop_over_couchbase(void **state)
{
    (void)state;
    cbffi_client *c = client_with(connstr, NULL, "secret");
    char key[16];
    cbffi_connect(c, 1000);
    for (int i = 0; i < 100; i++) {
        int n = snprintf(key, sizeof key, "hl:%d", i);
        cbffi_store(c, CBFFI_OP_SET, key, (size_t)n, "v", 1, 0, 0, 0, (uint64_t)i);
    }
    cbffi_io_flush(c);
    struct pollfd pf[16];
    uint32_t evs[16];
    int nfd = 0;
    cbffi_watch w[16];
    cbffi_result r[128];
    size_t got = 0;
    double t0 = now_s();
    while (got < 101 && now_s() - t0 < 5) {
        size_t n;
        while ((n = cbffi_io_watches(c, w, 16)) > 0) {
            for (size_t i = 0; i < n; i++) {
                int j = 0;
                while (j < nfd && pf[j].fd != w[i].fd)
                    j++;
                if (w[i].events == 0) {
                    if (j < nfd) {
                        pf[j] = pf[--nfd];
                        evs[j] = evs[nfd];
                    }
                    continue;
                }
                if (j == nfd)
                    nfd++;
                pf[j].fd = w[i].fd;
                evs[j] = w[i].events;
                pf[j].events = (short)(((w[i].events & CBFFI_IO_READ) ? POLLIN : 0) |
                                       ((w[i].events & CBFFI_IO_WRITE) ? POLLOUT : 0));
            }
        }
        int64_t dl = cbffi_io_deadline(c);
        int k = poll(pf, (nfds_t)nfd, dl < 0 ? 100 : (int)(dl / 1000) + 1);
        if (k <= 0) {
            cbffi_io_tick(c);
        } else {
            int fds[16];
            uint32_t ready[16];
            int nr = 0;
            for (int j = 0; j < nfd; j++)
                if (pf[j].revents) {
                    fds[nr] = pf[j].fd;
                    ready[nr++] = ((pf[j].revents & (POLLIN | POLLHUP | POLLERR)) ? CBFFI_IO_READ : 0) |
                                  ((pf[j].revents & (POLLOUT | POLLHUP | POLLERR)) ? CBFFI_IO_WRITE : 0);
                }
            for (int j = 0; j < nr; j++)
                cbffi_io_event(c, fds[j], ready[j]);
        }
        got += cbffi_harvest(c, r + got, 128 - got);
    }
    assert_int_equal(got, 101);
    for (size_t i = 0; i < got; i++)
        assert_int_equal(r[i].rc, CBFFI_OK);
    assert_int_equal(cbffi_pending(c), 0);
    (void)evs;
    cbffi_client_destroy(c);
}

/* A key (written into buf) that maps to server s. */
static const char *key_on(cbffi_client *c, int s, const char *prefix, char *buf,
                          size_t n)
{
    for (int i = 0; i < 10000; i++) {
        snprintf(buf, n, "%s:%d", prefix, i);
        if (cbffi_client_server_for_key(c, buf, strlen(buf)) == s)
            return buf;
    }
    fail_msg("no key maps to server %d", s);
    return NULL;
}

/* ---- config changes learnt without NOT_MY_VBUCKET ------------------------------ */

/* Host loop until one result is ready (or 5 s). */
static cbffi_result hl_one(cbffi_client *c, hostloop *L)
{
    cbffi_result r;
    memset(&r, 0, sizeof r);
    cbffi_io_flush(c);
    double t0 = now_s();
    while (cbffi_ready(c) == 0 && now_s() - t0 < 5)
        hl_step(c, L);
    assert_int_equal(cbffi_harvest(c, &r, 1), 1);
    return r;
}

static int hl_set(cbffi_client *c, hostloop *L, const char *k, const char *v)
{
    assert_int_equal(cbffi_store(c, CBFFI_OP_SET, k, strlen(k), v, strlen(v),
                                 0, 0, 0, 0), CBFFI_OK);
    return hl_one(c, L).rc;
}

static int hl_get(cbffi_client *c, hostloop *L, const char *k)
{
    assert_int_equal(cbffi_get(c, k, strlen(k), CBFFI_GET_PLAIN, 0, 0), CBFFI_OK);
    return hl_one(c, L).rc;
}

/* Host loop, no operation pending, until the map's rev passes `rev` or
   `seconds` pass; returns the seconds it took (or -1). */
static double hl_until_rev(cbffi_client *c, hostloop *L, int64_t rev,
                           double seconds)
{
    double t0 = now_s();
    while (cbffi_client_config_rev(c) <= rev && now_s() - t0 < seconds)
        hl_step(c, L);
    return cbffi_client_config_rev(c) > rev ? now_s() - t0 : -1;
}

/* A client on host loop L with a connection to every node. */
static cbffi_client *hl_connected(const char *cs, hostloop *L)
{
    cbffi_client *c = client_with(cs, NULL, "secret");
    assert_int_equal(cbffi_connect(c, 0), CBFFI_OK);
    assert_int_equal(hl_one(c, L).rc, CBFFI_OK);
    char buf[32];
    for (int s = 0; s < cbffi_client_server_count(c); s++)
        assert_int_equal(hl_set(c, L, key_on(c, s, "warm", buf, sizeof buf), "v"),
                         CBFFI_OK);
    return c;
}

/* Moves `key`'s vbucket to the next node; returns its new owner. */
static int move_key(cbffi_client *c, int port, const char *key)
{
    uint32_t vb;
    int srv;
    cbffi_client_vbucket(c, key, strlen(key), &vb, &srv);
    char body[128];
    snprintf(body, sizeof body, "{\"bucket\": \"default\", \"vbuckets\": [%u], "
             "\"to_node\": %d}", vb, (srv + 1) % 4);
    assert_int_equal(control_at(port, "move_vbuckets", body, NULL), 200);
    return (srv + 1) % 4;
}

/* DUPLEX + CLUSTERMAP_CHANGE_NOTIFICATION: a vbucket move and a failover
   reach a client that only listens; the operations after them go straight
   to the new owners, and no node ever answers NOT_MY_VBUCKET. */
static void pushed_configs_avoid_not_my_vbucket(void **state)
{
    (void)state;
    hostloop L = {0};
    cbffi_client *c = hl_connected(connstr, &L);
    /* polling off: what it learns here was pushed */
    assert_int_equal(cbffi_client_set_timeout(c, CBFFI_TIMEOUT_CONFIG_POLL, 0),
                     CBFFI_OK);
    assert_int_equal(cbffi_client_get_timeout(c, CBFFI_TIMEOUT_CONFIG_POLL), 0);
    long nmv = nmv_total(rest_port);
    int64_t rev = cbffi_client_config_rev(c);
    int owner = move_key(c, rest_port, "push:moved");
    assert_true(hl_until_rev(c, &L, rev, 2.0) >= 0);
    int srv;
    cbffi_client_vbucket(c, "push:moved", 10, NULL, &srv);
    assert_int_equal(srv, owner);
    assert_int_equal(hl_set(c, &L, "push:moved", "x"), CBFFI_OK);
    assert_int_equal(hl_get(c, &L, "push:moved"), CBFFI_OK);

    char key[16];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "pfo:%d", i);
        assert_int_equal(hl_set(c, &L, key, key), CBFFI_OK);
    }
    rev = cbffi_client_config_rev(c);
    assert_int_equal(control("failover", "{\"node\": 3}"), 200);
    assert_true(hl_until_rev(c, &L, rev, 2.0) >= 0);
    assert_int_equal(cbffi_client_server_count(c), 3);
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "pfo:%d", i);
        assert_int_equal(hl_get(c, &L, key), CBFFI_OK);
    }
    rev = cbffi_client_config_rev(c);
    assert_int_equal(control("add_back", "{\"node\": 3}"), 200);
    assert_true(hl_until_rev(c, &L, rev, 2.0) >= 0);
    assert_int_equal(cbffi_client_server_count(c), 4);
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "pfo:%d", i);
        assert_int_equal(hl_set(c, &L, key, "again"), CBFFI_OK);
    }
    assert_int_equal(nmv_total(rest_port), nmv);
    cbffi_client_destroy(c);
}

/* Push refused by the servers: config_poll_interval finds the change within
   the interval, and the operations after it see no NOT_MY_VBUCKET either. */
static void polling_without_push(void **state)
{
    (void)state;
    pid_t pid;
    int port;
    char cs[512];
    assert_int_equal(start_mock_ex("0x0d", &pid, &port, cs, sizeof cs - 64), 0);
    /* out of range: refused */
    char err[256];
    cbffi_client *bad = NULL;
    char bcs[600];
    snprintf(bcs, sizeof bcs, "%s?config_poll_interval=10ms", cs);
    assert_int_equal(cbffi_client_create(&bad, bcs, NULL, "secret", err, sizeof err),
                     CBFFI_EINVAL);
    snprintf(bcs, sizeof bcs, "%s?config_poll_interval=0", cs);
    assert_int_equal(cbffi_client_create(&bad, bcs, NULL, "secret", err, sizeof err),
                     CBFFI_OK);
    assert_int_equal(cbffi_client_get_timeout(bad, CBFFI_TIMEOUT_CONFIG_POLL), 0);
    cbffi_client_destroy(bad);

    strcat(cs, "?config_poll_interval=300ms");
    hostloop L = {0};
    cbffi_client *c = hl_connected(cs, &L);
    assert_int_equal(cbffi_client_get_timeout(c, CBFFI_TIMEOUT_CONFIG_POLL), 300000);
    long nmv = nmv_total(port);
    int64_t rev = cbffi_client_config_rev(c);
    int owner = move_key(c, port, "poll:moved");
    double took = hl_until_rev(c, &L, rev, 2.0);
    assert_true(took >= 0);
    assert_true(took < 0.3 + 0.2);
    int srv;
    cbffi_client_vbucket(c, "poll:moved", 10, NULL, &srv);
    assert_int_equal(srv, owner);
    assert_int_equal(hl_set(c, &L, "poll:moved", "x"), CBFFI_OK);
    assert_int_equal(nmv_total(port), nmv);
    /* off: the next change is not found by waiting */
    assert_int_equal(cbffi_client_set_timeout(c, CBFFI_TIMEOUT_CONFIG_POLL, 20000),
                     CBFFI_EINVAL);
    assert_int_equal(cbffi_client_set_timeout(c, CBFFI_TIMEOUT_CONFIG_POLL, 0),
                     CBFFI_OK);
    rev = cbffi_client_config_rev(c);
    move_key(c, port, "poll:moved");
    assert_true(hl_until_rev(c, &L, rev, 0.8) < 0);
    cbffi_client_destroy(c);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

/* An operation scheduled while its connection is in the handshake gets an
   opaque after the handshake packets; one scheduled before gets one before
   them.  The client matched a reply to its request by arithmetic on the
   opaques, assuming they were consecutive: after a quiet GET missed, the
   reply to the later op "matched no request" and the connection was failed
   with CBFFI_PROTOCOL_ERROR under a perfectly correct server. */
static void ops_queued_around_a_handshake(void **state)
{
    (void)state;
    cbffi_client *c = connected();
    /* a node whose connection is not open yet (only the seed's is) */
    char seedname[64];
    snprintf(seedname, sizeof seedname, "127.0.0.1:%d", kv_ports[0]);
    int s = 0;
    while (strcmp(cbffi_client_server_name(c, s), seedname) == 0)
        s++;
    char ka[32], kb[32];
    key_on(c, s, "gap-miss", ka, sizeof ka);
    key_on(c, s, "gap-set", kb, sizeof kb);
    hostloop L = {.n = 0};
    assert_int_equal(cbffi_get(c, ka, strlen(ka), CBFFI_GET_PLAIN, 0, 1), CBFFI_OK);
    cbffi_io_flush(c);
    hl_watches(c, &L);
    assert_int_equal(L.n, 1); /* connecting: watching for writability */
    struct pollfd p = L.pf[0];
    assert_int_equal(poll(&p, 1, 2000), 1);
    cbffi_io_event(c, p.fd, CBFFI_IO_WRITE); /* connected: HELLO goes out */
    assert_int_equal(cbffi_store(c, CBFFI_OP_SET, kb, strlen(kb), "v", 1, 0, 0, 0, 2),
                     CBFFI_OK);
    cbffi_result r[4];
    size_t got = 0;
    double t0 = now_s();
    while (got < 2 && now_s() - t0 < 5) {
        hl_step(c, &L);
        got += cbffi_harvest(c, r + got, 4 - got);
    }
    assert_int_equal(got, 2);
    for (size_t i = 0; i < got; i++) {
        if (r[i].cookie == 1)
            assert_int_equal(r[i].rc, CBFFI_KEY_ENOENT);
        else
            assert_int_equal(r[i].rc, CBFFI_OK);
    }
    cbffi_client_destroy(c);
}

static void destroyed_with_work_pending(void **state)
{
    (void)state;
    /* mid-bootstrap, with ops waiting for the map */
    cbffi_client *c = client_with(connstr, NULL, "secret");
    cbffi_get(c, "a", 1, CBFFI_GET_PLAIN, 0, 0);
    cbffi_io_flush(c);
    cbffi_client_destroy(c);
    /* ops on the retry list and durability rounds in flight */
    c = connected();
    assert_int_equal(control("inject_status", "{\"status\": \"ETMPFAIL\", \"count\": 50}"), 200);
    cbffi_store(c, CBFFI_OP_SET, "p:1", 3, "v", 1, 0, 0, 0, 0);
    cbffi_store_durable(c, CBFFI_OP_SET, "p:2", 3, "v", 1, 0, 0, 0, 1, 1, 0);
    cbffi_endure(c, "p:3", 3, 0, 1, 1, 0, 0, 0, 0);
    cbffi_observe(c, "p:4", 3, 0, 0);
    cbffi_get_replica(c, "p:5", 3, -1, 0);
    cbffi_io_flush(c);
    usleep(20000);
    cbffi_io_tick(c);
    cbffi_client_destroy(c);
    /* a REST flush in flight */
    c = connected();
    assert_int_equal(cbffi_flush(c, 0), CBFFI_OK);
    cbffi_io_flush(c);
    cbffi_io_tick(c);
    cbffi_client_destroy(c);
    /* and a REST bootstrap in flight */
    char cs[300];
    snprintf(cs, sizeof cs, "http://127.0.0.1:%d/default", rest_port);
    c = client_with(cs, NULL, "secret");
    cbffi_connect(c, 0);
    cbffi_io_flush(c);
    cbffi_io_tick(c);
    cbffi_client_destroy(c);
}

static void flush_over_rest(void **state)
{
    (void)state;
    cbffi_client *c = connected();
    assert_int_equal(set(c, "fl:k", "v", NULL), CBFFI_OK);
    assert_int_equal(cbffi_flush(c, 0), CBFFI_OK);
    cbffi_result r = one(c);
    assert_int_equal(r.op, CBFFI_OP_FLUSH);
    assert_int_equal(r.rc, CBFFI_OK);
    assert_int_equal(get(c, "fl:k", NULL, 0), CBFFI_KEY_ENOENT);
    cbffi_client_destroy(c);
}

/* More REST requests than the 16 sockets http.c kept track of: the
   sockets past the 16th were watched by the host but their readiness was
   dropped (not libcurl's), so those flushes hung until their 30 s deadline
   although the server had answered.  Now every flush ends promptly: done,
   or refused at once with CBFFI_EBUSY past the limit of requests in
   flight. */
static void many_flushes_at_once(void **state)
{
    (void)state;
    cbffi_client *c = connected();
    int scheduled = 0, busy = 0;
    for (int i = 0; i < 24; i++) {
        int rc = cbffi_flush(c, (uint64_t)i);
        if (rc == CBFFI_OK)
            scheduled++;
        else if (rc == CBFFI_EBUSY)
            busy++;
        else
            fail_msg("flush %d: rc 0x%x (%s)", i, rc, cbffi_client_last_error(c));
    }
    assert_true(scheduled >= 16);
    double t0 = now_s();
    cbffi_result r[32];
    size_t n = cbffi_wait(c, r, 32);
    double took = now_s() - t0;
    assert_int_equal(n, (size_t)scheduled);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(r[i].rc, CBFFI_OK);
    if (took > 3.0)
        fail_msg("%d flushes took %.3f s (%d refused)", scheduled, took, busy);
    cbffi_client_destroy(c);
}

static void memcached_bucket_over_couchbase(void **state)
{
    (void)state;
    char cs[600];
    snprintf(cs, sizeof cs, "%.*s/cache", (int)(strrchr(connstr, '/') - connstr), connstr);
    cbffi_client *c = client_with(cs, NULL, NULL);
    cbffi_connect(c, 0);
    assert_int_equal(one(c).rc, CBFFI_OK);
    assert_int_equal(cbffi_client_replica_count(c), -1);
    assert_int_equal(set(c, "mcb:k", "v", NULL), CBFFI_OK);
    assert_int_equal(get(c, "mcb:k", NULL, 0), CBFFI_OK);
    assert_int_equal(cbffi_get(c, "mcb:k", 5, CBFFI_GET_LOCK, 1, 0), CBFFI_NOT_SUPPORTED);
    assert_int_equal(cbffi_observe(c, "mcb:k", 5, 0, 0), CBFFI_NOT_SUPPORTED);
    cbffi_client_destroy(c);
}

static void subdoc_lookups_and_mutations(void **state)
{
    (void)state;
    cbffi_client *c = connected();
    uint64_t cas;
    assert_int_equal(set(c, "sd:k", "{\"a\":1,\"l\":[1,2]}", &cas), CBFFI_OK);
    cbffi_subdoc_entry e[16];

    const uint8_t lc[] = {CBFFI_SDCMD_GET, CBFFI_SDCMD_GET_COUNT, CBFFI_SDCMD_EXISTS};
    const uint32_t lp[] = {1, 1, 4};
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_LOOKUP_IN, "sd:k", 4, 3, lc, NULL, "alnope", lp,
                                  NULL, NULL, 0, 0, 0, 0, 0, 1), CBFFI_OK);
    cbffi_result r = one(c);
    assert_int_equal(r.op, CBFFI_OP_LOOKUP_IN);
    assert_int_equal(r.rc, CBFFI_SUBDOC_MULTI_FAILURE);
    assert_int_equal(r.cas, cas);
    assert_int_equal(cbffi_subdoc_parse(r.op, r.rc, r.value, r.nvalue, 3, e), 3);
    assert_int_equal(e[0].rc, CBFFI_OK);
    assert_memory_equal(e[0].value, "1", 1);
    assert_memory_equal(e[1].value, "2", 1);
    assert_int_equal(e[2].rc, CBFFI_SUBDOC_PATH_ENOENT);

    /* counter + upsert, made durable: the counter's value survives the polling */
    const uint8_t mc[] = {CBFFI_SDCMD_COUNTER, CBFFI_SDCMD_DICT_UPSERT};
    const uint8_t mf[] = {0, CBFFI_SDSPEC_MKDIR_P};
    const uint32_t mp[] = {1, 3}, mv[] = {1, 4};
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_MUTATE_IN, "sd:k", 4, 2, mc, mf, "ax.yz", mp,
                                  "5true", mv, 0, 0, cas, 1, 2, 2), CBFFI_OK);
    r = one(c);
    assert_int_equal(r.rc, CBFFI_OK);
    assert_true(r.cas != cas);
    assert_int_equal(cbffi_subdoc_parse(r.op, r.rc, r.value, r.nvalue, 2, e), 1);
    assert_int_equal(e[0].index, 0);
    assert_memory_equal(e[0].value, "6", 1);
    char buf[256];
    assert_int_equal(get(c, "sd:k", buf, sizeof buf), CBFFI_OK);
    assert_string_equal(buf, "{\"a\":6,\"l\":[1,2],\"x\":{\"y\":true}}");

    /* a failing spec: nothing changes, the entry names it */
    const uint8_t fc[] = {CBFFI_SDCMD_DICT_UPSERT, CBFFI_SDCMD_DICT_ADD};
    const uint32_t fp[] = {1, 1}, fv[] = {1, 1};
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_MUTATE_IN, "sd:k", 4, 2, fc, NULL, "za", fp, "00",
                                  fv, 0, 0, 0, 0, 0, 3), CBFFI_OK);
    r = one(c);
    assert_int_equal(r.rc, CBFFI_SUBDOC_MULTI_FAILURE);
    assert_int_equal(cbffi_subdoc_parse(r.op, r.rc, r.value, r.nvalue, 2, e), 1);
    assert_int_equal(e[0].index, 1);
    assert_int_equal(e[0].rc, CBFFI_SUBDOC_PATH_EEXISTS);
    /* document level: stale CAS, missing document, upsert_doc */
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_MUTATE_IN, "sd:k", 4, 1, fc, NULL, "z", fp, "0",
                                  fv, 0, 0, cas, 0, 0, 4), CBFFI_OK);
    assert_int_equal(one(c).rc, CBFFI_KEY_EEXISTS);
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_LOOKUP_IN, "sd:none", 7, 1, lc, NULL, "a", lp,
                                  NULL, NULL, 0, 0, 0, 0, 0, 5), CBFFI_OK);
    assert_int_equal(one(c).rc, CBFFI_KEY_ENOENT);
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_MUTATE_IN, "sd:new", 6, 1, fc, NULL, "z", fp, "7",
                                  fv, CBFFI_SDDOC_MKDOC, 0, 0, 0, 0, 6), CBFFI_OK);
    assert_int_equal(one(c).rc, CBFFI_OK);
    assert_int_equal(get(c, "sd:new", buf, sizeof buf), CBFFI_OK);
    assert_string_equal(buf, "{\"z\":7}");
    cbffi_client_destroy(c);

    char cs[600];
    snprintf(cs, sizeof cs, "%.*s/cache", (int)(strrchr(connstr, '/') - connstr), connstr);
    c = client_with(cs, NULL, NULL);
    cbffi_connect(c, 0);
    assert_int_equal(one(c).rc, CBFFI_OK);
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_LOOKUP_IN, "sd:k", 4, 1, lc, NULL, "a", lp,
                                  NULL, NULL, 0, 0, 0, 0, 0, 0), CBFFI_NOT_SUPPORTED);
    cbffi_client_destroy(c);
}

/* ---- mutation tokens ------------------------------------------------------ */

static cbffi_result store_r(cbffi_client *c, int op, const char *k, const char *v)
{
    assert_int_equal(cbffi_store(c, op, k, strlen(k), v, strlen(v), 0, 0, 0, 0),
                     CBFFI_OK);
    return one(c);
}

static void mutation_tokens(void **state)
{
    (void)state;
    cbffi_client *c = connected();
    uint32_t vb = 0;
    int srv = -1;
    assert_int_equal(cbffi_client_vbucket(c, "mt:k", 4, &vb, &srv), CBFFI_OK);
    cbffi_result a = store_r(c, CBFFI_OP_SET, "mt:k", "1");
    assert_int_equal(a.rc, CBFFI_OK);
    assert_int_equal(a.vbucket, vb);
    assert_true(a.vbuuid != 0 && a.seqno != 0);
    cbffi_result b = store_r(c, CBFFI_OP_APPEND, "mt:k", "2");
    assert_int_equal(b.vbucket, vb);
    assert_true(b.vbuuid == a.vbuuid && b.seqno > a.seqno);
    assert_int_equal(cbffi_counter(c, "mt:n", 4, 1, 5, 1, 0, 0), CBFFI_OK);
    cbffi_result n = one(c);
    assert_int_equal(n.u64, 5);
    assert_true(n.seqno != 0 && n.vbuuid != 0);
    /* a read and a failed mutation carry none */
    assert_int_equal(cbffi_get(c, "mt:k", 4, CBFFI_GET_PLAIN, 0, 0), CBFFI_OK);
    cbffi_result g = one(c);
    assert_true(g.seqno == 0 && g.vbuuid == 0 && g.vbucket == 0);
    cbffi_result f = store_r(c, CBFFI_OP_ADD, "mt:k", "x");
    assert_int_equal(f.rc, CBFFI_KEY_EEXISTS);
    assert_true(f.seqno == 0 && f.vbuuid == 0);
    /* with durability, the result still has the mutation's token */
    assert_int_equal(cbffi_store_durable(c, CBFFI_OP_SET, "mt:k", 4, "3", 1, 0, 0, 0, 1, 1, 0),
                     CBFFI_OK);
    cbffi_result d = one(c);
    assert_int_equal(d.rc, CBFFI_OK);
    assert_int_equal(d.vbucket, vb);
    assert_true(d.vbuuid == a.vbuuid && d.seqno > b.seqno);
    /* sub-document mutations and removals too */
    const uint8_t cmd[] = {CBFFI_SDCMD_DICT_UPSERT};
    const uint32_t np[] = {1}, nv[] = {1};
    assert_int_equal(store_r(c, CBFFI_OP_SET, "mt:d", "{}").rc, CBFFI_OK);
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_MUTATE_IN, "mt:d", 4, 1, cmd, NULL, "a", np,
                                  "1", nv, 0, 0, 0, 0, 0, 0), CBFFI_OK);
    cbffi_result s = one(c);
    assert_int_equal(s.rc, CBFFI_OK);
    assert_true(s.seqno != 0);
    assert_int_equal(cbffi_remove(c, "mt:k", 4, 0, 0), CBFFI_OK);
    cbffi_result rm = one(c);
    assert_true(rm.vbuuid == a.vbuuid && rm.seqno > d.seqno);
    cbffi_client_destroy(c);

    /* a memcached bucket has no vbuckets: no tokens */
    char cs[600];
    snprintf(cs, sizeof cs, "%.*s/cache", (int)(strrchr(connstr, '/') - connstr), connstr);
    c = client_with(cs, NULL, NULL);
    cbffi_connect(c, 0);
    assert_int_equal(one(c).rc, CBFFI_OK);
    cbffi_result m = store_r(c, CBFFI_OP_SET, "mt:k", "1");
    assert_int_equal(m.rc, CBFFI_OK);
    assert_true(m.seqno == 0 && m.vbuuid == 0 && m.vbucket == 0);
    cbffi_client_destroy(c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(bootstrap_and_basic_operations, reset),
        cmocka_unit_test_setup(operations_before_connect_wait_for_the_map, reset),
        cmocka_unit_test_setup(bootstrap_errors, reset),
        cmocka_unit_test_setup(http_bootstrap, reset),
        cmocka_unit_test_setup(lock_replica_observe_endure, reset),
        cmocka_unit_test_setup(durability_times_out, reset),
        cmocka_unit_test_setup(durability_timeout_shorter_than_the_operation_timeout, reset),
        cmocka_unit_test_setup(not_my_vbucket_is_never_seen, reset),
        cmocka_unit_test_setup(temporary_failures_are_retried, reset),
        cmocka_unit_test_setup(failover_moves_keys_to_replicas, reset),
        cmocka_unit_test_setup(host_loop_over_couchbase, reset),
        cmocka_unit_test_setup(ops_queued_around_a_handshake, reset),
        cmocka_unit_test_setup(destroyed_with_work_pending, reset),
        cmocka_unit_test_setup(flush_over_rest, reset),
        cmocka_unit_test_setup(many_flushes_at_once, reset),
        cmocka_unit_test_setup(memcached_bucket_over_couchbase, reset),
        cmocka_unit_test_setup(subdoc_lookups_and_mutations, reset),
        cmocka_unit_test_setup(mutation_tokens, reset),
        cmocka_unit_test_setup(pushed_configs_avoid_not_my_vbucket, reset),
        cmocka_unit_test_setup(polling_without_push, reset),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
