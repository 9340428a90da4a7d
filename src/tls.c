/*
 * tls.c - TLS on KV connections (see tls.h).
 *
 * OpenSSL reads and writes the conn's socket through a small BIO of ours
 * that passes MSG_DONTWAIT (and MSG_NOSIGNAL: a peer that went away is an
 * error, never a SIGPIPE), so that it never blocks whatever the socket's
 * mode.  Every SSL call ends in one of: progress, "want read", "want
 * write", or a failure.  The wants become the conn's watch set:
 *
 *   handshake:  conn->tls_want = the one event SSL_connect waits for;
 *   SSL_read wanting to write (a TLS 1.3 KeyUpdate answer, a TLS 1.2
 *               renegotiation): tls_want = CBFFI_IO_WRITE, and a writable
 *               event reads again (conn.c);
 *   SSL_write wanting to read: tls_wr = 1, and a readable event writes
 *               again (conn.c).  Reads are always watched on a ready conn.
 *
 * SSL_MODE_ENABLE_PARTIAL_WRITE + ACCEPT_MOVING_WRITE_BUFFER let the write
 * buffer move or grow between retries: a retry always starts with the
 * bytes the failed call was given (conn.c only ever consumes from the head).
 *
 * Bytes OpenSSL has already taken off the socket (a decrypted record not
 * yet read, a record's first part) raise no readiness event: a read burst
 * that stops at its budget with such bytes left sets client->tls_more,
 * which makes cbffi_io_deadline 0; the next tick reads on (cb_tls_drain).
 *
 * Verification (ssl=on): the peer's chain against the CA file
 * (truststorepath / certpath) or the system's store, the host name
 * (SSL_set1_host) or IP address (the certificate's IP SANs), and SNI for
 * names.  ssl=no_verify checks nothing: anyone on the path can pretend to
 * be the server (tests only).  Failures: CBFFI_SSL_CANTVERIFY (the chain,
 * the name), CBFFI_SSL_ERROR (anything else in the handshake, e.g. a
 * server that does not speak TLS); a peer that closes mid-stream is
 * CBFFI_NETWORK_ERROR as for a plain socket.
 */
#include "tls.h"

#include "client_private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct cb_tls_ctx {
    SSL_CTX *ctx;
    BIO_METHOD *bio;
    cb_tls_mode mode;
};

struct cb_tls {
    SSL *ssl;
    uint8_t established;   /* the handshake finished */
    uint8_t fatal;         /* a protocol failure: no close_notify */
    char err[200];
};

/* ---- the socket BIO ----------------------------------------------------- */

static int bio_fd(BIO *b)
{
    return (int)(intptr_t)BIO_get_data(b);
}

