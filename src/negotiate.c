/*
 * negotiate.c - the handshake on a new couchbase:// connection
 * (PROTOCOL.md 2.2 HELLO, 6 SASL), in the order libcouchbase uses:
 *
 *   HELLO + SASL_LIST_MECHS  (pipelined)
 *   SASL_AUTH [+ SASL_STEP]  (SCRAM-SHA512 > 256 > 1; PLAIN only if forced)
 *   SELECT_BUCKET            (if HELLO accepted SELECT_BUCKET)
 *   GET_CLUSTER_CONFIG       (bootstrap connections only)
 *
 * On memcached:// with a username, the handshake is SASL alone
 * (SASL_LIST_MECHS, then AUTH[/STEP]): SCRAM when offered (cyrus spells it
 * "SCRAM-SHA-256"), else PLAIN, memcached's usual mechanism; a server
 * without SASL (UNKNOWN_COMMAND) is used without it.
 *
 * Packets go through the conn's handshake buffer, which is sent before any
 * operation: operations scheduled meanwhile wait in wbuf and go out once
 * the conn is ready.  Responses arrive in order (nothing else is on the
 * wire), so each is handled by its opcode.  Any failure fails the conn with
 * a status a user can act on: CBFFI_AUTH_ERROR, CBFFI_BUCKET_ENOENT,
 * CBFFI_SASLMECH_UNAVAILABLE, CBFFI_PROTOCOL_ERROR, CBFFI_NOT_SUPPORTED.
 *
 * SCRAM's key derivation (PBKDF2, the server's choice of up to
 * CB_SCRAM_MAX_ITER iterations: up to about 60 ms) runs in a thread (bg.h),
 * so that the loop and every other connection go on meanwhile and the
 * handshake still ends at the connect deadline; the STEP goes out when it
 * is done.  A count over the cap fails the handshake with
 * CBFFI_PROTOCOL_ERROR before anything is derived.
 *
 * Ownership: cb_nego belongs to its conn (conn->nego), freed when the
 * handshake ends or the conn closes; it owns the SCRAM state and the
 * derivation job (released, so abandoned if still running, when freed).
 */
#include "bg.h"
#include "client_private.h"
#include "errors.h"
#include "sasl.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

static const char AGENT[] = "couchbase-ffi/0.1.0";

/* HELLO features we ask for (PROTOCOL.md 2.3). */
enum {
    FEAT_TCPNODELAY = 0x03,
    FEAT_MUTATION_SEQNO = 0x04,
    FEAT_XERROR = 0x07,
    FEAT_SELECT_BUCKET = 0x08,
    FEAT_JSON = 0x0b
};
static const uint16_t FEATURES[] = {FEAT_TCPNODELAY, FEAT_MUTATION_SEQNO,
                                    FEAT_XERROR, FEAT_SELECT_BUCKET,
                                    FEAT_JSON};

struct cb_nego {
    cb_sasl_mech mech;
    const char *mech_name;  /* as the server spells it (static storage) */
    uint8_t verified;       /* SCRAM's server signature checked */
    cb_scram scram;
    cb_job *kdf;            /* SCRAM's PBKDF2 running, or NULL */
    uint32_t opaque;        /* of the next handshake packet (see send_req) */
    uint8_t select_bucket;  /* HELLO accepted SELECT_BUCKET */
    /* Requests sent and not answered yet, oldest first: a reply must answer
       the oldest (the server executes in order), so that a hostile server
       cannot skip a step, e.g. SCRAM's signature check. */
    uint8_t sent[4];
    uint8_t nsent;
};

/* Handshake packets take their opaques from a range of their own: the
   operations queued meanwhile must keep consecutive opaques (conn.c matches
   replies by that), and handshake replies are told apart by opcode. */
enum { NEGO_OPAQUE_BASE = 0xf0000000u };

void cb_nego_free(cb_conn *conn)
{
    if (!conn->nego)
        return;
    cb_job_release(conn->client, conn->nego->kdf);
    cb_scram_free(&conn->nego->scram);
    free(conn->nego);
    conn->nego = NULL;
}

static int send_req(cb_conn *conn, uint8_t opcode, const char *key,
                    size_t nkey, const char *value, size_t nvalue)
{
    cb_req req = {.opcode = opcode, .key = key, .nkey = (uint16_t)nkey,
                  .value = value, .nvalue = (uint32_t)nvalue,
                  .opaque = conn->nego->opaque++};
    cb_nego *n = conn->nego;
    if (n->nsent == sizeof(n->sent)) {
        cb_conn_fail(conn, CBFFI_EINTERNAL, "handshake queue full");
        return -1;
    }
    n->sent[n->nsent++] = opcode;
    if (cb_conn_send_handshake(conn, &req) != 0) {
        cb_conn_fail(conn, CBFFI_CLIENT_ENOMEM, "out of memory");
        return -1;
    }
    return 0;
}

