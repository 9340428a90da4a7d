/*
 * libmc_bench.c - the libmemcached-from-C baseline: Debian's libmemcached
 * (what pylibmc wraps) driven from C, no Python, over the same 1000 keys
 * (13 bytes, "k00" + 10 digits) and 128-byte values as the other workers.
 *
 *   libmc_bench PORT OP PROTOCOL DURATION WARMUP [SERVER_PID]
 *     OP:       get | set            one synchronous operation per loop
 *               get_multi            memcached_mget of 100 keys + fetch_result
 *               set_multi            100 sets with BUFFER_REQUESTS, then one
 *                                    get that has to read every set's reply
 *                                    first (libmemcached's fastest batch of
 *                                    sets; it reports no per-key status)
 *     PROTOCOL: binary | text        text is libmemcached's (and pylibmc's)
 *                                    default
 *
 * Prints {"ops", "wall", "cpu"[, "server_cpu"]} for the timed window; multi
 * operations count keys.  server_cpu: seconds the server (SERVER_PID) ran
 * in the window, from /proc (see server_cpu.h).
 */
#include <libmemcached/memcached.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "server_cpu.h"

enum { NKEYS = 1000, BATCH = 100, VLEN = 128 };

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
           (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

static char keys[NKEYS][14];
static const char *kptr[NKEYS];
static size_t klen[NKEYS];
static char value[VLEN];

static int fail(memcached_st *mc, memcached_return_t rc, const char *what)
{
    fprintf(stderr, "libmc_bench: %s: %s\n", what, memcached_strerror(mc, rc));
    exit(4);
}

/* One unit of work; returns how many operations (keys) it did. */
static long step(memcached_st *mc, int op, int *next, memcached_result_st *res)
{
    memcached_return_t rc;
    int k = *next;
    if (op == 0) { /* get */
        size_t n;
        uint32_t flags;
        char *v = memcached_get(mc, kptr[k], klen[k], &n, &flags, &rc);
        if (!v)
            fail(mc, rc, "get");
        free(v);
        *next = (k + 1) % NKEYS;
        return 1;
    }
    if (op == 1) { /* set */
        rc = memcached_set(mc, kptr[k], klen[k], value, VLEN, 0, 0);
        if (rc != MEMCACHED_SUCCESS)
            fail(mc, rc, "set");
        *next = (k + 1) % NKEYS;
        return 1;
    }
    *next = (k + BATCH) % NKEYS;
    if (op == 2) { /* get_multi */
        rc = memcached_mget(mc, kptr + k, klen + k, BATCH);
        if (rc != MEMCACHED_SUCCESS)
            fail(mc, rc, "mget");
        long got = 0;
        while (memcached_fetch_result(mc, res, &rc))
            got++;
        if (got != BATCH)
            fail(mc, rc, "fetch_result (a key was missing)");
        return got;
    }
    /* set_multi: buffered sets, flushed, then a get behind them */
    for (int i = 0; i < BATCH; i++) {
        rc = memcached_set(mc, kptr[k + i], klen[k + i], value, VLEN, 0, 0);
        if (rc != MEMCACHED_BUFFERED && rc != MEMCACHED_SUCCESS)
            fail(mc, rc, "buffered set");
    }
    rc = memcached_flush_buffers(mc);
    if (rc != MEMCACHED_SUCCESS)
        fail(mc, rc, "flush_buffers");
    size_t n;
    uint32_t flags;
    char *v = memcached_get(mc, kptr[k], klen[k], &n, &flags, &rc);
    if (!v)
        fail(mc, rc, "get after buffered sets");
    free(v);
    return BATCH;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: libmc_bench PORT get|set|get_multi|set_multi "
                        "binary|text DURATION WARMUP [SERVER_PID]\n");
        return 2;
    }
    static const char *ops[] = {"get", "set", "get_multi", "set_multi"};
    int op = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(argv[2], ops[i]) == 0)
            op = i;
    int binary = strcmp(argv[3], "binary") == 0;
    double duration = atof(argv[4]), warmup = atof(argv[5]);
    int server_pid = argc > 6 ? atoi(argv[6]) : 0;
    if (op < 0 || (!binary && strcmp(argv[3], "text") != 0))
        return 2;

    memcached_st *mc = memcached_create(NULL);
    memcached_server_add(mc, "127.0.0.1", (in_port_t)atoi(argv[1]));
    if (binary)
        memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 1);
    memset(value, 'v', VLEN);
    for (int i = 0; i < NKEYS; i++) {
        snprintf(keys[i], sizeof keys[i], "k00%010d", i);
        kptr[i] = keys[i];
        klen[i] = 13;
        memcached_return_t rc = memcached_set(mc, keys[i], 13, value, VLEN, 0, 0);
        if (rc != MEMCACHED_SUCCESS)
            fail(mc, rc, "preload set");
    }
    if (op == 3)
        memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_BUFFER_REQUESTS, 1);
    /* caller-owned: fetch_result frees a result it allocated itself at the
       end of every mget */
    memcached_result_st res_mem, *res = memcached_result_create(mc, &res_mem);

    long ops_done = 0;
    int next = 0;
    double end = now() + warmup, w0 = 0, c0 = 0, s0 = 0;
    for (int phase = 0; phase < 2; phase++) {
        if (phase == 1) {
            s0 = server_cpu(server_pid);
            w0 = now();
            c0 = cpu();
            end = w0 + duration;
        }
        while (now() < end) {
            long n = step(mc, op, &next, res);
            if (phase)
                ops_done += n;
        }
    }
    double wall = now() - w0, c = cpu() - c0;
    if (server_pid > 0)
        printf("{\"ops\": %ld, \"wall\": %.6f, \"cpu\": %.6f, \"server_cpu\": %.6f}\n",
               ops_done, wall, c, server_cpu(server_pid) - s0);
    else
        printf("{\"ops\": %ld, \"wall\": %.6f, \"cpu\": %.6f}\n", ops_done, wall, c);
    memcached_result_free(res);
    memcached_free(mc);
    return 0;
}
