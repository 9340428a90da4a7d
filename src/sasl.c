/*
 * sasl.c - SASL mechanism selection, PLAIN and SCRAM (see sasl.h).
 * Wire facts: PROTOCOL.md 6; RFC 5802 (SCRAM), RFC 7677 (SCRAM-SHA-256).
 */
#include "sasl.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <strings.h>

/* ---- mechanisms --------------------------------------------------------- */

/* In order of preference; PLAIN is never chosen unless forced.  Each SCRAM
   has two spellings: Couchbase's ("SCRAM-SHA512", the one
   cb_sasl_mech_name returns) and IANA's ("SCRAM-SHA-512", what cyrus SASL,
   hence memcached -S, offers). */
static const struct {
    const char *name;
    cb_sasl_mech mech;
    int automatic;
} mechs[] = {
    {"SCRAM-SHA512", CB_SASL_SCRAM_SHA512, 1},
    {"SCRAM-SHA-512", CB_SASL_SCRAM_SHA512, 1},
    {"SCRAM-SHA256", CB_SASL_SCRAM_SHA256, 1},
    {"SCRAM-SHA-256", CB_SASL_SCRAM_SHA256, 1},
    {"SCRAM-SHA1", CB_SASL_SCRAM_SHA1, 1},
    {"SCRAM-SHA-1", CB_SASL_SCRAM_SHA1, 1},
    {"PLAIN", CB_SASL_PLAIN, 0},
};
enum { NMECHS = sizeof mechs / sizeof mechs[0] };

const char *cb_sasl_mech_name(cb_sasl_mech m)
{
    for (size_t i = 0; i < NMECHS; i++)
        if (mechs[i].mech == m)
            return mechs[i].name;
    return "";
}

cb_sasl_mech cb_sasl_mech_from_name(const char *name, size_t n)
{
    for (size_t i = 0; i < NMECHS; i++)
        if (strlen(mechs[i].name) == n &&
            strncasecmp(mechs[i].name, name, n) == 0)
            return mechs[i].mech;
    return CB_SASL_NONE;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The table's spelling of m as found among the names in offered[0..n), or
   NULL if m is not offered. */
static const char *offered_name(const char *offered, size_t n, cb_sasl_mech m)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && is_space(offered[i]))
            i++;
        size_t start = i;
        while (i < n && !is_space(offered[i]))
            i++;
        for (size_t j = 0; i > start && j < NMECHS; j++)
            if (mechs[j].mech == m && strlen(mechs[j].name) == i - start &&
                strncasecmp(mechs[j].name, offered + start, i - start) == 0)
                return mechs[j].name;
    }
    return NULL;
}

static int offered_has(const char *offered, size_t n, cb_sasl_mech m)
{
    return offered_name(offered, n, m) != NULL;
}

const char *cb_sasl_wire_name(const char *offered, size_t n, cb_sasl_mech m)
{
    const char *name = offered ? offered_name(offered, n, m) : NULL;
    return name ? name : cb_sasl_mech_name(m);
}

int cb_sasl_select(const char *offered, size_t n, const char *force,
                   cb_sasl_mech *out)
{
    *out = CB_SASL_NONE;
    if (!offered)
        n = 0;
    if (force && *force) {
        cb_sasl_mech m = cb_sasl_mech_from_name(force, strlen(force));
        if (m == CB_SASL_NONE)
            return CB_SASL_EINVAL;
        if (!offered_has(offered, n, m))
            return CB_SASL_EUNAVAIL;
        *out = m;
        return CB_SASL_OK;
    }
    for (size_t i = 0; i < NMECHS; i++) {
        if (mechs[i].automatic && offered_has(offered, n, mechs[i].mech)) {
            *out = mechs[i].mech;
            return CB_SASL_OK;
        }
    }
    return CB_SASL_ENOMECH;
}

int cb_sasl_plain(cb_buf *out, const char *user, const char *password)
{
    size_t nu = strlen(user), np = strlen(password);
    if (nu > CB_SASL_MAX_CRED || np > CB_SASL_MAX_CRED)
        return CB_SASL_EINVAL;
    if (cb_buf_reserve(out, nu + np + 2) != 0)
        return CB_SASL_ENOMEM;
    /* reserve succeeded: these appends cannot fail */
    cb_buf_append(out, "", 1);
    cb_buf_append(out, user, nu);
    cb_buf_append(out, "", 1);
    cb_buf_append(out, password, np);
    return CB_SASL_OK;
}

/* ---- small helpers ------------------------------------------------------ */

