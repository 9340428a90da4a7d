/*
 * sasl.h - client side SASL for the KV port (PROTOCOL.md 6), sans-IO.
 *
 * Nothing here touches a socket: the caller sends LIST_MECHS / AUTH / STEP
 * and feeds the server's bytes in.
 *
 *   cb_sasl_select()  picks a mechanism from LIST_MECHS' reply:
 *                     SCRAM-SHA512 > SCRAM-SHA256 > SCRAM-SHA1; PLAIN (or
 *                     any other) only when forced by name.
 *   cb_sasl_plain()   builds PLAIN's AUTH value "\0user\0password".
 *   cb_scram_*        RFC 5802 SCRAM without channel binding ("n,,") and
 *                     without SASLprep (as libcouchbase):
 *                       start  -> client-first (AUTH value)
 *                       step   -> client-final (STEP value), given server-first
 *                                 (= parse + derive + finish, for a caller
 *                                 that may spend the derivation's time:
 *                                 parse checks server-first, derive is the
 *                                 PBKDF2, a pure function any thread may
 *                                 run, finish builds client-final from it)
 *                       verify -> checks server-final's v= signature
 *
 * Ownership: a cb_scram is caller-allocated and zero-initialised; it owns
 * a copy of the password, its messages and derived keys (all malloc'd or
 * inline), which cb_scram_free() zeroes and releases.  A message returned
 * through (*msg, *nmsg) points into the cb_scram and lives until the next
 * cb_scram_* call on it.  Server input is borrowed for the call only.
 */
#ifndef CBFFI_SASL_H
#define CBFFI_SASL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef enum {
    CB_SASL_NONE = 0,
    CB_SASL_PLAIN = 1,
    CB_SASL_SCRAM_SHA1 = 2,
    CB_SASL_SCRAM_SHA256 = 3,
    CB_SASL_SCRAM_SHA512 = 4
} cb_sasl_mech;

/* Return codes (0 = success). */
enum {
    CB_SASL_OK = 0,
    CB_SASL_ENOMECH = -1,    /* no acceptable mechanism offered */
    CB_SASL_EUNAVAIL = -2,   /* the forced mechanism is not offered */
    CB_SASL_EINVAL = -3,     /* bad argument from the caller */
    CB_SASL_EPROTO = -4,     /* malformed / hostile server message */
    CB_SASL_EAUTH = -5,      /* server said e=..., or its signature is wrong */
    CB_SASL_ESTATE = -6,     /* call out of order */
    CB_SASL_ENOMEM = -7,
    CB_SASL_ECRYPTO = -8     /* OpenSSL failure (RAND, PBKDF2, HMAC) */
};

enum {
    CB_SASL_MAX_CRED = 4096,       /* user / password bytes */
    CB_SASL_MAX_SERVER_MSG = 4096, /* server-first / server-final bytes */
    CB_SASL_MAX_NONCE = 256,       /* server nonce bytes */
    CB_SASL_MAX_SALT = 256,        /* decoded salt bytes */
    /* i= is accepted in 1..this.  RFC 5802 lets the server choose the
       count, so a hostile or misconfigured one could make every handshake
       derive for seconds (10,000,000 iterations of SHA-512: about 6 s).
       Couchbase Server's default is 15,000 (about 10 ms); 100,000 leaves an
       administrator who raised it 6x headroom (pgjdbc and node-postgres
       cap theirs there too) and costs at most about 60 ms of SHA-512,
       which negotiate.c runs off the loop (bg.h) anyway. */
    CB_SCRAM_MAX_ITER = 100000
};

/* The wire name of a mechanism ("SCRAM-SHA512", ...), "" for NONE. */
const char *cb_sasl_mech_name(cb_sasl_mech m);

/* The spelling of m to send in SASL_AUTH / STEP: the one `offered` (n
   bytes, as LIST_MECHS returns) uses, else cb_sasl_mech_name(m).  Static
   storage. */
const char *cb_sasl_wire_name(const char *offered, size_t n, cb_sasl_mech m);

/* The mechanism named name[0..n) (case-insensitive; "SCRAM-SHA512" and
   "SCRAM-SHA-512" alike), or CB_SASL_NONE. */
cb_sasl_mech cb_sasl_mech_from_name(const char *name, size_t n);