void cb_nego_start(cb_conn *conn)
{
    conn->nego = calloc(1, sizeof(*conn->nego));
    if (!conn->nego) {
        cb_conn_fail(conn, CBFFI_CLIENT_ENOMEM, "out of memory");
        return;
    }
    conn->nego->opaque = NEGO_OPAQUE_BASE;
    if (conn->client->type == CBFFI_TYPE_MEMCACHED) {
        /* memcached:// with credentials: SASL only (memcached has no HELLO,
           buckets or cluster maps). */
        send_req(conn, CB_CMD_SASL_LIST_MECHS, NULL, 0, NULL, 0);
        return;
    }
    char feats[sizeof(FEATURES)];
    for (size_t i = 0; i < sizeof(FEATURES) / sizeof(FEATURES[0]); i++)
        cb_put16(feats + 2 * i, FEATURES[i]);
    if (send_req(conn, CB_CMD_HELLO, AGENT, sizeof(AGENT) - 1, feats,
                 sizeof(feats)) != 0)
        return;
    send_req(conn, CB_CMD_SASL_LIST_MECHS, NULL, 0, NULL, 0);
}

static int fail(cb_conn *conn, int rc, const char *what, const cb_resp *r)
{
    if (r && r->nvalue && r->datatype == 0)
        cb_conn_fail(conn, rc, "%s (status 0x%02x: %.*s)", what, r->status,
                     (int)(r->nvalue > 120 ? 120 : r->nvalue), r->value);
    else if (r)
        cb_conn_fail(conn, rc, "%s (status 0x%02x)", what, r->status);
    else
        cb_conn_fail(conn, rc, "%s", what);
    return -1;
}

static int on_hello(cb_conn *conn, const cb_resp *r)
{
    /* Every Couchbase data node since 4.0 knows HELLO; memcached does not,
       and would leave the SASL_LIST_MECHS behind it unanswered. */
    if (r->status == CB_ST_UNKNOWN_COMMAND)
        return fail(conn, CBFFI_NOT_SUPPORTED,
                    "not a Couchbase data node (HELLO is unknown); use "
                    "memcached:// for memcached servers", NULL);
    if (r->status != CB_ST_SUCCESS)
        return 0; /* refused: no features */
    for (uint32_t i = 0; i + 1 < r->nvalue; i += 2) {
        uint16_t f = cb_get16(r->value + i);
        if (f == FEAT_XERROR)
            conn->xerror = 1;
        else if (f == FEAT_SELECT_BUCKET)
            conn->nego->select_bucket = 1;
    }
    return 0;
}

/* Authenticated (or no SASL): select the bucket, fetch the config, or be
   ready. */
static int after_auth(cb_conn *conn)
{
    cbffi_client *c = conn->client;
    if (conn->nego->select_bucket && c->cs.bucket[0]) {
        return send_req(conn, CB_CMD_SELECT_BUCKET, c->cs.bucket,
                        strlen(c->cs.bucket), NULL, 0);
    }
    if (conn->fetch_config) {
        return send_req(conn, CB_CMD_GET_CLUSTER_CONFIG, NULL, 0, NULL, 0);
    }
    cb_nego_free(conn);
    cb_conn_ready(conn);
    return 0;
}

static int on_mechs(cb_conn *conn, const cb_resp *r)
{
    cbffi_client *c = conn->client;
    cb_nego *n = conn->nego;
    if (r->status == CB_ST_UNKNOWN_COMMAND || r->status == CB_ST_NOT_SUPPORTED)
        return after_auth(conn); /* no SASL on this server */
    if (r->status != CB_ST_SUCCESS)
        return fail(conn, CBFFI_AUTH_ERROR, "SASL_LIST_MECHS failed", r);
    int rc = cb_sasl_select(r->value, r->nvalue, c->cs.sasl_mech_force,
                            &n->mech);
    if (rc == CB_SASL_ENOMECH && c->type == CBFFI_TYPE_MEMCACHED &&
        cb_sasl_select(r->value, r->nvalue, "PLAIN", &n->mech) == CB_SASL_OK)
        rc = CB_SASL_OK; /* memcached's SASL is PLAIN in practice (cyrus) */
    if (rc == CB_SASL_EINVAL)
        return fail(conn, CBFFI_EINVAL, "sasl_mech_force names no mechanism "
                    "this client knows", NULL);
    if (rc != CB_SASL_OK) {
        cb_conn_fail(conn, CBFFI_SASLMECH_UNAVAILABLE,
                     "no acceptable SASL mechanism among '%.*s'%s",
                     (int)(r->nvalue > 100 ? 100 : r->nvalue), r->value,
                     rc == CB_SASL_ENOMECH ? " (PLAIN needs sasl_mech_force=PLAIN)"
                                           : "");
        return -1;
    }
    const char *name = n->mech_name =
        cb_sasl_wire_name(r->value, r->nvalue, n->mech);
    if (n->mech == CB_SASL_PLAIN) {
        cb_buf v = {0};
        if (cb_sasl_plain(&v, c->username, c->password) != CB_SASL_OK) {
            cb_buf_free(&v);
            return fail(conn, CBFFI_EINVAL, "credentials too long", NULL);
        }
        int s = send_req(conn, CB_CMD_SASL_AUTH, name, strlen(name),
                         cb_buf_head(&v), cb_buf_size(&v));
        cb_buf_free(&v);
        return s;
    }
    const char *msg;
    size_t nmsg;
    rc = cb_scram_start(&n->scram, n->mech, c->username, c->password, NULL,
                        &msg, &nmsg);
    if (rc != CB_SASL_OK)
        return fail(conn, rc == CB_SASL_ENOMEM ? CBFFI_CLIENT_ENOMEM
                                               : CBFFI_EINVAL,
                    cb_scram_error(&n->scram), NULL);
    return send_req(conn, CB_CMD_SASL_AUTH, name, strlen(name), msg, nmsg);
}