static int fail(cb_scram *s, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    if (rc != CB_SASL_ESTATE && rc != CB_SASL_EINVAL)
        s->state = -1;
    return rc;
}

static const EVP_MD *scram_md(cb_sasl_mech m)
{
    switch (m) {
    case CB_SASL_SCRAM_SHA1: return EVP_sha1();
    case CB_SASL_SCRAM_SHA256: return EVP_sha256();
    case CB_SASL_SCRAM_SHA512: return EVP_sha512();
    default: return NULL;
    }
}

/* A nonce character: printable ASCII except ','. */
static int nonce_char(char c)
{
    return c >= 0x21 && c <= 0x7e && c != ',';
}

static int append_str(cb_buf *b, const char *str)
{
    return cb_buf_append(b, str, strlen(str));
}

/* Append "n=<user>" with '=' -> "=3D" and ',' -> "=2C". */
static int append_escaped_user(cb_buf *b, const char *user)
{
    if (append_str(b, "n=") != 0)
        return -1;
    for (const char *p = user; *p; p++) {
        const char *rep = *p == '=' ? "=3D" : *p == ',' ? "=2C" : NULL;
        if (rep ? append_str(b, rep) : cb_buf_append(b, p, 1))
            return -1;
    }
    return 0;
}

/* Append base64 of p[0..n). */
static int append_b64(cb_buf *b, const unsigned char *p, size_t n)
{
    size_t need = 4 * ((n + 2) / 3) + 1;
    if (cb_buf_reserve(b, need) != 0)
        return -1;
    int w = EVP_EncodeBlock((unsigned char *)b->data + b->len, p, (int)n);
    b->len += (size_t)w;
    return 0;
}

static int b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/*
 * Strictly decode base64 in[0..n) (length a multiple of 4, padding only at
 * the end) into out (capacity max).  Returns the decoded length, or -1.
 */
static long b64_decode(const char *in, size_t n, unsigned char *out, size_t max)
{
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > max + 2 || n > 4 * 1024)
        return -1;
    size_t pad = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '=' && i >= n - 2)
            pad++;
        else if (pad || !b64_char(in[i]))
            return -1;
    }
    unsigned char tmp[3 * 1024 + 3];
    int w = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)n);
    if (w < 0 || (size_t)w < pad || (size_t)w - pad > max)
        return -1;
    memcpy(out, tmp, (size_t)w - pad);
    OPENSSL_cleanse(tmp, sizeof tmp);
    return (long)((size_t)w - pad);
}

/* ---- start -------------------------------------------------------------- */

static int make_nonce(cb_scram *s, const char *nonce)
{
    if (nonce) {
        size_t n = strlen(nonce);
        if (n == 0 || n > CB_SASL_MAX_NONCE)
            return -1;
        for (size_t i = 0; i < n; i++)
            if (!nonce_char(nonce[i]))
                return -1;
        memcpy(s->cnonce, nonce, n + 1);
        s->ncnonce = n;
        return 0;
    }
    unsigned char raw[12];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return -2;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(s->cnonce + 2 * i, 3, "%02x", raw[i]);
    s->ncnonce = 2 * sizeof raw;
    return 0;
}

static void set_out(cb_scram *s, const char **msg, size_t *nmsg)
{
    *msg = cb_buf_head(&s->out);
    *nmsg = cb_buf_size(&s->out);
}

int cb_scram_start(cb_scram *s, cb_sasl_mech mech, const char *user,
                   const char *password, const char *nonce,
                   const char **msg, size_t *nmsg)
{
    if (s->state != 0)
        return fail(s, CB_SASL_ESTATE, "cb_scram_start: already started");
    if (!scram_md(mech))
        return fail(s, CB_SASL_EINVAL, "not a SCRAM mechanism");
    if (!user || !password || strlen(user) > CB_SASL_MAX_CRED ||
        strlen(password) > CB_SASL_MAX_CRED)
        return fail(s, CB_SASL_EINVAL, "missing or oversized credentials");
    int rc = make_nonce(s, nonce);
    if (rc == -1)
        return fail(s, CB_SASL_EINVAL, "bad client nonce");
    if (rc == -2)
        return fail(s, CB_SASL_ECRYPTO, "RAND_bytes failed");
    s->npassword = strlen(password);
    s->password = malloc(s->npassword + 1);
    if (!s->password)
        return fail(s, CB_SASL_ENOMEM, "out of memory");
    memcpy(s->password, password, s->npassword + 1);
    s->mech = mech;
    if (append_escaped_user(&s->first_bare, user) ||
        append_str(&s->first_bare, ",r=") ||
        cb_buf_append(&s->first_bare, s->cnonce, s->ncnonce) ||
        append_str(&s->out, "n,,") ||
        cb_buf_append(&s->out, cb_buf_head(&s->first_bare),
                      cb_buf_size(&s->first_bare)))
        return fail(s, CB_SASL_ENOMEM, "out of memory");
    s->state = 1;
    s->err[0] = '\0';
    set_out(s, msg, nmsg);
    return CB_SASL_OK;
}

