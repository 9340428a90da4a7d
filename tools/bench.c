/*
 * bench.c - `cbffi bench`: a load generator for the C core alone, in the
 * spirit of cbc-pillowfight.  One client, one thread; sync (batch 1) or
 * pipelined batches; prints ops/s and client CPU per operation.
 *
 *   cbffi bench -U CONNSTR [--op get|set] [--batch N] [--duration S]
 *               [--warmup S] [--key-size N] [--value-size N] [--keys N]
 *               [--server-pid PID] [--json]
 *
 * --server-pid: also report the CPU time that process (a local memcached)
 * used during the timed window, from /proc/PID/task/x/schedstat.
 */
#include "tool.h"

#include <dirent.h>
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
    int server_pid;
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

/* Seconds of CPU used so far by every thread of process pid (0 if unknown). */
static double server_cpu_s(int pid)
{
    char path[64];
    double total = 0;
    if (pid <= 0)
        return 0;
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char p[320];
        unsigned long long ns;
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "/proc/%d/task/%s/schedstat", pid, e->d_name);
        FILE *f = fopen(p, "r");
        if (!f)
            continue;
        if (fscanf(f, "%llu", &ns) == 1)
            total += (double)ns / 1e9;
        fclose(f);
    }
    closedir(d);
    return total;
}

static void make_key(char *buf, int size, int i)
{
    snprintf(buf, (size_t)size + 1, "key%0*d", size - 3, i);
}

/* Every key, made once: formatting a key per operation (snprintf, ~1000
   instructions) would be charged to the core it measures. */
static char *make_keys(const bench_cfg *cfg)
{
    size_t stride = (size_t)cfg->key_size + 1;
    char *keys = malloc(stride * (size_t)cfg->nkeys);
    if (keys)
        for (int i = 0; i < cfg->nkeys; i++)
            make_key(keys + stride * (size_t)i, cfg->key_size, i);
    return keys;
}

/* One round: batch operations scheduled, then waited for.  Returns the
   number that succeeded, or -1 on a failure. */
static long round_trip(cbffi_client *c, const bench_cfg *cfg, const char *value,
                       const char *keys, int *next, cbffi_result *res)
{
    for (int i = 0; i < cfg->batch; i++) {
        const char *key = keys + (size_t)(cfg->key_size + 1) * (size_t)*next;
        *next = *next + 1 == cfg->nkeys ? 0 : *next + 1;
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
                   const char *keys, cbffi_result *res)
{
    bench_cfg set = *cfg;
    int next = 0;
    set.is_set = 1;
    for (int done = 0; done < cfg->nkeys; done += set.batch)
        if (round_trip(c, &set, value, keys, &next, res) < 0)
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
        {"server-pid", required_argument, 0, 'p'},
        {"username", required_argument, 0, 'u'},
        {"password", required_argument, 0, 'P'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int ch;
    *cfg = (bench_cfg){NULL, 0, 1, 5.0, 1.0, 13, 128, 1000, 0, 0, NULL, NULL};
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
        case 'p': cfg->server_pid = atoi(optarg); break;
        case 'h':
            printf("usage: cbffi bench -U CONNSTR [-u USER] [-P PASS] [--op get|set] [--batch N] "
                   "[--duration S] [--warmup S] [--key-size N] "
                   "[--value-size N] [--keys N] [--server-pid PID] [--json]\n");
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
    char *keys = make_keys(&cfg);
    int status = 3;
    if (!value || !res || !keys)
        goto out;
    memset(value, 'v', (size_t)cfg.value_size);
    if (!cfg.is_set && preload(c, &cfg, value, keys, res) != 0)
        goto out;
    int next = 0;
    long ops = 0;
    double t0 = now_s(), end = t0 + cfg.warmup;
    while (now_s() < end)
        if (round_trip(c, &cfg, value, keys, &next, res) < 0)
            goto out;
    double s0 = server_cpu_s(cfg.server_pid), w0 = now_s(), c0 = cpu_s();
    end = w0 + cfg.duration;
    while (now_s() < end) {
        long n = round_trip(c, &cfg, value, keys, &next, res);
        if (n < 0)
            goto out;
        ops += n;
    }
    double wall = now_s() - w0, cpu = cpu_s() - c0;
    double scpu = server_cpu_s(cfg.server_pid) - s0;
    if (cfg.json && cfg.server_pid > 0)
        printf("{\"ops\": %ld, \"wall\": %.6f, \"cpu\": %.6f, \"server_cpu\": %.6f}\n",
               ops, wall, cpu, scpu);
    else if (cfg.json)
        printf("{\"ops\": %ld, \"wall\": %.6f, \"cpu\": %.6f}\n", ops, wall, cpu);
    else
        printf("%s batch=%d: %.0f ops/s, %.2f us client CPU/op (%ld ops in "
               "%.2f s)\n", cfg.is_set ? "set" : "get", cfg.batch,
               (double)ops / wall, cpu / (double)ops * 1e6, ops, wall);
    status = 0;
out:
    free(value);
    free(res);
    free(keys);
    cbffi_client_destroy(c);
    return status;
}
