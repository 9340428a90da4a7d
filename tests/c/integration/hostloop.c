/* hostloop.c - see hostloop.h. */
#include "hostloop.h"

void hl_watches(cbffi_client *c, hostloop *L)
{
    cbffi_watch w[16];
    size_t n;
    while ((n = cbffi_io_watches(c, w, 16)) > 0) {
        for (size_t i = 0; i < n; i++) {
            int j = 0;
            while (j < L->n && L->pf[j].fd != w[i].fd)
                j++;
            if (w[i].events == 0) {
                if (j < L->n)
                    L->pf[j] = L->pf[--L->n];
                continue;
            }
            if (j == L->n)
                L->n++;
            L->pf[j].fd = w[i].fd;
            L->pf[j].events = (short)(((w[i].events & CBFFI_IO_READ) ? POLLIN : 0) |
                                      ((w[i].events & CBFFI_IO_WRITE) ? POLLOUT : 0));
        }
    }
}

void hl_step_idle(cbffi_client *c, hostloop *L, int idle_ms)
{
    hl_watches(c, L);
    int64_t dl = cbffi_io_deadline(c);
    int k = poll(L->pf, (nfds_t)L->n, dl < 0 ? idle_ms : (int)(dl / 1000) + 1);
    if (k <= 0) {
        cbffi_io_tick(c);
        return;
    }
    /* the ready sockets first: an event may change the watch set */
    int fds[64];
    uint32_t ev[64];
    int nr = 0;
    for (int j = 0; j < L->n; j++)
        if (L->pf[j].revents) {
            fds[nr] = L->pf[j].fd;
            ev[nr++] = ((L->pf[j].revents & (POLLIN | POLLHUP | POLLERR)) ? CBFFI_IO_READ : 0) |
                       ((L->pf[j].revents & (POLLOUT | POLLHUP | POLLERR)) ? CBFFI_IO_WRITE : 0);
        }
    for (int j = 0; j < nr; j++)
        cbffi_io_event(c, fds[j], ev[j]);
}

void hl_step(cbffi_client *c, hostloop *L)
{
    hl_step_idle(c, L, 100);
}
