/*
 * conn.c - one socket per server: non-blocking connect with timeout,
 * TCP_NODELAY, a write buffer of coalesced packets, a read buffer decoded
 * into whole responses, and a FIFO of in-flight ops matched by opaque.
 *
 * Addresses: a numeric host is converted inline (AI_NUMERICHOST never
 * touches the resolver); a name is looked up in a thread (bg.h), the conn
 * CONNECTING without a socket meanwhile, so that a resolver that hangs
 * holds nothing past the connect timeout.  A lookup that outlives its
 * attempt is kept and waited for by the next one instead of starting
 * another (one lookup thread per conn at most).
 *
 * The socket is non-blocking while connecting and blocking afterwards: every
 * send/recv passes MSG_DONTWAIT except the sync fast path
 * (cb_conn_read_blocking), which blocks in recv() under SO_RCVTIMEO so that a
 * synchronous operation costs one send and one receive system call.
 */
#include "bg.h"
#include "client_private.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { READ_CHUNK = 16384, KEEP_BUF = 1 << 20 };

/* ---- op queue ------------------------------------------------------------- */

int cb_opq_push(cb_opq *q, cb_op *op)
{
    if (q->count == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        cb_op **items = malloc(cap * sizeof(*items));
        if (!items)
            return -1;
        for (size_t i = 0; i < q->count; i++)
            items[i] = q->items[(q->head + i) % q->cap];
        free(q->items);
        q->items = items;
        q->head = 0;
        q->cap = cap;
    }
    q->items[(q->head + q->count) % q->cap] = op;
    q->count++;
    return 0;
}

static cb_op *opq_head(const cb_opq *q)
{
    return q->count ? q->items[q->head] : NULL;
}

