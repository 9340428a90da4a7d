/*
 * io.c - driving the client: the non-blocking interface for a host event
 * loop (cbffi_io_*), and the built-in blocking loop (cbffi_wait) written on
 * those same calls, in the manner of c-ares.
 *
 * The built-in loop keeps its own copy of the watch set, fed by
 * cbffi_io_watches() exactly as a host loop would be, and poll()s it.  One
 * shortcut: when a single connection has work and nothing is left to send,
 * it blocks in recv() directly (cb_conn_read_blocking) instead of poll() +
 * recv(), which makes a synchronous operation two system calls.
 *
 * cbffi_wait waits for every pending operation but streams' requests;
 * cbffi_stream_wait runs the same loop until one stream has a result.
 */
#include "bg.h"
#include "client_private.h"
#include "tls.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

/* ---- the host-loop interface ------------------------------------------------ */

/* Send for every conn with something to send.  Flushing one conn can make
   another dirty (a failure reroutes its ops), so until none is left. */
static void flush_dirty(cbffi_client *c)
{
    while (c->dirty) {
        cb_conn *conn = c->dirty;
        c->dirty = NULL;
        while (conn) {
            cb_conn *next = conn->dnext;
            conn->dirty = 0;
            conn->dnext = NULL;
            cb_conn_flush(conn);
            conn = next;
        }
    }
}

int cbffi_io_flush(cbffi_client *c)
{
    cb_cluster_bury(c);
    cb_release_harvested(c);
    cb_streams_service(c);
    flush_dirty(c);
    return 0;
}

static cb_conn *conn_of_fd(cbffi_client *c, int fd)
{
    if (fd < 0)
        return NULL;
    for (int i = 0; i < c->nconns; i++)
        if (c->conns[i]->fd == fd)
            return c->conns[i];
    if (c->seed && c->seed->fd == fd)
        return c->seed;
    return NULL;
}

int cbffi_io_event(cbffi_client *c, int fd, uint32_t events)
{
    cb_cluster_bury(c);
    cb_release_harvested(c);
    cb_streams_service(c);
    cb_conn *conn = conn_of_fd(c, fd);
    if (conn)
        cb_conn_on_event(conn, events);
    else if (cb_http_owns_fd(c, fd))
        cb_http_on_event(c, fd, events);
    else if (fd >= 0 && fd == cb_bg_fd(c))
        cb_bg_poll(c);
    flush_dirty(c);
    return 0;
}

int cbffi_io_tick(cbffi_client *c)
{
    cb_cluster_bury(c);
    cb_release_harvested(c);
    cb_streams_service(c);
    uint64_t now = cb_now();
    if (c->njobs)
        cb_bg_poll(c); /* in case the host is late with the eventfd */
    if (c->tls_more)
        cb_tls_drain(c); /* bytes OpenSSL holds: no event announces them */
    cb_expire(c, now);
    if (c->http)
        cb_http_tick(c, now);
    flush_dirty(c);
    return 0;
}

static int handshaking(const cb_conn *conn)
{
    return conn->state == CB_CONN_CONNECTING ||
           conn->state == CB_CONN_NEGOTIATING;
}

int64_t cbffi_io_deadline(cbffi_client *c)
{
    if (c->tls_more || c->nresume)
        return 0; /* bytes no event announces; streams to resume */
    uint64_t dl = c->npending ? c->next_deadline : UINT64_MAX;
    for (int i = 0; i < c->nconns; i++)
        if (handshaking(c->conns[i]) && c->conns[i]->connect_deadline < dl)
            dl = c->conns[i]->connect_deadline;
    if (c->type == CBFFI_TYPE_COUCHBASE) {
        uint64_t t = cb_cluster_next_timer(c);
        if (c->seed && handshaking(c->seed) && c->seed->connect_deadline < t)
            t = c->seed->connect_deadline;
        if (cb_http_timer(c) < t)
            t = cb_http_timer(c);
        if (t < dl)
            dl = t;
    }
    if (dl == UINT64_MAX)
        return -1;
    uint64_t now = cb_now();
    return dl <= now ? 0 : (int64_t)(dl - now);
}

size_t cbffi_io_watches(cbffi_client *c, cbffi_watch *out, size_t max)
{
    size_t n = c->nchanges < max ? c->nchanges : max;
    if (n)
        memcpy(out, c->changes, n * sizeof(*out));
    if (n < c->nchanges)
        memmove(c->changes, c->changes + n,
                (c->nchanges - n) * sizeof(*c->changes));
    c->nchanges -= n;
    return n;
}

/* ---- the built-in loop --------------------------------------------------- */

static short to_poll(uint32_t ev)
{
    return (short)(((ev & CBFFI_IO_READ) ? POLLIN : 0) |
                   ((ev & CBFFI_IO_WRITE) ? POLLOUT : 0));
}