/* SaltedPassword is known: send client-final. */
static int send_step(cb_conn *conn, const unsigned char *key, size_t nkey)
{
    cb_nego *n = conn->nego;
    const char *name = n->mech_name;
    const char *msg;
    size_t nmsg;
    int rc = cb_scram_finish(&n->scram, key, nkey, &msg, &nmsg);
    if (rc != CB_SASL_OK)
        return fail(conn, rc == CB_SASL_ENOMEM ? CBFFI_CLIENT_ENOMEM
                                               : CBFFI_EINTERNAL,
                    cb_scram_error(&n->scram), NULL);
    return send_req(conn, CB_CMD_SASL_STEP, name, strlen(name), msg, nmsg);
}

void cb_nego_jobs(cb_conn *conn)
{
    cb_nego *n = conn->nego;
    if (!n->kdf || !cb_job_done(n->kdf))
        return;
    unsigned char key[64];
    size_t nkey = 0;
    int rc = cb_job_key(n->kdf, key, &nkey);
    cb_job_release(conn->client, n->kdf);
    n->kdf = NULL;
    if (rc != 0)
        fail(conn, CBFFI_EINTERNAL, "SCRAM key derivation failed", NULL);
    else
        send_step(conn, key, nkey);
    OPENSSL_cleanse(key, sizeof key);
}

static int on_auth(cb_conn *conn, const cb_resp *r)
{
    cb_nego *n = conn->nego;
    if (r->status == CB_ST_SUCCESS && n->mech == CB_SASL_PLAIN)
        return after_auth(conn);
    if (r->status == CB_ST_AUTH_CONTINUE && n->mech != CB_SASL_PLAIN) {
        cb_scram *s = &n->scram;
        int rc = cb_scram_parse(s, r->value, r->nvalue);
        if (rc == CB_SASL_EAUTH)
            return fail(conn, CBFFI_AUTH_ERROR, cb_scram_error(s), NULL);
        if (rc != CB_SASL_OK)
            return fail(conn, rc == CB_SASL_ENOMEM ? CBFFI_CLIENT_ENOMEM
                                                   : CBFFI_PROTOCOL_ERROR,
                        cb_scram_error(s), NULL);
        n->kdf = cb_job_pbkdf2(conn->client, (int)s->mech, s->password,
                               s->npassword, s->salt, s->nsalt, s->iter);
        if (n->kdf)
            return 0; /* cb_nego_jobs goes on */
        /* No thread to be had: derive here (bounded by CB_SCRAM_MAX_ITER). */
        unsigned char key[64];
        size_t nkey = 0;
        rc = cb_scram_derive(s->mech, s->password, s->npassword, s->salt,
                             s->nsalt, s->iter, key, &nkey);
        int sent = rc == CB_SASL_OK
                       ? send_step(conn, key, nkey)
                       : fail(conn, CBFFI_EINTERNAL,
                              "SCRAM key derivation failed", NULL);
        OPENSSL_cleanse(key, sizeof key);
        return sent;
    }
    if (r->status == CB_ST_SUCCESS)
        return fail(conn, CBFFI_PROTOCOL_ERROR,
                    "the server ended SCRAM without a server signature", r);
    return fail(conn, CBFFI_AUTH_ERROR,
                "authentication failed: wrong username or password", r);
}

/* Couchbase ends SCRAM with SUCCESS carrying server-final (v=...); cyrus
   SASL (memcached -S) sends server-final with AUTH_CONTINUE and says
   SUCCESS to one more, empty, STEP.  Either way the signature is checked
   before anything else is sent. */
