/* servers.c - see servers.h */
#include "servers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Every server started, so that a failed test cannot leak one. */
static mc_server *started[64];
static int nstarted;

int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int can_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

int mc_start(mc_server *s)
{
    if (s->port == 0)
        s->port = free_port();
    char port[16];
    snprintf(port, sizeof port, "%d", s->port);
    s->pid = fork();
    if (s->pid == 0) {
        char *argv[16];
        int n = 0;
        argv[n++] = "memcached";
        argv[n++] = "-l";
        argv[n++] = "127.0.0.1";
        argv[n++] = "-p";
        argv[n++] = port;
        argv[n++] = "-U";
        argv[n++] = "0";
        argv[n++] = "-t";
        argv[n++] = "2";
        if (geteuid() == 0) {
            argv[n++] = "-u";
            argv[n++] = "nobody";
        }
        char extra[64];
        snprintf(extra, sizeof extra, "%s", s->extra);
        for (char *tok = strtok(extra, " "); tok && n < 15; tok = strtok(NULL, " "))
            argv[n++] = tok;
        argv[n] = NULL;
        execv("/usr/bin/memcached", argv);
        _exit(127);
    }
    if (nstarted < 64)
        started[nstarted++] = s;
    for (int i = 0; i < 200; i++) {
        if (can_connect(s->port))
            return 0;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

void mc_kill(mc_server *s)
{
    for (int i = nstarted; i-- > 0;)
        if (started[i] == s)
            started[i] = started[--nstarted];
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
    }
    s->pid = 0;
}


void mc_kill_all(void)
{
    while (nstarted > 0) {
        mc_server *s = started[nstarted - 1];
        if (s->pid > 0)
            kill(s->pid, SIGCONT);
        mc_kill(s); /* removes it from started[] */
    }
}

/* The state letter of /proc/PID/stat. */
static char proc_state(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return '?';
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p && p[1] && p[2] ? p[2] : '?';
}

void mc_signal(mc_server *s, int sig)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, sig);
    /* SIGSTOP is asynchronous: wait until the server is really stopped. */
    for (int i = 0; sig == SIGSTOP && i < 500 && proc_state(s->pid) != 'T'; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

/* ---- fake servers ---------------------------------------------------------- */

struct fake_server {
    int lfd;
    enum fake_mode mode;
    volatile int stop;
    pthread_t thr;
};

static void serve(fake_server *f, int fd)
{
    char buf[4096];
    while (!f->stop) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            return;
        unsigned char out[64] = {0};
        switch (f->mode) {
        case FAKE_GARBAGE:
            send(fd, "VALUE garbage 0 5\r\nhello\r\nEND\r\n", 31, MSG_NOSIGNAL);
            break;
        case FAKE_SILENT:
            break;
        case FAKE_TRUNCATE_CLOSE:
            out[0] = 0x81;
            out[11] = 10; /* body 10, never sent */
            send(fd, out, 24, MSG_NOSIGNAL);
            return;
        case FAKE_WRONG_OPAQUE:
            out[0] = 0x81;
            memcpy(out + 12, "\xde\xad\xbe\xef", 4);
            send(fd, out, 24, MSG_NOSIGNAL);
            break;
        case FAKE_HUGE_BODY:
            out[0] = 0x81;
            out[8] = 0x7f; /* 2 GiB body */
            send(fd, out, 24, MSG_NOSIGNAL);
            break;
        case FAKE_STAT_FLOOD: {
            static unsigned char flood[26 * 2048]; /* key "k", value "v" */
            for (size_t i = 0; i < sizeof flood; i += 26) {
                unsigned char *q = flood + i;
                memset(q, 0, 26);
                q[0] = 0x81;
                q[1] = 0x10;
                q[3] = 1;   /* key length */
                q[11] = 2;  /* body length */
                memcpy(q + 12, buf + 12, 4);
                q[24] = 'k';
                q[25] = 'v';
            }
            struct timespec t0, t;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            do {
                if (send(fd, flood, sizeof flood, MSG_NOSIGNAL) < 0)
                    return;
                clock_gettime(CLOCK_MONOTONIC, &t);
            } while (!f->stop && t.tv_sec - t0.tv_sec < FLOOD_SECONDS);
            return;
        }
        }
    }
}

static void *fake_main(void *arg)
{
    fake_server *f = arg;
    while (!f->stop) {
        struct pollfd p = {f->lfd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        serve(f, fd);
        close(fd);
    }
    return NULL;
}

fake_server *fake_start(enum fake_mode mode, int *port)
{
    fake_server *f = calloc(1, sizeof(*f));
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int one = 1;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->mode = mode;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(f->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(f->lfd, 8) != 0 ||
        getsockname(f->lfd, (struct sockaddr *)&a, &len) != 0) {
        close(f->lfd);
        free(f);
        return NULL;
    }
    *port = ntohs(a.sin_port);
    pthread_create(&f->thr, NULL, fake_main, f);
    return f;
}

void fake_stop(fake_server *f)
{
    if (!f)
        return;
    f->stop = 1;
    pthread_join(f->thr, NULL);
    close(f->lfd);
    free(f);
}
