/*
 * server_cpu.h - the CPU time a process (the memcached under test) has used,
 * for the benchmark workers: the sum over its threads of the first field of
 * /proc/PID/task/TID/schedstat (nanoseconds on a CPU, user and system), or,
 * where schedstat is missing, utime + stime from /proc/PID/stat (clock
 * ticks).  Sampled at both ends of a timed window, it gives the server CPU
 * per operation beside the client's.  Returns seconds; 0 if pid <= 0 or
 * /proc cannot be read.
 */
#ifndef BENCH_SERVER_CPU_H
#define BENCH_SERVER_CPU_H

#include <dirent.h>
#include <stdio.h>
#include <unistd.h>

static double server_cpu(int pid)
{
    if (pid <= 0)
        return 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    double total = 0;
    int any = 0;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char p[320];
            unsigned long long ns;
            snprintf(p, sizeof p, "/proc/%d/task/%s/schedstat", pid, e->d_name);
            FILE *f = fopen(p, "r");
            if (!f)
                continue;
            if (fscanf(f, "%llu", &ns) == 1) {
                total += (double)ns / 1e9;
                any = 1;
            }
            fclose(f);
        }
        closedir(d);
    }
    if (any)
        return total;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    unsigned long long ut = 0, st = 0;
    /* the command name is in parentheses and may hold spaces: skip past it */
    int c, last = 0;
    long pos = 0, after = 0;
    while ((c = fgetc(f)) != EOF) {
        pos++;
        if (c == ')')
            after = pos;
        last = c;
    }
    (void)last;
    if (after && fseek(f, after, SEEK_SET) == 0 &&
        fscanf(f, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2) {
        fclose(f);
        return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    }
    fclose(f);
    return 0;
}

#endif