static int on_step(cb_conn *conn, const cb_resp *r)
{
    cb_nego *n = conn->nego;
    if (r->status == CB_ST_AUTH_CONTINUE && !n->verified) {
        if (cb_scram_verify(&n->scram, r->value, r->nvalue) != CB_SASL_OK)
            return fail(conn, CBFFI_AUTH_ERROR, cb_scram_error(&n->scram),
                        NULL);
        n->verified = 1;
        return send_req(conn, CB_CMD_SASL_STEP, n->mech_name,
                        strlen(n->mech_name), NULL, 0);
    }
    if (r->status != CB_ST_SUCCESS)
        return fail(conn, CBFFI_AUTH_ERROR,
                    "authentication failed: wrong username or password", r);
    if (!n->verified &&
        cb_scram_verify(&n->scram, r->value, r->nvalue) != CB_SASL_OK)
        return fail(conn, CBFFI_AUTH_ERROR, cb_scram_error(&n->scram), NULL);
    return after_auth(conn);
}

static int on_select(cb_conn *conn, const cb_resp *r)
{
    switch (r->status) {
    case CB_ST_SUCCESS:
        break;
    case CB_ST_EACCESS:
    case CB_ST_KEY_ENOENT:
    case CB_ST_NO_BUCKET:
        cb_conn_fail(conn, CBFFI_BUCKET_ENOENT,
                     "bucket '%s' does not exist or this user may not use it",
                     conn->client->cs.bucket);
        return -1;
    case CB_ST_AUTH_ERROR:
        return fail(conn, CBFFI_AUTH_ERROR, "SELECT_BUCKET refused", r);
    default:
        return fail(conn, CBFFI_PROTOCOL_ERROR, "SELECT_BUCKET failed", r);
    }
    if (conn->fetch_config)
        return send_req(conn, CB_CMD_GET_CLUSTER_CONFIG, NULL, 0, NULL, 0);
    cb_nego_free(conn);
    cb_conn_ready(conn);
    return 0;
}

static int on_config(cb_conn *conn, const cb_resp *r)
{
    cbffi_client *c = conn->client;
    if (r->status == CB_ST_UNKNOWN_COMMAND || r->status == CB_ST_NOT_SUPPORTED)
        return fail(conn, CBFFI_NOT_SUPPORTED,
                    "not a Couchbase data node (no GET_CLUSTER_CONFIG); use "
                    "memcached:// for memcached servers", r);
    if (r->status == CB_ST_NO_BUCKET || r->status == CB_ST_EACCESS) {
        cb_conn_fail(conn, CBFFI_BUCKET_ENOENT,
                     "bucket '%s' does not exist or this user may not use it",
                     c->cs.bucket);
        return -1;
    }
    if (r->status != CB_ST_SUCCESS)
        return fail(conn, CBFFI_PROTOCOL_ERROR, "GET_CLUSTER_CONFIG failed", r);
    conn->fetch_config = 0;
    cb_nego_free(conn);
    /* Ready first: applying the map may adopt this conn, and operations
       routed to it then go out at once. */
    conn->state = CB_CONN_CONNECTED;
    conn->was_ready = 1;
    int applied = cb_cluster_apply_json(c, r->value, r->nvalue, conn->host);
    if (applied < 0) {
        cb_conn_fail(conn, CBFFI_PROTOCOL_ERROR, "bad cluster map: %s",
                     c->last_error);
        return -1;
    }
    cb_cluster_seed_done(c, conn);
    if (conn->state == CB_CONN_CONNECTED)
        cb_conn_ready(conn);
    return conn->state == CB_CONN_CONNECTED ? 0 : -1;
}

int cb_nego_response(cb_conn *conn, const cb_resp *r)
{
    cb_nego *n = conn->nego;
    if (!n || n->nsent == 0 || r->opcode != n->sent[0])
        return fail(conn, CBFFI_PROTOCOL_ERROR,
                    "a reply out of order during the handshake", r);
    memmove(n->sent, n->sent + 1, --n->nsent);
    switch (r->opcode) {
    case CB_CMD_HELLO:
        return on_hello(conn, r);
    case CB_CMD_SASL_LIST_MECHS:
        return on_mechs(conn, r);
    case CB_CMD_SASL_AUTH:
        return on_auth(conn, r);
    case CB_CMD_SASL_STEP:
        return on_step(conn, r);
    case CB_CMD_SELECT_BUCKET:
        return on_select(conn, r);
    case CB_CMD_GET_CLUSTER_CONFIG:
        return on_config(conn, r);
    default:
        return fail(conn, CBFFI_PROTOCOL_ERROR,
                    "unexpected opcode during the handshake", r);
    }
}