/* ---- server-first parsing ----------------------------------------------- */

typedef struct {
    const char *nonce;          /* r= */
    size_t nnonce;
    unsigned char salt[CB_SASL_MAX_SALT];
    size_t nsalt;
    unsigned long iter;
} server_first;

/* One "k=value" attribute at msg[*pos..n); advances *pos past the ','. */
static int next_attr(const char *msg, size_t n, size_t *pos, char *key,
                     const char **val, size_t *nval)
{
    size_t i = *pos;
    if (n - i < 2 || msg[i + 1] != '=')
        return -1;
    *key = msg[i];
    size_t start = i + 2, end = start;
    while (end < n && msg[end] != ',')
        end++;
    *val = msg + start;
    *nval = end - start;
    *pos = end < n ? end + 1 : end;
    return end < n && end + 1 == n ? -1 : 0;   /* no trailing ',' */
}

/* 0, -1 if not a count, -2 if over CB_SCRAM_MAX_ITER. */
static int parse_iter(const char *v, size_t n, unsigned long *out)
{
    if (n == 0 || n > 18)
        return -1;
    unsigned long long x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (unsigned long long)(v[i] - '0');
    }
    if (x < 1)
        return -1;
    if (x > CB_SCRAM_MAX_ITER) {
        *out = x > ULONG_MAX ? ULONG_MAX : (unsigned long)x;
        return -2;
    }
    *out = (unsigned long)x;
    return 0;
}

static int check_nonce(cb_scram *s, const char *v, size_t n)
{
    if (n <= s->ncnonce || n > CB_SASL_MAX_NONCE)
        return fail(s, CB_SASL_EPROTO, "server nonce has a bad length (%zu)", n);
    if (memcmp(v, s->cnonce, s->ncnonce) != 0)
        return fail(s, CB_SASL_EPROTO,
                    "server nonce does not start with the client nonce");
    for (size_t i = 0; i < n; i++)
        if (!nonce_char(v[i]))
            return fail(s, CB_SASL_EPROTO, "server nonce has a bad character");
    return 0;
}

/* Handle one attribute of server-first; returns 0 or an error code. */
static int take_attr(cb_scram *s, server_first *sf, char key, const char *v,
                     size_t nv, unsigned *seen)
{
    long nsalt;
    switch (key) {
    case 'm':
        return fail(s, CB_SASL_EPROTO, "server requires an extension (m=)");
    case 'e':
        return fail(s, CB_SASL_EAUTH, "server error: %.*s",
                    (int)(nv > 100 ? 100 : nv), v);
    case 'r':
        if (*seen & 1)
            return fail(s, CB_SASL_EPROTO, "duplicate r= attribute");
        *seen |= 1;
        sf->nonce = v;
        sf->nnonce = nv;
        return check_nonce(s, v, nv);
    case 's':
        if (*seen & 2)
            return fail(s, CB_SASL_EPROTO, "duplicate s= attribute");
        *seen |= 2;
        nsalt = b64_decode(v, nv, sf->salt, sizeof sf->salt);
        if (nsalt <= 0)
            return fail(s, CB_SASL_EPROTO, "salt (s=) is not valid base64");
        sf->nsalt = (size_t)nsalt;
        return 0;
    case 'i':
        if (*seen & 4)
            return fail(s, CB_SASL_EPROTO, "duplicate i= attribute");
        *seen |= 4;
        switch (parse_iter(v, nv, &sf->iter)) {
        case 0:
            return 0;
        case -2:
            return fail(s, CB_SASL_EPROTO,
                        "the server asks for %.*s PBKDF2 iterations (i=), more "
                        "than this client allows (%d): a misconfigured or "
                        "hostile server", (int)nv, v, CB_SCRAM_MAX_ITER);
        default:
            return fail(s, CB_SASL_EPROTO,
                        "iteration count (i=) not in 1..%d", CB_SCRAM_MAX_ITER);
        }
    default:
        return 0;   /* unknown optional extension: ignored */
    }
}