static int bio_write(BIO *b, const char *data, int n)
{
    ssize_t r;
    BIO_clear_retry_flags(b);
    do {
        r = send(bio_fd(b), data, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_write(b);
    return (int)r;
}

static int bio_read(BIO *b, char *data, int n)
{
    ssize_t r;
    BIO_clear_retry_flags(b);
    do {
        r = recv(bio_fd(b), data, (size_t)n, MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_read(b);
    return (int)r;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

/* ---- context ------------------------------------------------------------ */

static void openssl_reason(char *buf, size_t n)
{
    unsigned long e = ERR_peek_last_error();
    if (e) {
        ERR_error_string_n(e, buf, n);
    } else {
        snprintf(buf, n, "unknown error");
    }
}

int cb_tls_ctx_new(cb_tls_ctx **out, cb_tls_mode mode, const char *ca_file,
                   char *err, size_t nerr)
{
    *out = NULL;
    cb_tls_ctx *t = calloc(1, sizeof(*t));
    if (!t)
        return CBFFI_CLIENT_ENOMEM;
    t->mode = mode;
    ERR_clear_error();
    t->ctx = SSL_CTX_new(TLS_client_method());
    t->bio = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                          "cbffi socket");
    if (!t->ctx || !t->bio || !BIO_meth_set_write(t->bio, bio_write) ||
        !BIO_meth_set_read(t->bio, bio_read) ||
        !BIO_meth_set_ctrl(t->bio, bio_ctrl) ||
        !BIO_meth_set_create(t->bio, bio_create)) {
        cb_tls_ctx_free(t);
        return CBFFI_CLIENT_ENOMEM;
    }
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    /* a peer closing without close_notify is an EOF, as on a plain socket:
       the binary protocol's framing tells a cut reply by itself */
    SSL_CTX_set_options(t->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
    if (mode == CB_TLS_NO_VERIFY) {
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
        int ok = ca_file ? SSL_CTX_load_verify_locations(t->ctx, ca_file, NULL)
                         : SSL_CTX_set_default_verify_paths(t->ctx);
        if (!ok) {
            char why[160];
            openssl_reason(why, sizeof why);
            if (err && nerr)
                snprintf(err, nerr, "cannot load the CA certificates %s%s%s: %s",
                         ca_file ? "from '" : "of the system",
                         ca_file ? ca_file : "", ca_file ? "'" : "", why);
            cb_tls_ctx_free(t);
            return CBFFI_SSL_ERROR;
        }
    }
    *out = t;
    return CBFFI_OK;
}

void cb_tls_ctx_free(cb_tls_ctx *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    BIO_meth_free(t->bio);
    free(t);
}

/* ---- handshake ---------------------------------------------------------- */

static int is_ip_literal(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 ||
           inet_pton(AF_INET6, host, buf) == 1;
}

void cb_tls_start(cb_conn *conn)
{
    cb_tls_ctx *t = conn->client->tls;
    cb_tls *s = calloc(1, sizeof(*s));
    ERR_clear_error();
    SSL *ssl = s ? SSL_new(t->ctx) : NULL;
    BIO *bio = ssl ? BIO_new(t->bio) : NULL;
    if (!bio) {
        SSL_free(ssl);
        free(s);
        cb_conn_fail(conn, CBFFI_CLIENT_ENOMEM, "out of memory for TLS");
        return;
    }
    BIO_set_data(bio, (void *)(intptr_t)conn->fd);
    SSL_set_bio(ssl, bio, bio); /* ssl owns bio now */
    s->ssl = ssl;
    conn->tls = s;
    int ip = is_ip_literal(conn->host);
    int ok = 1;
    if (!ip)
        ok = SSL_set_tlsext_host_name(ssl, conn->host) == 1;
    if (ok && t->mode == CB_TLS_ON)
        ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), conn->host) == 1
                : SSL_set1_host(ssl, conn->host) == 1;
    if (!ok) {
        s->fatal = 1;
        cb_conn_fail(conn, CBFFI_SSL_ERROR, "TLS: cannot check the name '%s'",
                     conn->host);
        return;
    }
    conn->tls_hs = 1;
    conn->tls_want = CBFFI_IO_WRITE;
    SSL_set_connect_state(ssl);
}

/* A failed handshake: its typed rc, and why. */
static void handshake_failed(cb_conn *conn, int sslerr)
{
    cb_tls *s = conn->tls;
    long vr = SSL_get_verify_result(s->ssl);
    unsigned long e = ERR_peek_last_error();
    s->fatal = 1;
    if (sslerr == SSL_ERROR_SSL && vr != X509_V_OK) {
        cb_conn_fail(conn, CBFFI_SSL_CANTVERIFY,
                     "TLS: the server's certificate cannot be verified: %s",
                     X509_verify_cert_error_string(vr));
        return;
    }
    if (sslerr == SSL_ERROR_SSL && e) {
        char why[160];
        int reason = ERR_GET_REASON(e);
        openssl_reason(why, sizeof why);
        int plain = reason == SSL_R_WRONG_VERSION_NUMBER ||
                    reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
                    reason == SSL_R_RECORD_LENGTH_MISMATCH;
        cb_conn_fail(conn, CBFFI_SSL_ERROR, "TLS handshake failed: %s%s", why,
                     plain ? " (the server does not speak TLS on this port?)"
                           : "");
        return;
    }
    int en = errno;
    cb_conn_fail(conn, CBFFI_SSL_ERROR,
                 "TLS handshake failed: the server %s (the server does not "
                 "speak TLS on this port?)",
                 sslerr == SSL_ERROR_SYSCALL && en && en != EAGAIN
                     ? strerror(en)
                     : "closed the connection");
}

int cb_tls_handshake(cb_conn *conn)
{
    cb_tls *s = conn->tls;
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(s->ssl);
    if (r == 1) {
        s->established = 1;
        conn->tls_hs = 0;
        conn->tls_want = 0;
        return 1;
    }
    int e = SSL_get_error(s->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        conn->tls_want = CBFFI_IO_READ;
        return 0;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        conn->tls_want = CBFFI_IO_WRITE;
        return 0;
    }
    handshake_failed(conn, e);
    return -1;
}

/* ---- data --------------------------------------------------------------- */

/* After a failed SSL_read / SSL_write: set errno and the message. */
static ssize_t io_failed(cb_conn *conn, int e, int reading)
{
    cb_tls *s = conn->tls;
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0; /* close_notify: an orderly end */
    if (e == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0) {
        if (errno == 0)
            return reading ? 0 : (errno = EPIPE, -1);
        int en = errno;
        s->fatal = 1;
        snprintf(s->err, sizeof s->err, "%s", strerror(en));
        errno = en;
        return -1;
    }
    s->fatal = 1;
    char why[160];
    openssl_reason(why, sizeof why);
    snprintf(s->err, sizeof s->err, "TLS: %s", why);
    errno = EPROTO;
    return -1;
}

ssize_t cb_tls_read(cb_conn *conn, char *buf, size_t n)
{
    cb_tls *s = conn->tls;
    size_t got = 0;
    ERR_clear_error();
    errno = 0;
    int r = SSL_read_ex(s->ssl, buf, n, &got);
    if (r == 1) {
        conn->tls_want = 0;
        return (ssize_t)got;
    }
    int e = SSL_get_error(s->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        conn->tls_want = e == SSL_ERROR_WANT_WRITE ? CBFFI_IO_WRITE : 0;
        errno = EAGAIN;
        return -1;
    }
    return io_failed(conn, e, 1);
}

ssize_t cb_tls_write(cb_conn *conn, const char *buf, size_t n)
{
    cb_tls *s = conn->tls;
    size_t put = 0;
    ERR_clear_error();
    errno = 0;
    int r = SSL_write_ex(s->ssl, buf, n, &put);
    if (r == 1) {
        conn->tls_wr = 0;
        return (ssize_t)put;
    }
    int e = SSL_get_error(s->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        conn->tls_wr = e == SSL_ERROR_WANT_READ;
        errno = EAGAIN;
        return -1;
    }
    ssize_t rc = io_failed(conn, e, 0);
    return rc == 0 ? -1 : rc;
}

const char *cb_tls_error(const cb_conn *conn)
{
    return conn->tls && conn->tls->err[0] ? conn->tls->err : "TLS failure";
}

int cb_tls_pending(const cb_conn *conn)
{
    return conn->tls && SSL_has_pending(conn->tls->ssl);
}

void cb_tls_note_more(cb_conn *conn)
{
    if (cb_tls_pending(conn))
        conn->client->tls_more = 1;
}

static void drain_conn(cb_conn *conn)
{
    if (conn->tls && conn->state >= CB_CONN_NEGOTIATING &&
        SSL_has_pending(conn->tls->ssl))
        cb_conn_on_event(conn, CBFFI_IO_READ);
}

void cb_tls_drain(cbffi_client *c)
{
    c->tls_more = 0;
    for (int i = 0; i < c->nconns; i++)
        drain_conn(c->conns[i]);
    if (c->seed)
        drain_conn(c->seed);
}

int cb_tls_wait_readable(cb_conn *conn, uint64_t timeout_us)
{
    if (SSL_has_pending(conn->tls->ssl))
        return 1;
    struct pollfd p = {conn->fd,
                       (short)(POLLIN | (conn->tls_want & CBFFI_IO_WRITE
                                             ? POLLOUT : 0)),
                       0};
    int ms = (int)((timeout_us + 999) / 1000);
    int n;
    do {
        n = poll(&p, 1, ms);
    } while (n < 0 && errno == EINTR);
    return n > 0;
}

void cb_tls_free(cb_conn *conn)
{
    cb_tls *s = conn->tls;
    if (!s)
        return;
    conn->tls = NULL;
    conn->tls_want = 0;
    conn->tls_wr = 0;
    conn->tls_hs = 0;
    if (s->established && !s->fatal && conn->fd >= 0) {
        ERR_clear_error();
        SSL_shutdown(s->ssl); /* one try: close_notify if it fits now */
    }
    SSL_free(s->ssl);
    ERR_clear_error();
    free(s);
}