static cb_op *opq_pop(cb_opq *q)
{
    cb_op *op = q->items[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    return op;
}

/* ---- setup ---------------------------------------------------------------- */

cb_conn *cb_conn_new(cbffi_client *c, int index, const char *host,
                     uint16_t port, int ipv6)
{
    cb_conn *conn = calloc(1, sizeof(*conn));
    if (!conn)
        return NULL;
    conn->client = c;
    conn->index = index;
    conn->fd = -1;
    conn->host = strdup(host);
    if (!conn->host) {
        free(conn);
        return NULL;
    }
    snprintf(conn->port, sizeof(conn->port), "%u", (unsigned)port);
    cb_hostport hp = {.host = conn->host, .port = port, .ipv6 = (uint8_t)ipv6};
    size_t nname = strlen(host) + sizeof("[]:65535");
    conn->name = malloc(nname);
    if (!conn->name) {
        free(conn->host);
        free(conn);
        return NULL;
    }
    cb_hostport_format(&hp, conn->name, nname);
    conn->next_opaque = 1;
    conn->negotiate = c->type == CBFFI_TYPE_COUCHBASE ||
                      (c->username && c->username[0]); /* memcached SASL */
    return conn;
}

int cb_watch_push(cbffi_client *c, int fd, uint32_t events)
{
    /* Coalesce with the last queued change for the same fd, unless that one
       removes it (the fd number may be reused by a new socket).  A removal
       replaces it: the host applies changes in order and must never be
       asked to watch an fd that is closed by the time it reads the ask. */
    for (size_t i = c->nchanges; i-- > 0;) {
        if (c->changes[i].fd == fd) {
            if (c->changes[i].events != 0) {
                c->changes[i].events = events;
                return 0;
            }
            break;
        }
    }
    if (c->nchanges == c->changes_cap) {
        size_t cap = c->changes_cap ? c->changes_cap * 2 : 16;
        cbffi_watch *w = realloc(c->changes, cap * sizeof(*w));
        if (!w)
            return -1;
        c->changes = w;
        c->changes_cap = cap;
    }
    c->changes[c->nchanges++] = (cbffi_watch){fd, events};
    return 0;
}

/* Tell the host loop to forget the socket, then close it. */
static void close_socket(cb_conn *conn)
{
    if (conn->fd < 0)
        return;
    if (conn->watched) {
        conn->watched = 0;
        cb_watch_push(conn->client, conn->fd, 0);
    }
    close(conn->fd);
    conn->fd = -1;
    conn->rcvtimeo = 0;
}

void cb_conn_close(cb_conn *conn)
{
    close_socket(conn);
    conn->state = CB_CONN_IDLE;
    conn->resolving = 0; /* the lookup, if any, runs on for the next attempt */
    cb_nego_free(conn);
    if (conn->ai)
        freeaddrinfo(conn->ai);
    conn->ai = conn->ai_next = NULL;
    cb_buf_clear(&conn->hbuf);
    cb_buf_clear(&conn->wbuf);
    cb_buf_clear(&conn->rbuf);
    conn->wqueued = conn->wsent = 0;
    conn->tail_quiet = NULL;
}

void cb_conn_free(cb_conn *conn)
{
    if (!conn)
        return;
    if (conn->fd >= 0)
        close(conn->fd);
    conn->fd = -1;
    if (conn->ai)
        freeaddrinfo(conn->ai);
    cb_job_release(conn->client, conn->lookup);
    conn->lookup = NULL;
    cb_nego_free(conn);
    cb_buf_free(&conn->hbuf);
    cb_buf_free(&conn->wbuf);
    cb_buf_free(&conn->rbuf);
    free(conn->queue.items);
    free(conn->host);
    free(conn->name);
    free(conn);
}

/* ---- watch set ------------------------------------------------------------ */

uint32_t cb_conn_wanted(const cb_conn *conn)
{
    switch (conn->state) {
    case CB_CONN_CONNECTING:
        return CBFFI_IO_WRITE;
    case CB_CONN_NEGOTIATING:
        return CBFFI_IO_READ |
               (cb_buf_size(&conn->hbuf) ? CBFFI_IO_WRITE : 0u);
    case CB_CONN_CONNECTED:
        return CBFFI_IO_READ |
               (cb_buf_size(&conn->wbuf) ? CBFFI_IO_WRITE : 0u);
    default:
        return 0;
    }
}

void cb_conn_update_watch(cb_conn *conn)
{
    uint32_t want = cb_conn_wanted(conn);
    if (conn->fd < 0 || want == conn->watched)
        return;
    if (cb_watch_push(conn->client, conn->fd, want) == 0)
        conn->watched = want; /* else retried at the next state change */
}

void cb_conn_mark_dirty(cb_conn *conn)
{
    if (conn->dirty || conn->retired)
        return;
    conn->dirty = 1;
    conn->dnext = conn->client->dirty;
    conn->client->dirty = conn;
}

void cb_conn_undirty(cb_conn *conn)
{
    if (!conn->dirty)
        return;
    cb_conn **pp = &conn->client->dirty;
    while (*pp && *pp != conn)
        pp = &(*pp)->dnext;
    if (*pp)
        *pp = conn->dnext;
    conn->dirty = 0;
    conn->dnext = NULL;
}

/* ---- failure ---------------------------------------------------------------- */

static void fail_queue(cb_conn *conn, int rc, uint64_t sent)
{
    cbffi_client *c = conn->client;
    int couchbase = c->type == CBFFI_TYPE_COUCHBASE;
    while (conn->queue.count) {
        cb_op *op = opq_pop(&conn->queue);
        if (couchbase)
            cb_cluster_on_conn_lost(c, conn, op, rc, op->wpos < sent);
        else if (op->parent)
            cb_child_finish(c, op, rc);
        else
            cb_op_fail(c, op, rc, conn->index);
        cb_op_unref(c, op);
    }
    cb_op *w = conn->waiters;
    conn->waiters = NULL;
    while (w) {
        cb_op *next = w->wnext;
        cb_child_finish(c, w, rc);
        cb_op_unref(c, w);
        w = next;
    }
}

void cb_conn_fail(cb_conn *conn, int rc, const char *fmt, ...)
{
    cbffi_client *c = conn->client;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cb_set_error(c, "%s: %s", conn->name, msg);
    uint64_t sent = conn->wsent;
    cb_conn_close(conn);
    fail_queue(conn, rc, sent); /* reads conn->was_ready */
    conn->was_ready = 0;
    if (c->type != CBFFI_TYPE_COUCHBASE)
        return;
    if (conn == c->seed)
        cb_cluster_seed_failed(c, rc);
    else if (!conn->retired)
        cb_cluster_refresh(c, conn); /* the map may have changed */
}

/* ---- connecting ------------------------------------------------------------ */

void cb_conn_ready(cb_conn *conn)
{
    conn->state = CB_CONN_CONNECTED;
    conn->was_ready = 1;
    cb_op *w = conn->waiters;
    conn->waiters = NULL;
    while (w) {
        cb_op *next = w->wnext;
        cb_child_finish(conn->client, w, CBFFI_OK);
        cb_op_unref(conn->client, w);
        w = next;
    }
    if (cb_buf_size(&conn->wbuf))
        cb_conn_mark_dirty(conn);
}

static void on_connected(cb_conn *conn)
{
    int one = 1;
    int flags = fcntl(conn->fd, F_GETFL);
    setsockopt(conn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (flags >= 0)
        fcntl(conn->fd, F_SETFL, flags & ~O_NONBLOCK);
    conn->last_read = cb_now();
    if (conn->ai)
        freeaddrinfo(conn->ai);
    conn->ai = conn->ai_next = NULL;
    if (conn->negotiate) {
        conn->state = CB_CONN_NEGOTIATING;
        cb_nego_start(conn);
    } else {
        cb_conn_ready(conn);
    }
}

/* Try the remaining addresses until one connects or is in progress.
   Returns 0, or the errno of the last attempt. */
static int try_next_address(cb_conn *conn)
{
    int err = ECONNREFUSED;
    while (conn->ai_next) {
        struct addrinfo *ai = conn->ai_next;
        conn->ai_next = ai->ai_next;
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
                                           SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
            errno == EINPROGRESS) {
            conn->fd = fd;
            return 0;
        }
        err = errno;
        close(fd);
    }
    return err;
}

static void connect_failed(cb_conn *conn, int err)
{
    cb_conn_fail(conn, CBFFI_CONNECT_ERROR, "connect failed: %s",
                 strerror(err));
}

/* Connect to the first of conn->ai that takes it. */
static void connect_addresses(cb_conn *conn)
{
    conn->ai_next = conn->ai;
    int err = try_next_address(conn);
    if (err)
        connect_failed(conn, err);
}

/* The lookup finished while this attempt waited for it. */
static void on_resolved(cb_conn *conn)
{
    struct addrinfo *ai = NULL;
    int gai = cb_job_addrinfo(conn->lookup, &ai);
    cb_job_release(conn->client, conn->lookup);
    conn->lookup = NULL;
    conn->resolving = 0;
    if (gai != 0) {
        cb_conn_fail(conn, CBFFI_UNKNOWN_HOST, "cannot resolve host: %s",
                     gai_strerror(gai));
        return;
    }
    conn->ai = ai;
    connect_addresses(conn);
}

static void start_connect(cb_conn *conn)
{
    cbffi_client *c = conn->client;
    cb_buf_shrink(&conn->wbuf, KEEP_BUF);
    cb_buf_shrink(&conn->rbuf, KEEP_BUF);
    conn->connect_deadline = cb_now() + c->connect_timeout;
    conn->state = CB_CONN_CONNECTING;
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    int gai = getaddrinfo(conn->host, conn->port, &hints, &conn->ai);
    if (gai == 0) {
        connect_addresses(conn);
        return;
    }
    conn->ai = NULL;
    if (gai != EAI_NONAME) {
        cb_conn_fail(conn, CBFFI_UNKNOWN_HOST, "cannot resolve host: %s",
                     gai_strerror(gai));
        return;
    }
    /* A name: looked up in a thread (one still running from an attempt
       that gave up is waited for again; one from before a fork() never
       ends here). */
    if (conn->lookup && cb_job_orphaned(conn->lookup)) {
        cb_job_release(c, conn->lookup);
        conn->lookup = NULL;
    }
    if (!conn->lookup) {
        const char *why = "";
        conn->lookup = cb_job_resolve(c, conn->host, conn->port, &why);
        if (!conn->lookup) {
            cb_conn_fail(conn, CBFFI_UNKNOWN_HOST, "cannot look up host: %s",
                         why);
            return;
        }
    }
    conn->resolving = 1;
    cb_bg_watch(c);
    if (cb_job_done(conn->lookup))
        on_resolved(conn);
}

void cb_conn_jobs(cb_conn *conn)
{
    if (conn->lookup && cb_job_done(conn->lookup)) {
        if (conn->resolving) {
            on_resolved(conn);
        } else { /* its attempt gave up: a later one looks up afresh */
            cb_job_release(conn->client, conn->lookup);
            conn->lookup = NULL;
        }
    }
    if (conn->nego)
        cb_nego_jobs(conn);
    cb_conn_update_watch(conn);
}

static void on_connect_ready(cb_conn *conn)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err == 0) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        if (getpeername(conn->fd, (struct sockaddr *)&peer, &plen) != 0 &&
            errno == ENOTCONN)
            return; /* still in progress (a stale event for a reused fd) */
        on_connected(conn);
        return;
    }
    close_socket(conn);
    err = try_next_address(conn);
    if (err)
        connect_failed(conn, err);
}