static int parse_server_first(cb_scram *s, const char *msg, size_t n,
                              server_first *sf)
{
    unsigned seen = 0;
    size_t pos = 0;
    while (pos < n) {
        char key;
        const char *v;
        size_t nv;
        if (next_attr(msg, n, &pos, &key, &v, &nv) != 0)
            return fail(s, CB_SASL_EPROTO, "server-first: malformed attribute");
        int rc = take_attr(s, sf, key, v, nv, &seen);
        if (rc != 0)
            return rc;
    }
    if (seen != 7)
        return fail(s, CB_SASL_EPROTO, "server-first: missing %s attribute",
                    !(seen & 1) ? "r=" : !(seen & 2) ? "s=" : "i=");
    return 0;
}

/* ---- proof -------------------------------------------------------------- */

typedef struct {
    unsigned char client_key[64], stored_key[64];
    unsigned char client_sig[64], server_key[64];
} scram_keys;

static int hmac(const EVP_MD *md, const void *key, size_t nkey,
                const void *data, size_t n, unsigned char *out)
{
    unsigned int len = 0;
    return HMAC(md, key, (int)nkey, data, n, out, &len) ? 0 : -1;
}

int cb_scram_derive(cb_sasl_mech mech, const char *password, size_t npassword,
                    const unsigned char *salt, size_t nsalt, unsigned long iter,
                    unsigned char *key, size_t *nkey)
{
    const EVP_MD *md = scram_md(mech);
    if (!md || iter < 1 || iter > CB_SCRAM_MAX_ITER || nsalt > CB_SASL_MAX_SALT ||
        npassword > CB_SASL_MAX_CRED)
        return CB_SASL_EINVAL;
    int dl = EVP_MD_get_size(md);
    if (PKCS5_PBKDF2_HMAC(password, (int)npassword, salt, (int)nsalt, (int)iter,
                          md, dl, key) != 1)
        return CB_SASL_ECRYPTO;
    *nkey = (size_t)dl;
    return CB_SASL_OK;
}

/* From SaltedPassword: the proof into proof and the expected server
   signature into s. */
static int compute(cb_scram *s, const unsigned char *salted, unsigned char *proof)
{
    const EVP_MD *md = scram_md(s->mech);
    size_t dl = (size_t)EVP_MD_get_size(md);
    scram_keys k;
    const char *am = cb_buf_head(&s->auth);
    size_t nam = cb_buf_size(&s->auth);
    int ok = hmac(md, salted, dl, "Client Key", 10, k.client_key) == 0 &&
             EVP_Digest(k.client_key, dl, k.stored_key, NULL, md, NULL) == 1 &&
             hmac(md, k.stored_key, dl, am, nam, k.client_sig) == 0 &&
             hmac(md, salted, dl, "Server Key", 10, k.server_key) == 0 &&
             hmac(md, k.server_key, dl, am, nam, s->server_sig) == 0;
    for (size_t i = 0; ok && i < dl; i++)
        proof[i] = k.client_key[i] ^ k.client_sig[i];
    s->nserver_sig = dl;
    OPENSSL_cleanse(&k, sizeof k);
    return ok ? 0 : -1;
}

int cb_scram_parse(cb_scram *s, const char *server_first_msg, size_t n)
{
    if (s->state != 1)
        return fail(s, CB_SASL_ESTATE, "cb_scram_parse: not after start");
    if (n > CB_SASL_MAX_SERVER_MSG)
        return fail(s, CB_SASL_EPROTO, "server-first too long (%zu bytes)", n);
    server_first sf = {0};
    int rc = parse_server_first(s, server_first_msg, n, &sf);
    if (rc != 0) {
        OPENSSL_cleanse(sf.salt, sizeof sf.salt);
        return rc;
    }
    /* client-final-without-proof, then AuthMessage */
    cb_buf_clear(&s->out);
    cb_buf_clear(&s->auth);
    if (append_str(&s->out, "c=biws,r=") ||
        cb_buf_append(&s->out, sf.nonce, sf.nnonce) ||
        cb_buf_append(&s->auth, cb_buf_head(&s->first_bare),
                      cb_buf_size(&s->first_bare)) ||
        cb_buf_append(&s->auth, ",", 1) ||
        cb_buf_append(&s->auth, server_first_msg, n) ||
        cb_buf_append(&s->auth, ",", 1) ||
        cb_buf_append(&s->auth, cb_buf_head(&s->out), cb_buf_size(&s->out))) {
        OPENSSL_cleanse(sf.salt, sizeof sf.salt);
        return fail(s, CB_SASL_ENOMEM, "out of memory");
    }
    memcpy(s->salt, sf.salt, sf.nsalt);
    s->nsalt = sf.nsalt;
    s->iter = sf.iter;
    OPENSSL_cleanse(sf.salt, sizeof sf.salt);
    s->state = 4;
    s->err[0] = '\0';
    return CB_SASL_OK;
}

