/*
 * raw_floor.c - the floor: a minimal blocking memcached binary-protocol loop
 * (build one GET or SET packet, send it, read the whole reply, repeat).
 * Nothing a client could leave out.  Prints {"ops", "wall", "cpu"}.
 *   raw_floor PORT get|set DURATION WARMUP
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
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        return 3;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    unsigned char pkt[24 + 8 + 13 + 128] = {0x80}, buf[4096];
    size_t len = 24 + 13;
    pkt[1] = is_set ? 0x01 : 0x00;
    pkt[3] = 13;
    if (is_set) {
        pkt[4] = 8;
        len += 8 + 128;
        memset(pkt + 24 + 8 + 13, 'v', 128);
    }
    pkt[11] = (unsigned char)(len - 24);
    memcpy(pkt + 24 + (is_set ? 8 : 0), "k000000000000", 13);
    if (!is_set) { /* make sure the key exists */
        unsigned char s[24 + 8 + 13 + 128] = {0x80, 0x01, 0, 13, 8};
        s[11] = 8 + 13 + 128;
        memcpy(s + 32, "k000000000000", 13);
        send(fd, s, sizeof s, 0);
        read_reply(fd, buf, sizeof buf);
    }
    long ops = 0;
    double t = now(), end = t + warmup, w0 = 0, c0 = 0;
    for (int phase = 0; phase < 2; phase++) {
        if (phase == 1) {
            w0 = now();
            c0 = cpu();
            end = w0 + duration;
        }
        while (now() < end) {
            send(fd, pkt, len, 0);
            if (read_reply(fd, buf, sizeof buf) != 0)
                return 4;
            ops += phase;
        }
    }
    printf("{\"ops\": %ld, \"wall\": %.6f, \"cpu\": %.6f}\n", ops, now() - w0, cpu() - c0);
    return 0;
}