/* ---- writing ---------------------------------------------------------------- */

/* The last packet of a flush must not be quiet: it is what tells us that
   every quiet get before it has been answered (PROTOCOL.md 1.3). */
static void seal_tail(cb_conn *conn)
{
    cb_op *op = conn->tail_quiet;
    if (!op)
        return;
    conn->tail_quiet = NULL;
    op->cmd = cb_loud_of(op->cmd);
    op->quiet = 0;
    conn->wbuf.data[conn->tail_off + 1] = (char)op->cmd;
}

/* Send from b; returns -1 if the connection failed. */
static int send_buf(cb_conn *conn, cb_buf *b, uint64_t *counter)
{
    while (cb_buf_size(b)) {
        ssize_t n = send(conn->fd, cb_buf_head(b), cb_buf_size(b),
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            cb_buf_consume(b, (size_t)n);
            if (counter)
                *counter += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        cb_conn_fail(conn, CBFFI_NETWORK_ERROR, "send failed: %s",
                     strerror(errno));
        return -1;
    }
    if (cb_buf_size(b) == 0)
        cb_buf_shrink(b, KEEP_BUF);
    return 0;
}

static void send_some(cb_conn *conn)
{
    if (conn->state == CB_CONN_NEGOTIATING) {
        send_buf(conn, &conn->hbuf, NULL);
        return;
    }
    seal_tail(conn);
    send_buf(conn, &conn->wbuf, &conn->wsent);
}

void cb_conn_flush(cb_conn *conn)
{
    if (conn->state == CB_CONN_IDLE &&
        (cb_conn_busy(conn) || conn->fetch_config))
        start_connect(conn);
    if (conn->state >= CB_CONN_NEGOTIATING)
        send_some(conn);
    cb_conn_update_watch(conn);
}

/* The packet of op (opaque conn->next_opaque) is in wbuf from off: queue
   op, or take the packet back.  The opaque is used up only when queued:
   queued ops must have consecutive opaques (see opaque_queued). */
static int queue_op(cb_conn *conn, cb_op *op, size_t off)
{
    if (cb_opq_push(&conn->queue, op) != 0) {
        conn->wbuf.len = off;
        return -1;
    }
    conn->next_opaque++;
    op->refs++;
    op->wpos = conn->wqueued;
    conn->wqueued += conn->wbuf.len - off;
    op->server = (int16_t)conn->index;
    if (op->quiet) {
        conn->tail_quiet = op;
        conn->tail_off = off;
    } else {
        conn->tail_quiet = NULL;
    }
    cb_conn_mark_dirty(conn);
    return 0;
}

/* Room for an n-byte packet at the end of wbuf; its offset is known only
   afterwards: making room may move the unsent bytes to the front. */
static int reserve_packet(cb_conn *conn, size_t n)
{
    return cb_buf_reserve(&conn->wbuf, n);
}

int cb_conn_enqueue(cb_conn *conn, cb_op *op, cb_req *req)
{
    if (reserve_packet(conn, CB_HEADER_LEN + (size_t)req->next + req->nkey +
                                 req->nvalue) != 0)
        return -1;
    size_t off = conn->wbuf.len;
    op->opaque = conn->next_opaque;
    req->opaque = op->opaque;
    op->cmd = req->opcode;
    if (cb_encode(&conn->wbuf, req) != 0)
        return -1;
    op->quiet = cb_loud_of(req->opcode) != req->opcode;
    return queue_op(conn, op, off);
}

int cb_conn_enqueue_pkt(cb_conn *conn, cb_op *op)
{
    if (reserve_packet(conn, cb_buf_size(&op->pkt)) != 0)
        return -1;
    size_t off = conn->wbuf.len;
    if (cb_buf_append(&conn->wbuf, cb_buf_head(&op->pkt),
                      cb_buf_size(&op->pkt)) != 0)
        return -1;
    char *p = conn->wbuf.data + off;
    op->opaque = conn->next_opaque;
    memcpy(p + 12, &op->opaque, 4);
    if (op->vb_header)
        cb_put16(p + 6, op->vb);
    op->cmd = (uint8_t)p[1];
    op->quiet = cb_loud_of(op->cmd) != op->cmd;
    return queue_op(conn, op, off);
}

int cb_conn_send_handshake(cb_conn *conn, const cb_req *req)
{
    if (cb_encode(&conn->hbuf, req) != 0)
        return -1;
    cb_conn_mark_dirty(conn);
    return 0;
}

void cb_conn_add_waiter(cb_conn *conn, cb_op *child)
{
    child->refs++;
    child->wnext = conn->waiters;
    conn->waiters = child;
    cb_conn_mark_dirty(conn);
}

/* ---- reading ---------------------------------------------------------------- */

/* Is `opaque` one of the queued requests?  Queued requests have
   consecutive opaques (handshake packets use their own, negotiate.c), so
   its position follows from the head's. */
static int opaque_queued(const cb_opq *q, uint32_t opaque)
{
    if (!q->count)
        return 0;
    uint32_t pos = opaque - q->items[q->head]->opaque;
    return pos < q->count &&
           q->items[(q->head + pos) % q->cap]->opaque == opaque;
}

/* Dispatch one decoded response to the op it answers.  Quiet gets queued
   before it got no answer: they missed.  Returns -1 if the connection
   failed. */
static int dispatch(cb_conn *conn, const cb_resp *r)
{
    cbffi_client *c = conn->client;
    if (conn->state == CB_CONN_NEGOTIATING)
        return cb_nego_response(conn, r);
    if (!opaque_queued(&conn->queue, r->opaque)) {
        cb_conn_fail(conn, CBFFI_PROTOCOL_ERROR,
                     "response with opaque %u matches no request",
                     (unsigned)r->opaque);
        return -1;
    }
    cb_op *op;
    while ((op = opq_head(&conn->queue))->opaque != r->opaque) {
        if (!op->quiet) {
            cb_conn_fail(conn, CBFFI_PROTOCOL_ERROR,
                         "response out of order (opaque %u, expected %u)",
                         (unsigned)r->opaque, (unsigned)op->opaque);
            return -1;
        }
        opq_pop(&conn->queue);
        cb_handle_silence(c, conn, op);
        cb_op_unref(c, op);
    }
    if (r->opcode != op->cmd && r->opcode != cb_loud_of(op->cmd)) {
        cb_conn_fail(conn, CBFFI_PROTOCOL_ERROR,
                     "response opcode 0x%02x answers request 0x%02x",
                     r->opcode, op->cmd);
        return -1;
    }
    if (cb_handle_response(c, conn, op, r) < 0)
        return -1; /* the handler failed the connection */
    return conn->state >= CB_CONN_NEGOTIATING ? 0 : -1;
}

/* Decode every whole packet in rbuf. */
static void decode_all(cb_conn *conn)
{
    cb_buf *b = &conn->rbuf;
    while (conn->state >= CB_CONN_NEGOTIATING) {
        cb_resp r;
        const char *why = NULL;
        ssize_t n = cb_decode(cb_buf_head(b), cb_buf_size(b), &r,
                              conn->client->max_body, &why);
        if (n == CB_DECODE_NEED_MORE)
            break;
        if (n == CB_DECODE_BAD) {
            cb_conn_fail(conn, CBFFI_PROTOCOL_ERROR, "%s", why);
            return;
        }
        if (dispatch(conn, &r) < 0)
            return;
        cb_buf_consume(b, (size_t)n);
    }
    if (conn->state >= CB_CONN_NEGOTIATING) {
        if (b->off > 0 && (b->off >= b->cap / 2 || cb_buf_size(b) == 0))
            cb_buf_compact(b);
        if (cb_buf_size(b) == 0)
            cb_buf_shrink(b, KEEP_BUF);
    }
}

/* Room to read into: at least a chunk, or the rest of a large packet. */
static size_t read_room(cb_conn *conn)
{
    cb_buf *b = &conn->rbuf;
    size_t want = READ_CHUNK;
    cb_resp r;
    const char *why;
    if (cb_buf_size(b) >= CB_HEADER_LEN &&
        cb_decode_header(cb_buf_head(b), &r, conn->client->max_body, &why) == 0) {
        size_t total = (size_t)CB_HEADER_LEN + r.bodylen;
        if (total > cb_buf_size(b) && total - cb_buf_size(b) > want)
            want = total - cb_buf_size(b);
    }
    if (cb_buf_reserve(b, want) != 0)
        return 0;
    return b->cap - b->len;
}

/* One recv(), counting the bytes into *got; returns 2 if it filled all the
   room (more may be waiting), 1 if bytes were decoded, 0 on EAGAIN, -1 if
   the connection failed. */
static int read_once(cb_conn *conn, int flags, size_t *got)
{
    size_t room = read_room(conn);
    if (room == 0) {
        cb_conn_fail(conn, CBFFI_CLIENT_ENOMEM, "out of memory for a reply");
        return -1;
    }
    ssize_t n;
    do {
        n = recv(conn->fd, conn->rbuf.data + conn->rbuf.len, room, flags);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        *got += (size_t)n;
        conn->rbuf.len += (size_t)n;
        conn->last_read = cb_now();
        decode_all(conn);
        if (conn->state < CB_CONN_NEGOTIATING)
            return -1;
        return (size_t)n == room ? 2 : 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (n == 0)
        cb_conn_fail(conn, CBFFI_NETWORK_ERROR,
                     "the server closed the connection");
    else
        cb_conn_fail(conn, CBFFI_NETWORK_ERROR, "receive failed: %s",
                     strerror(errno));
    return -1;
}

/* Read again only while the buffer fills up (more may be waiting), and
   then only up to CB_READ_BUDGET bytes: past it, back to the loop with the
   socket still readable (level-triggered: reported again at once), so that
   a peer streaming faster than we decode cannot keep the other connections
   and every timeout waiting.  The common case is one recv() either way. */
static void read_burst(cb_conn *conn, int flags)
{
    size_t got = 0;
    int rc = read_once(conn, flags, &got);
    while (rc == 2 && got < CB_READ_BUDGET)
        rc = read_once(conn, MSG_DONTWAIT, &got);
}

void cb_conn_on_event(cb_conn *conn, uint32_t events)
{
    if (conn->state == CB_CONN_CONNECTING) {
        if (events & (CBFFI_IO_WRITE | CBFFI_IO_READ))
            on_connect_ready(conn);
        if (conn->state >= CB_CONN_NEGOTIATING)
            send_some(conn);
    } else if (conn->state >= CB_CONN_NEGOTIATING) {
        if (events & CBFFI_IO_WRITE)
            send_some(conn);
        if ((events & CBFFI_IO_READ) && conn->state >= CB_CONN_NEGOTIATING)
            read_burst(conn, MSG_DONTWAIT);
    }
    cb_conn_update_watch(conn);
}

/* SO_RCVTIMEO rounded down to 10 ms steps so that consecutive operations
   with the same timeout do not need a setsockopt() each. */
static void set_rcvtimeo(cb_conn *conn, uint64_t timeout_us)
{
    uint64_t t = timeout_us >= 10000 ? timeout_us - timeout_us % 10000
                                     : (timeout_us ? timeout_us : 1);
    if (conn->rcvtimeo && conn->rcvtimeo <= timeout_us)
        return;
    struct timeval tv = {(time_t)(t / 1000000), (suseconds_t)(t % 1000000)};
    if (setsockopt(conn->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0)
        conn->rcvtimeo = t;
}

void cb_conn_read_blocking(cb_conn *conn, uint64_t timeout_us)
{
    set_rcvtimeo(conn, timeout_us);
    read_burst(conn, 0);
    if (conn->state >= CB_CONN_NEGOTIATING)
        cb_conn_update_watch(conn);
}
