/*
 * raw_floor.c - the floor: a minimal blocking memcached binary-protocol loop
 * (put the next key into a GET or SET packet, send it, read the whole reply,
 * repeat).  Nothing a client could leave out.  It walks the same 1000 keys
 * (13 bytes, "k00" + 10 digits) as bench/workers/py_worker.py, so that the
 * server does the same work per operation as for the clients it is compared
 * with (one hot key is measurably cheaper for memcached than 1000).
 * Prints {"ops", "wall", "cpu"[, "server_cpu"]} for the timed window.
 *   raw_floor PORT get|set DURATION WARMUP [SERVER_PID]
 */
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server_cpu.h"

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

static int read_reply(int fd, unsigned char *buf, size_t cap)
{
    size_t got = 0, need = 24;
    while (got < need) {
        ssize_t r = recv(fd, buf + got, cap - got, 0);
        if (r <= 0)
            return -1;
        got += (size_t)r;
        if (got >= 24)
            need = 24 + ((size_t)buf[8] << 24 | (size_t)buf[9] << 16 | (size_t)buf[10] << 8 | buf[11]);
    }
    return buf[7]; /* low byte of the status */
}

int main(int argc, char **argv)
{
    if (argc < 5)
        return 2;
    int port = atoi(argv[1]), is_set = strcmp(argv[2], "set") == 0;
    double duration = atof(argv[3]), warmup = atof(argv[4]);
    int server_pid = argc > 5 ? atoi(argv[5]) : 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        return 3;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    enum { NKEYS = 1000 };
    static char keys[NKEYS][14];
    for (int i = 0; i < NKEYS; i++)
        snprintf(keys[i], sizeof keys[i], "k00%010d", i);
    unsigned char pkt[24 + 8 + 13 + 128] = {0x80}, buf[4096];
    size_t len = 24 + 13, koff = 24 + (is_set ? 8 : 0);
    pkt[1] = is_set ? 0x01 : 0x00;
    pkt[3] = 13;
    if (is_set) {
        pkt[4] = 8;
        len += 8 + 128;
        memset(pkt + 24 + 8 + 13, 'v', 128);
    }
    pkt[11] = (unsigned char)(len - 24);
    if (!is_set) { /* make sure the keys exist */
        unsigned char s[24 + 8 + 13 + 128] = {0x80, 0x01, 0, 13, 8};
        s[11] = 8 + 13 + 128;
        memset(s + 24 + 8 + 13, 'v', 128);
        for (int i = 0; i < NKEYS; i++) {
            memcpy(s + 32, keys[i], 13);
            send(fd, s, sizeof s, 0);
            if (read_reply(fd, buf, sizeof buf) != 0)
                return 4;
        }
    }
    long ops = 0;
    int k = 0;
    double t = now(), end = t + warmup, w0 = 0, c0 = 0, s0 = 0;
    for (int phase = 0; phase < 2; phase++) {
        if (phase == 1) {
            s0 = server_cpu(server_pid);
            w0 = now();
            c0 = cpu();
            end = w0 + duration;
        }
        while (now() < end) {
            memcpy(pkt + koff, keys[k], 13);
            k = k + 1 == NKEYS ? 0 : k + 1;
            send(fd, pkt, len, 0);
            if (read_reply(fd, buf, sizeof buf) != 0)
                return 4;
            ops += phase;
        }
    }
    double wall = now() - w0, c = cpu() - c0;
    if (server_pid > 0)
        printf("{\"ops\": %ld, \"wall\": %.6f, \"cpu\": %.6f, \"server_cpu\": %.6f}\n", ops,
               wall, c, server_cpu(server_pid) - s0);
    else
        printf("{\"ops\": %ld, \"wall\": %.6f, \"cpu\": %.6f}\n", ops, wall, c);
    return 0;
}