int cb_scram_finish(cb_scram *s, const unsigned char *salted, size_t nsalted,
                    const char **msg, size_t *nmsg)
{
    if (s->state != 4)
        return fail(s, CB_SASL_ESTATE, "cb_scram_finish: not after parse");
    if (nsalted != (size_t)EVP_MD_get_size(scram_md(s->mech)))
        return fail(s, CB_SASL_EINVAL, "derived key of a wrong size");
    unsigned char proof[64];
    int rc = CB_SASL_ECRYPTO;
    if (compute(s, salted, proof) != 0)
        goto out;
    rc = CB_SASL_ENOMEM;
    if (append_str(&s->out, ",p=") ||
        append_b64(&s->out, proof, s->nserver_sig))
        goto out;
    rc = CB_SASL_OK;
out:
    OPENSSL_cleanse(proof, sizeof proof);
    if (rc != CB_SASL_OK)
        return fail(s, rc, rc == CB_SASL_ENOMEM ? "out of memory"
                                                : "SCRAM key derivation failed");
    s->state = 2;
    s->err[0] = '\0';
    set_out(s, msg, nmsg);
    return CB_SASL_OK;
}

int cb_scram_step(cb_scram *s, const char *server_first_msg, size_t n,
                  const char **msg, size_t *nmsg)
{
    if (s->state != 1)
        return fail(s, CB_SASL_ESTATE, "cb_scram_step: not after start");
    int rc = cb_scram_parse(s, server_first_msg, n);
    if (rc != CB_SASL_OK)
        return rc;
    unsigned char salted[64];
    size_t nsalted = 0;
    rc = cb_scram_derive(s->mech, s->password, s->npassword, s->salt, s->nsalt,
                         s->iter, salted, &nsalted);
    if (rc != CB_SASL_OK) {
        OPENSSL_cleanse(salted, sizeof salted);
        return fail(s, CB_SASL_ECRYPTO, "SCRAM key derivation failed");
    }
    rc = cb_scram_finish(s, salted, nsalted, msg, nmsg);
    OPENSSL_cleanse(salted, sizeof salted);
    return rc;
}

/* ---- verify ------------------------------------------------------------- */

int cb_scram_verify(cb_scram *s, const char *msg, size_t n)
{
    if (s->state != 2)
        return fail(s, CB_SASL_ESTATE, "cb_scram_verify: not after step");
    if (n > CB_SASL_MAX_SERVER_MSG)
        return fail(s, CB_SASL_EPROTO, "server-final too long (%zu bytes)", n);
    if (n >= 2 && memcmp(msg, "e=", 2) == 0) {
        size_t len = 2;
        while (len < n && msg[len] != ',')
            len++;
        return fail(s, CB_SASL_EAUTH, "server error: %.*s",
                    (int)(len - 2 > 100 ? 100 : len - 2), msg + 2);
    }
    if (n < 2 || memcmp(msg, "v=", 2) != 0)
        return fail(s, CB_SASL_EPROTO, "server-final: no v= attribute");
    size_t end = 2;
    while (end < n && msg[end] != ',')
        end++;
    unsigned char sig[64];
    long nsig = b64_decode(msg + 2, end - 2, sig, sizeof sig);
    if (nsig < 0)
        return fail(s, CB_SASL_EPROTO, "server-final: v= is not valid base64");
    if ((size_t)nsig != s->nserver_sig ||
        CRYPTO_memcmp(sig, s->server_sig, s->nserver_sig) != 0)
        return fail(s, CB_SASL_EAUTH, "server signature mismatch");
    s->state = 3;
    s->err[0] = '\0';
    return CB_SASL_OK;
}

const char *cb_scram_error(const cb_scram *s)
{
    return s->err;
}

void cb_scram_free(cb_scram *s)
{
    if (s->password)
        OPENSSL_cleanse(s->password, s->npassword);
    free(s->password);
    if (s->out.data)
        OPENSSL_cleanse(s->out.data, s->out.cap);
    if (s->first_bare.data)
        OPENSSL_cleanse(s->first_bare.data, s->first_bare.cap);
    if (s->auth.data)
        OPENSSL_cleanse(s->auth.data, s->auth.cap);
    cb_buf_free(&s->out);
    cb_buf_free(&s->first_bare);
    cb_buf_free(&s->auth);
    OPENSSL_cleanse(s, sizeof *s);
}