/*
 * Choose from `offered` (n bytes, space/whitespace separated names, as
 * LIST_MECHS returns).  force: NULL or "" for the best SCRAM offered, else
 * a mechanism name that must be offered.  Returns CB_SASL_OK with *out set,
 * CB_SASL_ENOMECH (no SCRAM offered, not forced), CB_SASL_EUNAVAIL (forced
 * but not offered) or CB_SASL_EINVAL (force names no mechanism we know).
 */
int cb_sasl_select(const char *offered, size_t n, const char *force,
                   cb_sasl_mech *out);

/* Append PLAIN's AUTH value "\0user\0password" to out.  Returns CB_SASL_OK,
   CB_SASL_EINVAL (credential too long) or CB_SASL_ENOMEM (out unchanged). */
int cb_sasl_plain(cb_buf *out, const char *user, const char *password);

typedef struct cb_scram {
    cb_sasl_mech mech;
    int state;                 /* private: 0 new, 1 started, 4 parsed, 2 stepped, 3 done, -1 failed */
    char *password;            /* malloc'd copy, zeroed on free */
    size_t npassword;
    char cnonce[CB_SASL_MAX_NONCE + 1];
    size_t ncnonce;
    cb_buf first_bare;         /* "n=<user>,r=<cnonce>" */
    cb_buf out;                /* the last message returned */
    cb_buf auth;               /* AuthMessage, after parse */
    unsigned char salt[CB_SASL_MAX_SALT]; /* after parse: derive's input */
    size_t nsalt;
    unsigned long iter;        /* after parse: 1..CB_SCRAM_MAX_ITER */
    unsigned char server_sig[64];
    size_t nserver_sig;
    char err[160];             /* last error, "" if none */
} cb_scram;

/*
 * Begin a SCRAM exchange.  s must be zeroed (or freed) first.  mech is one of
 * the SCRAM mechanisms; user and password are NUL-terminated UTF-8 (no
 * SASLprep is applied); nonce is NULL for 24 random hex characters, or a
 * printable test nonce without ','.  On CB_SASL_OK, (*msg, *nmsg) is the
 * client-first message "n,,n=<escaped user>,r=<nonce>".
 * Errors: CB_SASL_EINVAL, CB_SASL_ENOMEM, CB_SASL_ECRYPTO.
 */
int cb_scram_start(cb_scram *s, cb_sasl_mech mech, const char *user,
                   const char *password, const char *nonce,
                   const char **msg, size_t *nmsg);

/*
 * Feed the server-first message (the AUTH reply's value, n bytes).  On
 * CB_SASL_OK, (*msg, *nmsg) is the client-final message
 * "c=biws,r=<nonce>,p=<base64 proof>".  Errors: CB_SASL_EPROTO (bad nonce,
 * salt, iteration count, missing attribute, oversized), CB_SASL_EAUTH (e=),
 * CB_SASL_ESTATE, CB_SASL_ENOMEM, CB_SASL_ECRYPTO.  See cb_scram_error().
 */
int cb_scram_step(cb_scram *s, const char *server_first, size_t n,
                  const char **msg, size_t *nmsg);

/*
 * cb_scram_step in three: cb_scram_parse checks server-first (errors as
 * cb_scram_step's) and leaves salt, nsalt and iter in s; cb_scram_derive
 * computes SaltedPassword (PBKDF2 of mech's digest) into key (64 bytes of
 * room), its size into *nkey: thread-safe, touches no cb_scram; returns
 * CB_SASL_OK, CB_SASL_EINVAL or CB_SASL_ECRYPTO; cb_scram_finish takes that
 * key and gives client-final as cb_scram_step does.
 */
int cb_scram_parse(cb_scram *s, const char *server_first, size_t n);
int cb_scram_derive(cb_sasl_mech mech, const char *password, size_t npassword,
                    const unsigned char *salt, size_t nsalt, unsigned long iter,
                    unsigned char *key, size_t *nkey);
int cb_scram_finish(cb_scram *s, const unsigned char *key, size_t nkey,
                    const char **msg, size_t *nmsg);

/*
 * Check the server-final message (the STEP reply's value, n bytes).
 * CB_SASL_OK when v= matches the expected ServerSignature (constant-time
 * compare); CB_SASL_EAUTH for a mismatch or a server e=<error>;
 * CB_SASL_EPROTO when malformed; CB_SASL_ESTATE out of order.
 */
int cb_scram_verify(cb_scram *s, const char *server_final, size_t n);

/* Why the last call failed ("" if it did not); lives as long as s. */
const char *cb_scram_error(const cb_scram *s);

/* Zero the secrets and release everything; s may then be reused. */
void cb_scram_free(cb_scram *s);

#endif
