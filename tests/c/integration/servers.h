/*
 * servers.h - test helpers: real memcached servers on free loopback ports,
 * and small fake servers (garbage, silence) in threads.
 */
#ifndef CBFFI_TEST_SERVERS_H
#define CBFFI_TEST_SERVERS_H

#include <sys/types.h>

typedef struct mc_server {
    pid_t pid;
    int port;
    char extra[64];   /* extra memcached arguments, e.g. "-I 1m" */
} mc_server;

/* A loopback port nobody listens on right now. */
int free_port(void);
/* Start memcached on s->port (or a free one if 0); waits until it accepts.
   Returns 0 or -1. */
int mc_start(mc_server *s);
/* SIGKILL and reap. */
void mc_kill(mc_server *s);
void mc_signal(mc_server *s, int sig);
/* Kill every server still running (group teardown). */
void mc_kill_all(void);

/* A fake server thread on a free port: accepts connections and, for each
   request read, does `mode`. */
enum fake_mode { FAKE_GARBAGE = 1, FAKE_SILENT = 2, FAKE_TRUNCATE_CLOSE = 3,
                 FAKE_WRONG_OPAQUE = 4, FAKE_HUGE_BODY = 5,
                 /* answers a request with valid STAT packets for its opaque,
                    without end (no terminator), for up to FLOOD_SECONDS */
                 FAKE_STAT_FLOOD = 6 };
enum { FLOOD_SECONDS = 3 };
typedef struct fake_server fake_server;
fake_server *fake_start(enum fake_mode mode, int *port);
void fake_stop(fake_server *f);

#endif