/* Apply watch-set changes to the loop's pollfd array. */
static int apply_changes(cbffi_client *c)
{
    cbffi_watch w[16];
    size_t n;
    while ((n = cbffi_io_watches(c, w, 16)) > 0) {
        for (size_t i = 0; i < n; i++) {
            size_t j = 0;
            while (j < c->npfds && c->pfds[j].fd != w[i].fd)
                j++;
            if (w[i].events == 0) {
                if (j < c->npfds)
                    c->pfds[j] = c->pfds[--c->npfds];
                continue;
            }
            if (j == c->npfds) {
                if (c->npfds == c->pfds_cap) {
                    size_t cap = c->pfds_cap ? c->pfds_cap * 2 : 8;
                    struct pollfd *p = realloc(c->pfds, cap * sizeof(*p));
                    if (!p)
                        return -1;
                    c->pfds = p;
                    c->pfds_cap = cap;
                }
                c->npfds++;
                c->pfds[j].fd = w[i].fd;
            }
            c->pfds[j].events = to_poll(w[i].events);
        }
    }
    return 0;
}

/* The one connection with work if it only needs to read, else NULL. */
static cb_conn *sole_reader(cbffi_client *c)
{
    cb_conn *only = NULL;
    /* HTTP requests with sockets need the poll; ones without (a stream paused
       for room) only a deadline, which bounds the blocking read */
    if (c->seed || c->retryq || cb_http_watching(c))
        return NULL;
    for (int i = 0; i < c->nconns; i++) {
        cb_conn *conn = c->conns[i];
        if (!cb_conn_busy(conn) && conn->state != CB_CONN_CONNECTING)
            continue;
        if (only || conn->state != CB_CONN_CONNECTED ||
            cb_buf_size(&conn->wbuf) || conn->waiters)
            return NULL;
        only = conn;
    }
    return only;
}

static void poll_once(cbffi_client *c, int64_t timeout_us)
{
    struct timespec ts = {(time_t)(timeout_us / 1000000),
                          (long)(timeout_us % 1000000) * 1000};
    int n = ppoll(c->pfds, (nfds_t)c->npfds, &ts, NULL);
    if (n <= 0) {
        if (n == 0 || errno != EINTR)
            cbffi_io_tick(c);
        return;
    }
    /* Copy out first: handling an event may change the array. */
    struct { int fd; uint32_t ev; } ready[64];
    size_t nr = 0;
    for (size_t i = 0; i < c->npfds && nr < 64; i++) {
        short re = c->pfds[i].revents;
        if (!re)
            continue;
        uint32_t ev = 0;
        if (re & (POLLIN | POLLERR | POLLHUP))
            ev |= CBFFI_IO_READ;
        if (re & (POLLOUT | POLLERR | POLLHUP))
            ev |= CBFFI_IO_WRITE;
        ready[nr].fd = c->pfds[i].fd;
        ready[nr++].ev = ev;
    }
    for (size_t i = 0; i < nr; i++)
        cbffi_io_event(c, ready[i].fd, ready[i].ev);
}

/* One turn of the loop, the general way: tick, or poll and handle events. */
static void loop_turn(cbffi_client *c, int64_t dl)
{
    if (dl == 0 || apply_changes(c) != 0) {
        cbffi_io_tick(c);
        return;
    }
    poll_once(c, dl < 0 ? 1000000 : dl);
}

size_t cbffi_wait(cbffi_client *c, cbffi_result *out, size_t max)
{
    cbffi_io_flush(c);
    while (c->npending > c->nstreaming) { /* streams are not waited for */
        int64_t dl = cbffi_io_deadline(c);
        if (dl == 0) {
            cbffi_io_tick(c);
            continue;
        }
        cb_conn *only = sole_reader(c);
        if (only) {
            /* next_deadline is a lower bound; make it exact before it
               shortens the receive timeout (a setsockopt per call). */
            if ((uint64_t)dl < only->rcvtimeo || !only->rcvtimeo) {
                cb_expire(c, cb_now());
                if ((dl = cbffi_io_deadline(c)) <= 0)
                    continue;
            }
            cb_conn_read_blocking(only, (uint64_t)dl);
            if (only->state == CB_CONN_CONNECTED && cb_conn_busy(only) &&
                cbffi_io_deadline(c) == 0)
                cbffi_io_tick(c);
            flush_dirty(c);
            continue;
        }
        loop_turn(c, dl);
    }
    apply_changes(c);
    return max ? cbffi_harvest(c, out, max) : 0;
}

size_t cbffi_stream_wait(cbffi_client *c, cbffi_stream *s, cbffi_result *out,
                         size_t max)
{
    if (!s)
        return 0;
    if (cbffi_stream_ready(s) == 0 && !cb_stream_over(s)) {
        /* the stream's request is pending until it ends (its deadline at
           the latest), and its end is a result: this loop ends */
        cbffi_io_flush(c);
        while (cbffi_stream_ready(s) == 0)
            loop_turn(c, cbffi_io_deadline(c));
        apply_changes(c);
    }
    return cbffi_stream_harvest(c, s, out, max);
}
