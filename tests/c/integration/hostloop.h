/*
 * hostloop.h - test helper: a minimal host event loop over libcbffi's
 * non-blocking interface (cbffi_io_*), one poll() step at a time, as an
 * application's own loop would drive it.
 */
#ifndef CBFFI_TEST_HOSTLOOP_H
#define CBFFI_TEST_HOSTLOOP_H

#include <poll.h>

#include "cbffi.h"

typedef struct hostloop {
    struct pollfd pf[64];   /* the sockets the core asked to watch */
    int n;
} hostloop;

/* Apply the core's watch-set changes to L. */
void hl_watches(cbffi_client *c, hostloop *L);
/* Apply the changes, poll once (until the core's deadline, or idle_ms if it
   has none) and report what became ready, or tick if nothing did. */
void hl_step_idle(cbffi_client *c, hostloop *L, int idle_ms);
/* hl_step_idle with 100 ms. */
void hl_step(cbffi_client *c, hostloop *L);

#endif
