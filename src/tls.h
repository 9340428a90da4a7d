/*
 * tls.h - TLS on KV connections (OpenSSL, TLS 1.2 or later), driven by the
 * host loop like the plain sockets: OpenSSL's "want read" / "want write"
 * become watch-set changes (conn->tls_want), never a wait.
 *
 * Ownership: the client owns one cb_tls_ctx (client->tls, created by
 * cb_tls_ctx_new when the connection string asks for TLS, freed by
 * cb_tls_ctx_free after every conn): the SSL_CTX (settings, trust store)
 * and the BIO method its connections use.  Each TLS conn owns one cb_tls
 * (conn->tls, from the TCP connect until cb_tls_free in cb_conn_close /
 * cb_conn_free): the SSL object (and through it its BIO) and the text of
 * its last error.  The socket stays the conn's.
 */
#ifndef CBFFI_TLS_H
#define CBFFI_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "connstr.h"

typedef struct cb_tls_ctx cb_tls_ctx;
typedef struct cb_tls cb_tls;
typedef struct cb_conn cb_conn;
typedef struct cbffi_client cbffi_client;

/* A context for `mode` (CB_TLS_ON: verify the servers' certificates against
   ca_file, or the system's trust store if NULL, and their names;
   CB_TLS_NO_VERIFY: verify nothing).  Returns CBFFI_OK, CBFFI_SSL_ERROR (the
   CA file cannot be read: why in err) or CBFFI_CLIENT_ENOMEM. */
int cb_tls_ctx_new(cb_tls_ctx **out, cb_tls_mode mode, const char *ca_file,
                   char *err, size_t nerr);
void cb_tls_ctx_free(cb_tls_ctx *ctx);

/* The TCP connection of conn is up: start the TLS handshake (SNI and the
   name to verify are conn->host).  Goes on in cb_tls_handshake; the conn
   is failed (typed) if the handshake cannot start. */
void cb_tls_start(cb_conn *conn);
/* Drive the handshake: 1 when it finished, 0 while it waits for the socket
   (conn->tls_want says for what), -1 if it failed (conn failed with
   CBFFI_SSL_ERROR or CBFFI_SSL_CANTVERIFY). */
int cb_tls_handshake(cb_conn *conn);

/* recv() / send() over TLS: bytes moved (> 0); 0 when the peer closed
   (read); -1 with errno EAGAIN when it would block (conn->tls_want /
   tls_wr say for what), else -1 with errno EPROTO and cb_tls_error() set. */
ssize_t cb_tls_read(cb_conn *conn, char *buf, size_t n);
ssize_t cb_tls_write(cb_conn *conn, const char *buf, size_t n);
/* The text of the last failure. */
const char *cb_tls_error(const cb_conn *conn);
/* Bytes inside OpenSSL not yet read (decrypted, or a record's start). */
int cb_tls_pending(const cb_conn *conn);

/* A read burst ended at its budget: if OpenSSL still holds bytes, no
   readiness event will announce them, so make the deadline 0
   (client->tls_more) and read them at the next cbffi_io_tick. */
void cb_tls_note_more(cb_conn *conn);
/* cbffi_io_tick: read what OpenSSL holds on every conn (bounded). */
void cb_tls_drain(cbffi_client *c);
/* The sync fast path: wait up to timeout_us until the conn can read
   (bytes held by OpenSSL count).  1 if ready, 0 if not. */
int cb_tls_wait_readable(cb_conn *conn, uint64_t timeout_us);

/* Free the SSL object (a close_notify is sent if the session is sound and
   the socket takes it at once).  NULL-safe on conn->tls. */
void cb_tls_free(cb_conn *conn);

#endif
