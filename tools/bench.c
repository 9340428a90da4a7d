/*
 * bench.c - `cbffi bench`: a load generator for the C core alone, in the
 * spirit of cbc-pillowfight.  One client, one thread; sync (batch 1) or
 * pipelined batches; prints ops/s and client CPU per operation.
 *
 *   cbffi bench -U CONNSTR [--op get|set] [--batch N] [--duration S]
 *               [--warmup S] [--key-size N] [--value-size N] [--keys N]
 *               [--json]
 */
#include "tool.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef struct bench_cfg {
    const char *connstr;
    int is_set;
    int batch;
    double duration, warmup;
    int key_size, value_size, nkeys;
    int json;
    const char *user, *pass;
} bench_cfg;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void make_key(char *buf, int size, int i)
{
    snprintf(buf, (size_t)size + 1, "key%0*d", size - 3, i);
}

/* One round: batch operations scheduled, then waited for.  Returns the
   number that succeeded, or -1 on a failure. */
static long round_trip(cbffi_client *c, const bench_cfg *cfg, const char *value,
                       int *next, cbffi_result *res)
{
    char key[256];
    for (int i = 0; i < cfg->batch; i++) {
        make_key(key, cfg->key_size, *next);
        *next = (*next + 1) % cfg->nkeys;
        int rc = cfg->is_set
                     ? cbffi_store(c, CBFFI_OP_SET, key, (size_t)cfg->key_size,
                                   value, (size_t)cfg->value_size, 0, 0, 0, 0)
                     : cbffi_get(c, key, (size_t)cfg->key_size,
                                 CBFFI_GET_PLAIN, 0, 0);
        if (rc != CBFFI_OK) {
            fprintf(stderr, "bench: schedule failed: %s\n", cbffi_strerror(rc));
            return -1;
        }
    }
    long ok = 0;
    size_t n = cbffi_wait(c, res, (size_t)cfg->batch);
    for (size_t i = 0; i < n; i++) {
        if (res[i].rc != CBFFI_OK) {
            fprintf(stderr, "bench: %s\n", cbffi_strerror(res[i].rc));
            return -1;
        }
        ok++;
    }
    return ok;
}

static int preload(cbffi_client *c, const bench_cfg *cfg, const char *value,
                   cbffi_result *res)
{
    bench_cfg set = *cfg;
    int next = 0;
    set.is_set = 1;
    for (int done = 0; done < cfg->nkeys; done += set.batch)
        if (round_trip(c, &set, value, &next, res) < 0)
            return -1;
    return 0;
}

static int parse_bench(int argc, char **argv, bench_cfg *cfg)
{
    static const struct option longs[] = {
        {"spec", required_argument, 0, 'U'}, {"op", required_argument, 0, 'o'},
        {"batch", required_argument, 0, 'b'},
        {"duration", required_argument, 0, 'd'},
        {"warmup", required_argument, 0, 'w'},
        {"key-size", required_argument, 0, 'k'},
        {"value-size", required_argument, 0, 'V'},
        {"keys", required_argument, 0, 'n'}, {"json", no_argument, 0, 'j'},
        {"username", required_argument, 0, 'u'},
        {"password", required_argument, 0, 'P'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int ch;
    *cfg = (bench_cfg){NULL, 0, 1, 5.0, 1.0, 13, 128, 1000, 0, NULL, NULL};
    while ((ch = getopt_long(argc, argv, "U:u:P:h", longs, NULL)) != -1) {
        switch (ch) {
        case 'U': cfg->connstr = optarg; break;
        case 'u': cfg->user = optarg; break;
        case 'P': cfg->pass = optarg; break;
        case 'o':
            if (strcmp(optarg, "set") && strcmp(optarg, "get")) {
                fprintf(stderr, "bench: --op must be get or set\n");
                return -1;
            }
            cfg->is_set = strcmp(optarg, "set") == 0;
            break;
        case 'b': cfg->batch = atoi(optarg); break;
        case 'd': cfg->duration = atof(optarg); break;
        case 'w': cfg->warmup = atof(optarg); break;
        case 'k': cfg->key_size = atoi(optarg); break;
        case 'V': cfg->value_size = atoi(optarg); break;
        case 'n': cfg->nkeys = atoi(optarg); break;
        case 'j': cfg->json = 1; break;
        case 'h':
            printf("usage: cbffi bench -U CONNSTR [-u USER] [-P PASS] [--op get|set] [--batch N] "
                   "[--duration S] [--warmup S] [--key-size N] "
                   "[--value-size N] [--keys N] [--json]\n");
            exit(0);
        default: return -1;
        }
    }
    if (!cfg->connstr || cfg->batch < 1 || cfg->batch > 100000 ||
        cfg->duration <= 0 || cfg->warmup < 0 || cfg->key_size < 4 ||
        cfg->key_size > 250 || cfg->value_size < 0 || cfg->nkeys < 1) {
        fprintf(stderr, "bench: bad arguments (need -U; batch 1..100000, "
                        "key size 4..250)\n");
        return -1;
    }
    return 0;
}

int tool_bench(int argc, char **argv)
{
    bench_cfg cfg;
    if (parse_bench(argc, argv, &cfg) != 0)
        return 2;
    int rc;
    cbffi_client *c = tool_connect(cfg.connstr, cfg.user, cfg.pass, 0, &rc);
    if (!c)
        return 2;
    char *value = malloc((size_t)cfg.value_size + 1);
    cbffi_result *res = calloc((size_t)cfg.batch, sizeof(*res));
    int status = 3;
    if (!value || !res)
        goto out;
    memset(value, 'v', (size_t)cfg.value_size);
    if (!cfg.is_set && preload(c, &cfg, value, res) != 0)
        goto out;
    int next = 0;
    long ops = 0;
    double t0 = now_s(), end = t0 + cfg.warmup;
    while (now_s() < end)
        if (round_trip(c, &cfg, value, &next, res) < 0)
            goto out;
    double w0 = now_s(), c0 = cpu_s();
    end = w0 + cfg.duration;
    while (now_s() < end) {
        long n = round_trip(c, &cfg, value, &next, res);
        if (n < 0)
            goto out;
        ops += n;
    }
    double wall = now_s() - w0, cpu = cpu_s() - c0;
    if (cfg.json)
        printf("{\"ops\": %ld, \"wall\": %.6f, \"cpu\": %.6f}\n", ops, wall, cpu);
    else
        printf("%s batch=%d: %.0f ops/s, %.2f us client CPU/op (%ld ops in "
               "%.2f s)\n", cfg.is_set ? "set" : "get", cfg.batch,
               (double)ops / wall, cpu / (double)ops * 1e6, ops, wall);
    status = 0;
out:
    free(value);
    free(res);
    cbffi_client_destroy(c);
    return status;
}
