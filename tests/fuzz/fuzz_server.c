/*
 * libFuzzer target: a hostile server against a real client.
 *
 * In-process loopback listeners play memcached / Couchbase data nodes (and a
 * REST port: a connection whose first byte is not 0x80 is spoken to as HTTP).
 * Every reply is derived from the fuzz input: the handshake (HELLO,
 * SASL_LIST_MECHS, SCRAM AUTH/STEP computed for real then optionally
 * mutated, SELECT_BUCKET, GET_CLUSTER_CONFIG with generated hostile maps),
 * then the operations (statuses incl. NOT_MY_VBUCKET with map bodies,
 * ETMPFAIL storms, wrong opaques / opcodes, short or oversized bodies,
 * partial packets, duplicates, out-of-order answers, garbage, closes,
 * silence).  The client schedules a mix of every operation with short
 * timeouts and is driven either by the host-loop interface (single thread:
 * client and server share one poll loop, deterministic up to timing) or by
 * cbffi_wait (the server then runs in a thread).
 *
 * Invariants checked (abort on violation):
 *   - every scheduled operation produces exactly one final result, with its
 *     own op kind, only multi-part ops produce non-final results, and no
 *     result names an unknown cookie;
 *   - every result ends within its operation's timeout plus slack;
 *   - rc is a known cbffi_rc, key/value are NULL iff their length is 0;
 *   - cbffi_pending() matches the operations that have not ended;
 *   - the client never leaves a closed fd in the host's watch set;
 *   - no fd is left open after cbffi_client_destroy, and (ASan/LSan) no
 *     memory error or leak, including when destroyed with work pending.
 *
 * Layout of an input (bytes past the end read as 0, which means "behave"):
 *   [0] mode   [1] timeouts   [2] rounds/ops   [3] harvest batch
 *   [4..9]     the initial cluster map's descriptor
 *   then 3 bytes per operation, then the server's decision stream.
 *
 * Safety: connect() and getaddrinfo() are overridden for the whole process
 * (libcurl included): only this run's listeners on 127.0.0.1 can be
 * reached and no name is ever resolved, whatever a hostile map says.
 */
#include "cbffi.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define MAXL 4           /* listeners */
#define MAXC 64          /* server-side connections */
#define MAXOPS 48

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_server: invariant violated: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

static int debug;
#define TRACE(...) do { if (debug) fprintf(stderr, __VA_ARGS__); } while (0)

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- network sandbox ------------------------------------------------------ */

static int listen_fd[MAXL];
static int listen_port[MAXL];
static volatile int nallowed;

int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    if (sa && sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        if (in->sin_addr.s_addr == htonl(INADDR_LOOPBACK))
            for (int i = 0; i < nallowed; i++)
                if (listen_port[i] == ntohs(in->sin_port)) {
                    /* a small send buffer: back-pressure (EAGAIN, a
                       half-sent write buffer) is reachable */
                    int small = 16384;
                    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
                    return (int)syscall(SYS_connect, fd, sa, len);
                }
    }
    errno = ECONNREFUSED;
    return -1;
}

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *,
                      struct addrinfo **);

int getaddrinfo(const char *node, const char *service,
                const struct addrinfo *hints, struct addrinfo **res)
{
    static gai_fn real;
    if (!real)
        real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
    struct addrinfo h;
    memset(&h, 0, sizeof h);
    if (hints)
        h = *hints;
    h.ai_flags |= AI_NUMERICHOST | AI_NUMERICSERV;
    return real(node, service, &h, res);
}

/* ---- the input -------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t n, pos;
} reader;

static uint8_t rd(reader *r)
{
    return r->pos < r->n ? r->p[r->pos++] : 0;
}

static uint16_t rd16(reader *r)
{
    uint16_t a = rd(r);
    return (uint16_t)(a << 8 | rd(r));
}

/* ---- growable bytes ----------------------------------------------------------- */

typedef struct {
    char *d;
    size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const void *p, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        b->d = realloc(b->d, cap);
        if (!b->d)
            abort();
        b->cap = cap;
    }
    if (n)
        memcpy(b->d + b->n, p, n);
    b->n += n;
    b->d[b->n] = 0;
}

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_add(b, tmp, (size_t)(n < (int)sizeof tmp ? n : (int)sizeof tmp - 1));
}

static void sb_drop(sbuf *b, size_t n)
{
    if (n >= b->n) {
        b->n = 0;
    } else {
        memmove(b->d, b->d + n, b->n - n);
        b->n -= n;
    }
}

static void sb_free(sbuf *b)
{
    free(b->d);
    memset(b, 0, sizeof *b);
}

/* ---- cluster maps -------------------------------------------------------------- */

static const char BUCKET[] = "default";
static const char PASSWORD[] = "pw";

typedef struct {
    int nlisteners;
    int64_t rev, epoch;
    int ketama_seen;
} mapstate;

/* Config bytes generated and sent so far: generating, parsing and
   installing them (a 1024-node ketama continuum...) costs CPU time, under
   ASan up to a few us a byte; the timing checks allow CFG_US_PER_BYTE. */
static uint64_t cfg_bytes;
#define CFG_US_PER_BYTE 4
#define CFG_ALLOWANCE() (CFG_US_PER_BYTE * __atomic_load_n(&cfg_bytes, __ATOMIC_RELAXED))

/* Build a terse config from 7 descriptor bytes. */
static void gen_map(sbuf *out, mapstate *ms, reader *r)
{
    uint8_t d0 = rd(r), d1 = rd(r), d2 = rd(r), d3 = rd(r), d4 = rd(r),
            d5 = rd(r), d6 = rd(r);
    static const int nsrv_tab[8] = {0, 1, 2, 4, -1, 1024, 3, -2};
    static const int nvb_tab[8] = {16, 1, 4, 64, 1024, 0, 65536, 7};
    int nl = ms->nlisteners;
    int ns = nsrv_tab[d0 & 7];
    if (ns == 0)
        ns = nl;
    else if (ns == -1)
        ns = 0;
    else if (ns == -2)
        ns = nl + 1;
    int nrep_tab[4] = {ns > 1 ? 1 : 0, 0, 2, 3};
    int nrep = nrep_tab[(d0 >> 3) & 3];
    int nvb = nvb_tab[(d0 >> 5) & 7];
    int hoststyle = d1 & 3, wrongname = d1 & 4, ketama = d1 & 8,
        noname = d1 & 16, fwd = d1 & 32, ext = !(d1 & 64), corrupt = d1 & 128;
    ms->rev += (int8_t)d2 == 0 ? 1 : (int8_t)d2;
    if (ms->rev < 0 && !(d3 & 1))
        ms->rev = 1;
    if (d3 & 2)
        ms->epoch += (d3 & 4) ? -1 : 1;
    static const char *const hosts[4] = {"$HOST", "127.0.0.1", "[::1]",
                                         "$HOST$HOST"};
    sbuf j = {0};
    sb_printf(&j, "{\"rev\":%lld,", (long long)ms->rev);
    if (ms->epoch || (d3 & 8))
        sb_printf(&j, "\"revEpoch\":%lld,", (long long)ms->epoch);
    if (!noname)
        sb_printf(&j, "\"name\":\"%s\",", wrongname ? "other" : BUCKET);
    sb_printf(&j, "\"nodeLocator\":\"%s\",", ketama ? "ketama" : "vbucket");
    sb_printf(&j, "\"bucketCapabilities\":[\"cccp\",\"couchapi\",\"nodesExt\"],");
    /* nodes (ketama buckets read ports.direct) */
    sb_printf(&j, "\"nodes\":[");
    for (int i = 0; i < ns; i++) {
        int port = i < nl ? listen_port[i] : 9;
        sb_printf(&j, "%s{\"hostname\":\"%s:8091\",\"ports\":{\"direct\":%d}}",
                  i ? "," : "", hosts[hoststyle], port);
    }
    sb_printf(&j, "],");
    if (ext) {
        sb_printf(&j, "\"nodesExt\":[");
        for (int i = 0; i < ns; i++) {
            int port = i < nl ? listen_port[i] : 9;
            sb_printf(&j, "%s{\"services\":{\"kv\":%d,\"mgmt\":%d}%s}",
                      i ? "," : "", port, (d4 & 1) ? 9 : listen_port[0],
                      (d4 & 2) ? ",\"hostname\":\"127.0.0.1\"" : "");
        }
        sb_printf(&j, "],");
    }
    if (!ketama) {
        sb_printf(&j, "\"vBucketServerMap\":{\"hashAlgorithm\":\"CRC\","
                      "\"numReplicas\":%d,\"serverList\":[", nrep);
        for (int i = 0; i < ns; i++) {
            int port = i < nl ? listen_port[i] : 9;
            sb_printf(&j, "%s\"%s:%d\"", i ? "," : "", hosts[hoststyle], port);
        }
        sb_printf(&j, "]");
        for (int f = 0; f < (fwd ? 2 : 1); f++) {
            sb_printf(&j, ",\"%s\":[", f ? "vBucketMapForward" : "vBucketMap");
            for (int vb = 0; vb < nvb; vb++) {
                sb_printf(&j, "%s[", vb ? "," : "");
                int width = nrep + 1;
                if (corrupt && vb == d5 % (nvb ? nvb : 1) && (d4 & 4))
                    width += (d4 & 8) ? 1 : -1;
                for (int k = 0; k < width; k++) {
                    int s = ns ? (vb + k + f + (d6 & 3)) % ns : 0;
                    if (k > 0 && k >= ns)
                        s = -1;
                    if (corrupt && vb == d5 % (nvb ? nvb : 1) && k == 0)
                        s = (d4 & 16) ? -1 : (d4 & 32) ? ns : (d4 & 64) ? 40000 : -2;
                    sb_printf(&j, "%s%d", k ? "," : "", s);
                }
                sb_printf(&j, "]");
            }
            sb_printf(&j, "]");
        }
        sb_printf(&j, "}");
    } else {
        sb_printf(&j, "\"bucketType\":\"memcached\"");
    }
    sb_printf(&j, "}");
    /* byte-level damage: truncation, a flipped byte, trailing garbage */
    if ((d6 & 0x30) == 0x10 && j.n > 1)
        j.n = j.n * (d5 + 1) / 257;
    else if ((d6 & 0x30) == 0x20 && j.n)
        j.d[(size_t)d5 * 7919 % j.n] = (char)(d4 ^ 0x5a);
    else if ((d6 & 0x30) == 0x30)
        sb_add(&j, "}]\"x", (size_t)(d5 & 3) + 1);
    sb_add(out, j.d, j.n);
    __atomic_add_fetch(&cfg_bytes, (uint64_t)j.n, __ATOMIC_RELAXED);
    sb_free(&j);
}

/* ---- the server ------------------------------------------------------------------ */

enum { PROTO_UNKNOWN = 0, PROTO_BIN = 1, PROTO_HTTP = 2 };

typedef struct {
    int fd;
    int proto;
    sbuf in, out;
    sbuf held;          /* the rest of a partial packet, sent at the next request */
    sbuf deferred;      /* an answer sent after the next one (out of order) */
    int close_after;    /* close once `out` is flushed */
    uint64_t paused_until; /* not read before (back-pressure on the client) */
    int mutation_seqno, xerror;
    /* SCRAM */
    int mech;           /* 1 sha1, 2 sha256, 3 sha512 */
    char first_bare[512];
    char server_first[512];
} sconn;

typedef struct {
    reader r;
    int nl;
    sconn conns[MAXC];
    int nconns;
    mapstate ms;
    sbuf map;           /* the current config, served by GET_CLUSTER_CONFIG */
    volatile int stop;
    uint64_t start_paused;  /* us a new connection is not read */
} server;

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)(v >> 32)); put32(p + 4, (uint32_t)v); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

typedef struct {
    uint8_t magic, opcode, datatype, nframe;
    uint16_t status;
    uint32_t opaque;
    uint64_t cas;
    const void *ext;
    uint8_t next;
    const void *key;
    uint16_t nkey;
    const void *val;
    size_t nval;
    const void *frame;
    int64_t bodylen_override;   /* -1: computed */
} pkt;

static void emit(sbuf *b, const pkt *p)
{
    uint8_t h[24];
    memset(h, 0, sizeof h);
    size_t body = (size_t)p->nframe + p->next + p->nkey + p->nval;
    h[0] = p->magic ? p->magic : 0x81;
    h[1] = p->opcode;
    if (h[0] == 0x18) {
        h[2] = p->nframe;
        h[3] = (uint8_t)p->nkey;
    } else {
        put16(h + 2, p->nkey);
    }
    h[4] = p->next;
    h[5] = p->datatype;
    put16(h + 6, p->status);
    put32(h + 8, p->bodylen_override >= 0 ? (uint32_t)p->bodylen_override
                                          : (uint32_t)body);
    memcpy(h + 12, &p->opaque, 4);
    put64(h + 16, p->cas);
    sb_add(b, h, 24);
    static const uint8_t zeros[256];
    if (p->nframe)
        sb_add(b, p->frame ? p->frame : zeros, p->nframe);
    if (p->next)
        sb_add(b, p->ext ? p->ext : zeros, p->next);
    if (p->nkey)
        sb_add(b, p->key, p->nkey);
    if (p->nval)
        sb_add(b, p->val, p->nval);
}

/* ---- SCRAM, server side --------------------------------------------------------- */

static const char *server_password = "";

static const EVP_MD *mech_md(int m)
{
    return m == 1 ? EVP_sha1() : m == 2 ? EVP_sha256() : EVP_sha512();
}

static void b64(const unsigned char *in, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* server-first for client-first "n,,n=user,r=cnonce"; 0 or -1. */
static int scram_first(sconn *sc, const char *msg, size_t n, uint8_t iters,
                       uint8_t twist)
{
    if (n < 3 || n >= sizeof sc->first_bare + 3 || memcmp(msg, "n,,", 3) != 0)
        return -1;
    memcpy(sc->first_bare, msg + 3, n - 3);
    sc->first_bare[n - 3] = 0;
    const char *r = strstr(sc->first_bare, ",r=");
    if (!r)
        return -1;
    const char *cnonce = r + 3;
    char salt[32];
    b64((const unsigned char *)"saltsaltsalt", 12, salt);
    int it = 1 + iters % 4;
    switch (twist % 8) {
    case 1: /* wrong nonce prefix */
        snprintf(sc->server_first, sizeof sc->server_first, "r=X%sSRV,s=%s,i=%d",
                 cnonce, salt, it);
        break;
    case 2: /* no salt */
        snprintf(sc->server_first, sizeof sc->server_first, "r=%sSRV,i=%d", cnonce, it);
        break;
    case 3: /* iteration count 0, or over the client's cap (100000) */
        snprintf(sc->server_first, sizeof sc->server_first, "r=%sSRV,s=%s,i=%s",
                 cnonce, salt, (iters & 4) ? "100001" : "0");
        break;
    case 4: /* an extension the client must refuse */
        snprintf(sc->server_first, sizeof sc->server_first, "m=ext,r=%sSRV,s=%s,i=%d",
                 cnonce, salt, it);
        break;
    case 5: /* the server reports an error */
        snprintf(sc->server_first, sizeof sc->server_first, "e=other-error");
        break;
    case 6: /* bad base64 salt, trailing comma */
        snprintf(sc->server_first, sizeof sc->server_first, "r=%sSRV,s=@@@,i=%d,",
                 cnonce, it);
        break;
    default:
        snprintf(sc->server_first, sizeof sc->server_first, "r=%sSRV,s=%s,i=%d",
                 cnonce, salt, it);
    }
    return 0;
}

/* server-final for client-final "c=biws,r=nonce,p=proof". */
static int scram_final(sconn *sc, const char *msg, size_t n, uint8_t twist,
                       char *out, size_t nout)
{
    const char *p = memmem(msg, n, ",p=", 3);
    if (!p)
        return -1;
    const EVP_MD *md = mech_md(sc->mech);
    int dl = EVP_MD_get_size(md);
    const char *it = strstr(sc->server_first, ",i=");
    int iters = it ? atoi(it + 3) : 1;
    if (iters < 1)
        iters = 1;
    unsigned char salted[64], skey[64], sig[64];
    unsigned int l = 0;
    PKCS5_PBKDF2_HMAC(server_password, (int)strlen(server_password),
                      (const unsigned char *)"saltsaltsalt", 12, iters, md, dl,
                      salted);
    HMAC(md, salted, dl, (const unsigned char *)"Server Key", 10, skey, &l);
    sbuf auth = {0};
    sb_add(&auth, sc->first_bare, strlen(sc->first_bare));
    sb_add(&auth, ",", 1);
    sb_add(&auth, sc->server_first, strlen(sc->server_first));
    sb_add(&auth, ",", 1);
    sb_add(&auth, msg, (size_t)(p - msg));
    HMAC(md, skey, dl, (const unsigned char *)auth.d, auth.n, sig, &l);
    sb_free(&auth);
    if (twist % 5 == 1)
        sig[0] ^= 1;
    char enc[100];
    b64(sig, (size_t)(twist % 5 == 2 ? dl - 1 : dl), enc);
    if (twist % 5 == 3)
        snprintf(out, nout, "e=invalid-proof");
    else if (twist % 5 == 4)
        snprintf(out, nout, "v=%s,extra", enc);
    else
        snprintf(out, nout, "v=%s", enc);
    return 0;
}

/* ---- answering a request --------------------------------------------------------- */

static const uint16_t statuses[] = {
    0x07, 0x86, 0x85, 0x82, 0x25, 0x01, 0x02, 0x09, 0x0e, 0x20, 0x24, 0x08,
    0x81, 0x83, 0x84, 0xa2, 0xa4, 0x05, 0x06, 0x04, 0x03, 0x21, 0x1f, 0xa1,
    0x0d, 0x51, 0x22, 0xffff};

/* The well-formed answer to request (op, key, value) into b. */
static void normal_answer(server *s, sconn *sc, sbuf *b, uint8_t op,
                          uint32_t opaque, const uint8_t *key, uint16_t nkey,
                          const uint8_t *val, size_t nval, uint8_t param)
{
    pkt p = {.opcode = op, .opaque = opaque, .bodylen_override = -1};
    uint8_t ext[16];
    char text[600];
    uint8_t feats[64];
    memset(ext, 0, sizeof ext);
    switch (op) {
    case 0x1f: { /* HELLO: accept what was asked (or a twisted subset) */
        size_t nf = nval < sizeof feats ? nval : sizeof feats;
        memcpy(feats, val, nf);
        if (param & 1)
            nf = nf ? nf - 1 : 0; /* odd length */
        for (size_t i = 0; i + 1 < nf; i += 2) {
            uint16_t f = get16(feats + i);
            if (f == 0x04)
                sc->mutation_seqno = 1;
            if (f == 0x07)
                sc->xerror = 1;
        }
        p.val = feats;
        p.nval = nf;
        break;
    }
    case 0x20: { /* SASL_LIST_MECHS */
        static const char *const lists[4] = {
            "SCRAM-SHA512 SCRAM-SHA256 SCRAM-SHA1 PLAIN", "SCRAM-SHA1",
            "PLAIN CRAM-MD5", "SCRAM-SHA256"};
        const char *l = lists[param & 3];
        p.val = l;
        p.nval = strlen(l);
        break;
    }
    case 0x21: /* SASL_AUTH */
        if (nkey == 5 && memcmp(key, "PLAIN", 5) == 0)
            break;
        sc->mech = nkey >= 11 && memcmp(key, "SCRAM-SHA51", 11) == 0 ? 3
                   : nkey >= 11 && memcmp(key, "SCRAM-SHA25", 11) == 0 ? 2 : 1;
        if (scram_first(sc, (const char *)val, nval, param, param >> 3) != 0) {
            p.status = 0x20;
            break;
        }
        p.status = 0x21;
        p.val = sc->server_first;
        p.nval = strlen(sc->server_first);
        break;
    case 0x22: /* SASL_STEP */
        if (scram_final(sc, (const char *)val, nval, param, text, sizeof text) != 0) {
            p.status = 0x20;
            break;
        }
        p.val = text;
        p.nval = strlen(text);
        break;
    case 0x89: /* SELECT_BUCKET */
        if (param & 0x80)
            p.status = (param & 0x40) ? 0x24 : 0x01;
        break;
    case 0xb5: /* GET_CLUSTER_CONFIG */
        p.datatype = 1;
        p.val = s->map.d;
        p.nval = s->map.n;
        /* the client parses it again: CPU time the timing checks allow */
        __atomic_add_fetch(&cfg_bytes, (uint64_t)s->map.n, __ATOMIC_RELAXED);
        break;
    case 0x00: case 0x09: case 0x0c: case 0x0d: case 0x1d: case 0x1e:
    case 0x83: case 0x94:
        put32(ext, 0x02000000u | param);
        p.ext = ext;
        p.next = 4;
        p.cas = 0x1234;
        if (op == 0x0c || op == 0x0d) {
            p.key = key;
            p.nkey = nkey;
        }
        p.val = "value";
        p.nval = (param & 0x10) ? 0 : 5;
        break;
    case 0x05: case 0x06: case 0x15: case 0x16:
        put64(ext, 42 + param);
        p.val = ext;
        p.nval = 8;
        p.cas = 0x1234;
        break;
    case 0x01: case 0x02: case 0x03: case 0x04: case 0x0e: case 0x0f:
    case 0x11: case 0x12: case 0x13: case 0x14: case 0x19: case 0x1a:
    case 0x1c: case 0x95:
        p.cas = 0x1234;
        if (sc->mutation_seqno && op != 0x1c && op != 0x95) {
            put64(ext, 77);
            put64(ext + 8, 5);
            p.ext = ext;
            p.next = 16;
        }
        break;
    case 0x10: { /* STAT: some stats, then the terminator */
        int nstat = 1 + (param & 3);
        for (int i = 0; i < nstat; i++) {
            char k[16], v[16];
            int nk = snprintf(k, sizeof k, "stat%d", i);
            int nv = snprintf(v, sizeof v, "%d", i * 7);
            pkt st = {.opcode = op, .opaque = opaque, .key = k, .nkey = (uint16_t)nk,
                      .val = v, .nval = (size_t)nv, .bodylen_override = -1};
            emit(b, &st);
        }
        break;
    }
    case 0x0b:
        p.val = "1.6.21";
        p.nval = 6;
        break;
    case 0x92: { /* OBSERVE: echo the keys with states */
        sbuf o = {0};
        size_t pos = 0;
        while (pos + 4 <= nval) {
            uint16_t vb = get16(val + pos), kl = get16(val + pos + 2);
            if (pos + 4 + kl > nval)
                break;
            uint8_t t[11];
            put16(t, vb);
            put16(t + 2, kl);
            sb_add(&o, t, 4);
            sb_add(&o, val + pos + 4, kl);
            static const uint8_t states[4] = {0x01, 0x00, 0x80, 0x81};
            t[0] = states[(param >> 1) & 3];
            put64(t + 1, (param & 0x40) ? 0x9999 : 0x1234);
            sb_add(&o, t, 9);
            pos += 4 + (size_t)kl;
        }
        p.cas = 0x0000000a00000005ull;
        p.val = o.d;
        p.nval = (param & 0x80) && o.n ? o.n - 1 : o.n;
        emit(b, &p);
        sb_free(&o);
        return;
    }
    case 0x07: case 0x17:
        sc->close_after = 1;
        break;
    case 0x08: case 0x18: case 0x0a:
        break;
    default:
        p.status = 0x81;
        break;
    }
    emit(b, &p);
}

static void send_now(sconn *sc, const void *p, size_t n)
{
    sb_add(&sc->out, p, n);
}

/* One request: decide what to do from the stream. */
static void on_request(server *s, sconn *sc, const uint8_t *h, const uint8_t *body)
{
    reader *r = &s->r;
    uint8_t op = h[1];
    uint16_t nkey = get16(h + 2);
    uint8_t next = h[4];
    uint32_t opaque;
    memcpy(&opaque, h + 12, 4);
    uint32_t blen = get32(h + 8);
    const uint8_t *key = body + next;
    const uint8_t *val = body + next + nkey;
    size_t nval = blen - next - nkey;
    /* what was held back goes out first */
    if (sc->held.n) {
        send_now(sc, sc->held.d, sc->held.n);
        sc->held.n = 0;
    }
    uint8_t a = rd(r);
    uint8_t param = rd(r);
    int cls = a % 32;
    sbuf ans = {0};
    if (cls == 20 && a < 200)
        cls = 24; /* back-pressure is worth trying often */
    else if (cls >= 20 && cls < 32 && a < 200)
        cls = 0; /* mostly behave */
    TRACE("  server fd %d: op 0x%02x opaque %u -> class %d param %u\n", sc->fd, op,
          opaque, cls, param);
    switch (cls) {
    case 8: { /* a status */
        uint16_t st = statuses[param % (sizeof statuses / sizeof statuses[0])];
        if (st == 0xffff)
            st = rd16(r);
        pkt p = {.opcode = op, .opaque = opaque, .status = st,
                 .bodylen_override = -1};
        if (rd(r) & 1) {
            p.val = "server error text";
            p.nval = 17;
        }
        emit(&ans, &p);
        break;
    }
    case 9: { /* NOT_MY_VBUCKET with a (new) map */
        sbuf m = {0};
        if (!(param & 1))
            gen_map(&m, &s->ms, r);
        if (param & 2) { /* it becomes the current map */
            sb_free(&s->map);
            sb_add(&s->map, m.d, m.n);
        }
        pkt p = {.opcode = op, .opaque = opaque, .status = 0x07, .datatype = 1,
                 .val = m.d, .nval = m.n, .bodylen_override = -1};
        emit(&ans, &p);
        sb_free(&m);
        break;
    }
    case 10: { /* wrong opaque */
        sbuf t = {0};
        normal_answer(s, sc, &t, op, opaque + (uint32_t)(int8_t)param, key, nkey,
                      val, nval, 0);
        sb_add(&ans, t.d, t.n);
        sb_free(&t);
        break;
    }
    case 11: { /* wrong opcode */
        pkt p = {.opcode = param, .opaque = opaque, .bodylen_override = -1};
        emit(&ans, &p);
        break;
    }
    case 12: { /* odd extras / value sizes for the opcode */
        uint8_t junk[32];
        memset(junk, 0x41, sizeof junk);
        pkt p = {.opcode = op, .opaque = opaque, .ext = junk,
                 .next = (uint8_t)(param % 24), .val = junk,
                 .nval = (size_t)(rd(r) % 12), .bodylen_override = -1};
        emit(&ans, &p);
        break;
    }
    case 13: { /* a header announcing a huge or inconsistent body */
        static const int64_t lens[6] = {64 * 1024 * 1024 + 1, 64 * 1024 * 1024,
                                        1 << 20, 0xffffffffll, 3, 0};
        pkt p = {.opcode = op, .opaque = opaque, .next = (uint8_t)(param & 0x7),
                 .nkey = 0, .bodylen_override = lens[param % 6]};
        uint8_t h2[24];
        sbuf t = {0};
        emit(&t, &p);
        memcpy(h2, t.d, 24);
        if (param & 0x40)
            put16(h2 + 2, 300); /* key longer than the body */
        sb_add(&ans, h2, 24);
        sb_add(&ans, "abcdefgh", (size_t)(rd(r) & 7));
        sb_free(&t);
        break;
    }
    case 14: { /* partial: part now, the rest at the next request (or never) */
        normal_answer(s, sc, &ans, op, opaque, key, nkey, val, nval, 0);
        size_t cut = ans.n ? (size_t)param % ans.n : 0;
        if (!(rd(r) & 1))
            sb_add(&sc->held, ans.d + cut, ans.n - cut);
        ans.n = cut;
        break;
    }
    case 15: /* close, maybe after a partial answer */
        normal_answer(s, sc, &ans, op, opaque, key, nkey, val, nval, 0);
        ans.n = ans.n ? (size_t)param % ans.n : 0;
        sc->close_after = 1;
        break;
    case 16: /* silence */
        break;
    case 17: /* duplicate */
        normal_answer(s, sc, &ans, op, opaque, key, nkey, val, nval, param);
        send_now(sc, ans.d, ans.n); /* once here, once below */
        break;
    case 18: /* answered after the next request's answer */
        sb_free(&sc->deferred);
        normal_answer(s, sc, &sc->deferred, op, opaque, key, nkey, val, nval, param);
        sb_free(&ans);
        return;
    case 19: { /* garbage */
        uint8_t g[64];
        size_t n = (size_t)param % sizeof g;
        for (size_t i = 0; i < n; i++)
            g[i] = rd(r);
        sb_add(&ans, g, n);
        break;
    }
    case 20: { /* flexible framing response (magic 0x18) */
        uint8_t fr[8] = {0x02, 0x01, 0x02, 0, 0, 0, 0, 0};
        sbuf t = {0};
        normal_answer(s, sc, &t, op, opaque, key, nkey, val, nval, 0);
        pkt p = {.magic = 0x18, .opcode = op, .opaque = opaque, .nframe = (uint8_t)(param % 9),
                 .frame = fr, .bodylen_override = -1};
        if (t.n >= 24 && (uint8_t)t.d[0] == 0x81 && get32((uint8_t *)t.d + 8) + 24 == t.n) {
            uint8_t *th = (uint8_t *)t.d;
            p.status = get16(th + 6);
            p.next = th[4];
            p.ext = th + 24;
            p.nkey = (uint16_t)(get16(th + 2) & 0xff);
            p.key = th + 24 + p.next;
            p.val = th + 24 + p.next + get16(th + 2);
            p.nval = get32(th + 8) - p.next - get16(th + 2);
            p.cas = 0x1234;
        }
        emit(&ans, &p);
        sb_free(&t);
        break;
    }
    case 21: { /* server requests (magic 0x82) first: config change
                  notifications, valid or hostile, with the opaque of the
                  request they precede (they must not answer it) */
        uint8_t how = rd(r);
        uint8_t ext[16];
        memset(ext, 0, sizeof ext);
        sbuf m = {0};
        pkt push = {.magic = 0x82, .opcode = 0x01, .key = BUCKET, .nkey = 7,
                    .opaque = (how & 0x80) ? opaque : 0,
                    .bodylen_override = -1};
        switch (how % 10) {
        case 0: /* no extras, no map */
            break;
        case 1: /* rev + a generated (hostile) map, maybe the current one */
        case 2:
            put32(ext, (uint32_t)(rd(r) * 1000 + 1));
            push.ext = ext;
            push.next = 4;
            gen_map(&m, &s->ms, r);
            push.val = m.d;
            push.nval = m.n;
            push.datatype = 1;
            if (how % 10 == 2) {
                sb_free(&s->map);
                sb_add(&s->map, m.d, m.n);
            }
            break;
        case 3: /* brief: epoch + rev, no map (the client asks) */
            put64(ext, rd(r) & 1 ? 0x7fffffffffffffffull : 1);
            put64(ext + 8, (uint64_t)rd16(r) << 20);
            push.ext = ext;
            push.next = 16;
            break;
        case 4: /* another bucket's map */
            put32(ext, 0xffffffffu);
            push.ext = ext;
            push.next = 4;
            push.key = "other";
            push.nkey = 5;
            gen_map(&m, &s->ms, r);
            push.val = m.d;
            push.nval = m.n;
            break;
        case 5: /* an opcode nobody knows, with a body */
            push.opcode = rd(r);
            push.ext = ext;
            push.next = 8;
            push.val = "whatever";
            push.nval = 8;
            break;
        case 6: /* a huge body announced */
            push.bodylen_override = 0x7fffffff;
            break;
        case 7: /* key and extras longer than the body */
            push.ext = ext;
            push.next = 4;
            push.bodylen_override = 3;
            break;
        case 8: /* the global map (empty key), garbage for a value, Snappy */
            put32(ext, 0xfffffff0u);
            push.ext = ext;
            push.next = 4;
            push.key = NULL;
            push.nkey = 0;
            push.val = "{\"rev\":";
            push.nval = 7;
            push.datatype = (uint8_t)(rd(r) & 3);
            break;
        default: /* a burst of them */
            put32(ext, 7);
            push.ext = ext;
            push.next = 4;
            for (int i = 0; i < 64; i++)
                emit(&ans, &push);
            break;
        }
        emit(&ans, &push);
        sb_free(&m);
        normal_answer(s, sc, &ans, op, opaque, key, nkey, val, nval, param);
        break;
    }
    case 22: { /* a large error text */
        size_t n = (size_t)(param + 1) * 4096;
        char *t = malloc(n);
        if (!t)
            abort();
        memset(t, 'E', n);
        pkt p = {.opcode = op, .opaque = opaque, .status = 0x86, .val = t,
                 .nval = n, .bodylen_override = -1};
        emit(&ans, &p);
        free(t);
        break;
    }
    case 24: /* stop reading this connection for a while, then behave */
        sc->paused_until = now_us() + 1000u * (param % 64);
        normal_answer(s, sc, &ans, op, opaque, key, nkey, val, nval, 0);
        break;
    case 23: { /* an answer for an opaque never sent (0) before the real one */
        pkt p = {.opcode = op, .opaque = 0, .bodylen_override = -1};
        emit(&ans, &p);
        normal_answer(s, sc, &ans, op, opaque, key, nkey, val, nval, param);
        break;
    }
    default:
        normal_answer(s, sc, &ans, op, opaque, key, nkey, val, nval, param);
        /* quiet gets: a miss is silence */
        if ((op == 0x09 || op == 0x0d || op == 0x1e) && (param & 0x20))
            ans.n = 0;
        break;
    }
    send_now(sc, ans.d, ans.n);
    sb_free(&ans);
    if (sc->deferred.n && cls != 18) {
        send_now(sc, sc->deferred.d, sc->deferred.n);
        sb_free(&sc->deferred);
    }
}

static void on_http(server *s, sconn *sc, const char *req)
{
    reader *r = &s->r;
    uint8_t a = rd(r), param = rd(r);
    int post = strncmp(req, "POST", 4) == 0;
    TRACE("  server fd %d: HTTP %.40s -> %u %u\n", sc->fd, req, a, param);
    sbuf body = {0};
    if (!post)
        gen_map(&body, &s->ms, r);
    int cls = a < 200 ? 0 : a % 8;
    static const int codes[6] = {401, 404, 500, 400, 403, 302};
    switch (cls) {
    case 1:
        sb_printf(&sc->out, "HTTP/1.1 %d Nope\r\nContent-Length: 4\r\n\r\nnope",
                  codes[param % 6]);
        break;
    case 2: /* truncated body, then close */
        sb_printf(&sc->out, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n",
                  body.n + 100);
        sb_add(&sc->out, body.d, body.n / 2);
        sc->close_after = 1;
        break;
    case 3: /* silence */
        break;
    case 4:
        sc->close_after = 1;
        break;
    case 5: /* garbage */
        sb_printf(&sc->out, "\x80\x01 garbage\r\n\r\n");
        sc->close_after = 1;
        break;
    case 6: /* chunked, with a huge chunk announced */
        sb_printf(&sc->out, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "%zx\r\n", body.n + (param & 1 ? 0x2000000 : 0));
        sb_add(&sc->out, body.d, body.n);
        sb_printf(&sc->out, "\r\n0\r\n\r\n");
        break;
    default:
        sb_printf(&sc->out, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            "Content-Length: %zu\r\n\r\n", post ? 0 : body.n);
        if (!post)
            sb_add(&sc->out, body.d, body.n);
    }
    sb_free(&body);
}

static void conn_close(server *s, int i)
{
    sconn *sc = &s->conns[i];
    close(sc->fd);
    sb_free(&sc->in);
    sb_free(&sc->out);
    sb_free(&sc->held);
    sb_free(&sc->deferred);
    s->conns[i] = s->conns[--s->nconns];
    memset(&s->conns[s->nconns], 0, sizeof s->conns[0]);
}

/* Parse what arrived on a connection; returns -1 if it is to be closed. */
static int on_input(server *s, sconn *sc)
{
    if (sc->proto == PROTO_UNKNOWN && sc->in.n)
        sc->proto = (uint8_t)sc->in.d[0] == 0x80 ? PROTO_BIN : PROTO_HTTP;
    if (sc->proto == PROTO_HTTP) {
        char *end = memmem(sc->in.d, sc->in.n, "\r\n\r\n", 4);
        if (!end)
            return sc->in.n > 65536 ? -1 : 0;
        *end = 0;
        on_http(s, sc, sc->in.d);
        sb_drop(&sc->in, (size_t)(end - sc->in.d) + 4);
        return 0;
    }
    while (sc->in.n >= 24 && !sc->close_after) {
        const uint8_t *h = (const uint8_t *)sc->in.d;
        if (h[0] != 0x80 && h[0] != 0x08)
            return -1;
        uint32_t blen = get32(h + 8);
        if (blen > 32 * 1024 * 1024 || (size_t)h[4] + get16(h + 2) > blen)
            return -1;
        if (sc->in.n < 24 + (size_t)blen)
            break;
        on_request(s, sc, h, h + 24);
        sb_drop(&sc->in, 24 + (size_t)blen);
    }
    return 0;
}

static void server_accept(server *s, int l)
{
    for (;;) {
        int fd = accept4(listen_fd[l], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if (s->nconns == MAXC) {
            close(fd);
            continue;
        }
        sconn *sc = &s->conns[s->nconns++];
        memset(sc, 0, sizeof *sc);
        sc->fd = fd;
        if (s->start_paused)
            sc->paused_until = now_us() + s->start_paused;
    }
}

/* Handle server fds that poll reported. pfd[0..s->nl) are the listeners,
   then one per connection, in order. */
static void server_events(server *s, struct pollfd *pfd, int n)
{
    int nc = s->nconns;
    /* connections first (accepting reorders nothing before them) */
    for (int i = nc - 1; i >= 0; i--) {
        struct pollfd *p = &pfd[s->nl + i];
        if (s->nl + i >= n || p->fd != s->conns[i].fd || !p->revents)
            continue;
        sconn *sc = &s->conns[i];
        int dead = 0;
        if (p->revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[65536];
            ssize_t k = recv(sc->fd, buf, sizeof buf, 0);
            if (k > 0) {
                sb_add(&sc->in, buf, (size_t)k);
                if (on_input(s, sc) != 0)
                    dead = 1;
            } else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
                dead = 1;
            }
        }
        if (!dead && sc->out.n) {
            ssize_t k = send(sc->fd, sc->out.d, sc->out.n, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (k > 0)
                sb_drop(&sc->out, (size_t)k);
            else if (k < 0 && errno != EAGAIN && errno != EINTR)
                dead = 1;
        }
        if (!dead && sc->close_after && !sc->out.n)
            dead = 1;
        if (dead)
            conn_close(s, i);
    }
    for (int l = 0; l < s->nl && l < n; l++)
        if (pfd[l].revents & POLLIN)
            server_accept(s, l);
}

static int server_pollfds(server *s, struct pollfd *pfd)
{
    int n = 0;
    for (int l = 0; l < s->nl; l++)
        pfd[n++] = (struct pollfd){listen_fd[l], POLLIN, 0};
    uint64_t now = now_us();
    for (int i = 0; i < s->nconns; i++)
        pfd[n++] = (struct pollfd){s->conns[i].fd,
                                   (short)((s->conns[i].paused_until > now ? 0 : POLLIN) |
                                           (s->conns[i].out.n ? POLLOUT : 0)), 0};
    return n;
}

static void *server_thread(void *arg)
{
    server *s = arg;
    struct pollfd pfd[MAXL + MAXC];
    while (!s->stop) {
        int n = server_pollfds(s, pfd);
        if (poll(pfd, (nfds_t)n, 2) > 0)
            server_events(s, pfd, n);
    }
    return NULL;
}

static void server_reset(server *s)
{
    while (s->nconns)
        conn_close(s, s->nconns - 1);
    /* drain connections the client left in the backlogs */
    for (int l = 0; l < MAXL; l++) {
        int fd;
        while ((fd = accept4(listen_fd[l], NULL, NULL, SOCK_NONBLOCK)) >= 0)
            close(fd);
    }
    sb_free(&s->map);
}

/* ---- the client side ------------------------------------------------------------------ */

typedef struct {
    uint64_t cookie;
    uint64_t sched;
    uint64_t limit;     /* longest it may take, us; 0 = not checked */
    int op;             /* expected cbffi_op */
    int finals, parts;
    int multi;          /* may produce non-final results */
    int waited;         /* must be final before the round ends */
} opinfo;

typedef struct {
    cbffi_client *c;
    opinfo ops[MAXOPS * 4];
    int nops;
    uint64_t op_to, conn_to, boot_to, dur_to, dur_iv;
    uint64_t slack;
    size_t batch;
    int io;             /* host-loop mode */
    int type;
    /* the host's watch set */
    int wfd[256];
    uint32_t wev[256];
    int nw;
} harness;

static int known_rc(int rc)
{
    return rc >= 0 && rc < CBFFI_RC_MAX && strcmp(cbffi_strerror(rc), "Unknown error code") != 0;
}

static opinfo *find_op(harness *h, uint64_t cookie)
{
    for (int i = 0; i < h->nops; i++)
        if (h->ops[i].cookie == cookie)
            return &h->ops[i];
    return NULL;
}

static void check_result(harness *h, const cbffi_result *r, uint64_t t)
{
    opinfo *o = find_op(h, r->cookie);
    TRACE("result cookie %llu op %u rc %d status 0x%x final %u server %d +%.1f ms\n",
          (unsigned long long)r->cookie, r->op, r->rc, r->status, r->final, r->server,
          o ? (double)(t - o->sched) / 1e3 : -1.0);
    if (!o)
        die("result for unknown cookie %llu (op %u rc %d)",
            (unsigned long long)r->cookie, r->op, r->rc);
    if (!known_rc(r->rc))
        die("unknown rc %d (op %u)", r->rc, r->op);
    if (o->finals)
        die("result after the final one (cookie %llu op %u rc %d)",
            (unsigned long long)r->cookie, r->op, r->rc);
    if (r->op != o->op)
        die("result op %u for an op of kind %d", r->op, o->op);
    if ((r->nvalue == 0) != (r->value == NULL) || (r->nkey == 0) != (r->key == NULL))
        die("key/value pointer vs length mismatch");
    volatile char sink = 0;
    for (uint32_t i = 0; i < r->nvalue; i += 97)
        sink ^= r->value[i];
    if (r->nvalue)
        sink ^= r->value[r->nvalue - 1];
    for (uint32_t i = 0; i < r->nkey; i++)
        sink ^= r->key[i];
    (void)sink;
    if (r->final) {
        o->finals++;
        if (o->limit && t > o->sched + o->limit + h->slack +
                                CFG_ALLOWANCE())
            die("op %d (cookie %llu) ended %.1f ms after scheduling; limit %.1f ms + slack",
                o->op, (unsigned long long)o->cookie, (double)(t - o->sched) / 1e3,
                (double)o->limit / 1e3);
    } else {
        if (!o->multi)
            die("non-final result for single-result op %d", o->op);
        o->parts++;
    }
}

static int outstanding(harness *h, int waited_only)
{
    int n = 0;
    for (int i = 0; i < h->nops; i++)
        if (!h->ops[i].finals && (!waited_only || h->ops[i].waited))
            n++;
    return n;
}

static void harvest(harness *h)
{
    cbffi_result res[64];
    size_t n;
    size_t batch = h->batch == 64 ? 63 : h->batch;
    while ((n = cbffi_harvest(h->c, res, batch)) > 0) {
        uint64_t t = now_us();
        for (size_t i = 0; i < n; i++)
            check_result(h, &res[i], t);
    }
    if (cbffi_pending(h->c) != (size_t)outstanding(h, 0))
        die("cbffi_pending() = %zu but %d ops have not ended", cbffi_pending(h->c),
            outstanding(h, 0));
}

static void drain_watches(harness *h)
{
    cbffi_watch w[8];
    size_t n;
    while ((n = cbffi_io_watches(h->c, w, 8)) > 0) {
        for (size_t i = 0; i < n; i++) {
            TRACE("  watch fd %d events %u\n", w[i].fd, w[i].events);
            int k = 0;
            while (k < h->nw && h->wfd[k] != w[i].fd)
                k++;
            if (w[i].events == 0) {
                if (k < h->nw) {
                    h->wfd[k] = h->wfd[--h->nw];
                    h->wev[k] = h->wev[h->nw];
                }
                continue;
            }
            if (w[i].fd < 0 || fcntl(w[i].fd, F_GETFD) < 0)
                die("watch asked for fd %d, which is not open", w[i].fd);
            if (k == h->nw) {
                if (h->nw == 256)
                    die("more than 256 fds watched");
                h->wfd[h->nw++] = w[i].fd;
            }
            h->wev[k] = w[i].events;
        }
    }
}

/* The key set: short keys, an empty one, the longest allowed and one more. */
static const char *key_of(uint8_t k, size_t *n)
{
    static char longkey[252];
    static const char *const keys[8] = {"k0", "k1", "foo", "Hello", "counter",
                                        "k:with:colons", "x", "another-key"};
    if (!longkey[0])
        memset(longkey, 'L', 251);
    switch (k % 11) {
    case 8: *n = 0; return (k & 0x80) ? NULL : "";
    case 9: *n = 250; return longkey;
    case 10: *n = 251; return longkey;
    default: *n = strlen(keys[k % 8]); return keys[k % 8];
    }
}

static uint64_t next_cookie;

/* Schedule one op from 3 bytes; records it when scheduled. */
static void schedule(harness *h, uint8_t kind, uint8_t kb, uint8_t param)
{
    static char bigval[65536];
    cbffi_client *c = h->c;
    size_t nkey;
    const char *key = key_of(kb, &nkey);
    uint64_t cookie = ++next_cookie;
    opinfo o = {.cookie = cookie, .sched = now_us(), .limit = h->op_to, .waited = 1};
    int rc;
    int k = (kind & 31) % 24;
    size_t nval = (param & 0x40) ? ((param & 1) ? sizeof bigval : 4096) : (param & 7);
    if ((param & 0xc0) == 0xc0)
        nval = 20 * 1024 * 1024 + 1; /* over the maximum: never read */
    switch (k) {
    case 0: case 1: case 2:
        o.op = CBFFI_OP_GET;
        rc = cbffi_get(c, key, nkey, k == 1 && (param & 0x80) ? 7 : k, param,
                       cookie); /* 7: a bad mode */
        break;
    case 3: case 4: case 5: case 6: case 7:
        o.op = CBFFI_OP_SET + (k - 3);
        rc = cbffi_store(c, o.op, key, nkey, bigval, nval, param, 0,
                         (param & 0x20) ? 0x1234 : 0, cookie);
        break;
    case 8:
        o.op = CBFFI_OP_REMOVE;
        rc = cbffi_remove(c, key, nkey, (param & 1) ? 0x1234 : 0, cookie);
        break;
    case 9:
        o.op = CBFFI_OP_COUNTER;
        rc = cbffi_counter(c, key, nkey, (int8_t)param, 5, param & 1,
                           (param & 2) ? 0xffffffffu : 0, cookie);
        break;
    case 10:
        o.op = CBFFI_OP_TOUCH;
        rc = cbffi_touch(c, key, nkey, param, cookie);
        break;
    case 11:
        o.op = CBFFI_OP_UNLOCK;
        rc = cbffi_unlock(c, key, nkey, (param & 1) ? 0x1234 : 0, cookie);
        break;
    case 12:
        o.op = CBFFI_OP_GET_REPLICA;
        rc = cbffi_get_replica(c, key, nkey, (int)(param % 6) - 1, cookie);
        break;
    case 13:
        o.op = CBFFI_OP_OBSERVE;
        o.multi = 1;
        rc = cbffi_observe(c, key, nkey, param & 1, cookie);
        break;
    case 14: {
        o.op = CBFFI_OP_ENDURE;
        uint64_t to = (param & 0x80) ? 0 : h->dur_to / 2 + 1000;
        o.limit = to ? to : h->dur_to;
        rc = cbffi_endure(c, key, nkey, (param & 0x40) ? 0x1234 : 0,
                          (int)(param % 5) - 1, (int)((param >> 3) % 5) - 1,
                          (param >> 5) & 1, to, (param & 1) ? 1000 : 0, cookie);
        break;
    }
    case 15:
        o.op = CBFFI_OP_SET + (param & 3);
        o.limit = h->op_to + h->dur_to;
        rc = cbffi_store_durable(c, o.op, key, nkey, bigval, nval & 7, 0, 0, 0,
                                 (int)((param >> 2) % 5) - 1,
                                 (int)((param >> 4) % 5) - 1, cookie);
        break;
    case 16:
        o.op = CBFFI_OP_REMOVE;
        o.limit = h->op_to + h->dur_to;
        rc = cbffi_remove_durable(c, key, nkey, 0, (int)(param % 5) - 1,
                                  (int)((param >> 3) % 5) - 1, cookie);
        break;
    case 17: {
        o.op = CBFFI_OP_STATS;
        o.multi = 1;
        static const char *const groups[4] = {NULL, "kv", "", "vbucket"};
        const char *g = groups[param & 3];
        size_t ng = g ? strlen(g) : 0;
        if (param & 4) {
            g = key_of(10, &ng);
        }
        rc = cbffi_stats(c, g, ng, cookie);
        break;
    }
    case 18:
        o.multi = 1;
        switch (param % 3) {
        case 0: o.op = CBFFI_OP_VERSION; rc = cbffi_version(c, cookie); break;
        case 1: o.op = CBFFI_OP_NOOP; rc = cbffi_noop(c, cookie); break;
        default:
            o.op = CBFFI_OP_FLUSH;
            if (h->type == CBFFI_TYPE_COUCHBASE && cbffi_client_replica_count(c) >= 0) {
                /* over REST, with its own 30 s timeout: not waited for */
                if (!h->io) {
                    next_cookie--;
                    return;
                }
                o.limit = 0;
                o.waited = 0;
            }
            rc = cbffi_flush(c, cookie);
        }
        break;
    case 19:
        o.op = CBFFI_OP_CONNECT;
        o.multi = h->type == CBFFI_TYPE_MEMCACHED;
        o.limit = h->type == CBFFI_TYPE_COUCHBASE ? h->boot_to : h->op_to;
        rc = cbffi_connect(c, cookie);
        break;
    case 20: case 21:
        if (!h->io) {
            /* the sync shortcuts (need an idle client) */
            cbffi_result out;
            uint64_t t0 = now_us();
            int busy = cbffi_pending(c) || cbffi_ready(c);
            if (k == 20)
                rc = cbffi_get_wait(c, key, nkey, param & 1, 0, &out);
            else
                rc = cbffi_store_wait(c, CBFFI_OP_SET, key, nkey, bigval, nval, 0, 0,
                                      0, &out);
            if (!known_rc(rc) || rc != out.rc)
                die("sync shortcut returned %d, result rc %d", rc, out.rc);
            if (busy && rc != CBFFI_EINVAL)
                die("sync shortcut on a busy client returned %d", rc);
            if (out.final && now_us() - t0 > h->op_to + h->slack +
                                 CFG_ALLOWANCE())
                die("sync shortcut took %.1f ms", (double)(now_us() - t0) / 1e3);
            next_cookie--;
            return;
        }
        o.op = CBFFI_OP_GET;
        rc = cbffi_get(c, key, nkey, 0, 0, cookie);
        break;
    default: /* 22, 23: plain sets and gets, the common case */
        o.op = k == 22 ? CBFFI_OP_SET : CBFFI_OP_GET;
        rc = k == 22 ? cbffi_store(c, CBFFI_OP_SET, key, nkey, bigval, nval, 0,
                                   0, 0, cookie)
                     : cbffi_get(c, key, nkey, 0, 0, cookie);
    }
    TRACE("schedule kind %d key %u param %u -> rc %d cookie %llu%s%s\n", k, kb, param,
          rc, (unsigned long long)cookie, rc ? ": " : "", rc ? cbffi_client_last_error(c) : "");
    if (!known_rc(rc))
        die("scheduling returned unknown rc %d", rc);
    if (rc != CBFFI_OK) {
        next_cookie--;
        if (cbffi_client_last_error(c)[0] == 0)
            die("scheduling refused (rc %d) without saying why", rc);
        return;
    }
    if (h->nops == (int)(sizeof h->ops / sizeof h->ops[0]))
        die("too many ops");
    h->ops[h->nops++] = o;
}

/* Sockets open in the process (the listeners are the baseline); printed
   when `show`. */
static int count_sockets(int show)
{
    int n = 0;
    for (int fd = 0; fd < 4096; fd++) {
        char path[64], link[256];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t k = readlink(path, link, sizeof link - 1);
        if (k <= 0)
            continue;
        link[k] = 0;
        if (strncmp(link, "socket:", 7) == 0) {
            n++;
            if (show)
                fprintf(stderr, "  fd %d -> %s\n", fd, link);
        }
    }
    return n;
}

/* One round in host-loop mode: client and server in one poll loop. */
static void run_io(harness *h, server *s, const uint8_t *ops, int nops)
{
    int iter = 0, next = 0;
    uint64_t start = now_us();
    uint64_t hard = 0;
    for (;;) {
        /* ops whose delay (in loop iterations) is due */
        while (next < nops && (ops[3 * next] >> 5) <= iter) {
            schedule(h, ops[3 * next], ops[3 * next + 1], ops[3 * next + 2]);
            next++;
            cbffi_io_flush(h->c);
            drain_watches(h);
        }
        harvest(h);
        if (next == nops && outstanding(h, 1) == 0)
            break;
        uint64_t now = now_us();
        uint64_t lim = 0;
        for (int i = 0; i < h->nops; i++)
            if (!h->ops[i].finals && h->ops[i].waited && h->ops[i].sched + h->ops[i].limit > lim)
                lim = h->ops[i].sched + h->ops[i].limit;
        hard = lim + 2 * h->slack + CFG_ALLOWANCE();
        if (next == nops && now > hard)
            die("ops did not end: %d outstanding %.1f ms after the round began",
                outstanding(h, 1), (double)(now - start) / 1e3);
        struct pollfd pfd[MAXL + MAXC + 256];
        int ns = server_pollfds(s, pfd);
        for (int i = 0; i < h->nw; i++) {
            short ev = (short)(((h->wev[i] & CBFFI_IO_READ) ? POLLIN : 0) |
                               ((h->wev[i] & CBFFI_IO_WRITE) ? POLLOUT : 0));
            pfd[ns + i] = (struct pollfd){h->wfd[i], ev, 0};
        }
        int64_t dl = cbffi_io_deadline(h->c);
        int64_t to = dl < 0 || dl > 5000 ? 5000 : dl;
        if (next < nops)
            to = 0;
        struct timespec ts = {0, (long)to * 1000};
        int n = ppoll(pfd, (nfds_t)(ns + h->nw), &ts, NULL);
        if (n > 0) {
            int before[MAXC];
            int nbefore = s->nconns;
            for (int i = 0; i < nbefore; i++)
                before[i] = s->conns[i].fd;
            server_events(s, pfd, ns);
            /* a new server fd that the client still watches: it closed its
               socket without telling the host */
            for (int i = 0; i < s->nconns; i++) {
                int old = 0;
                for (int k = 0; k < nbefore; k++)
                    old |= before[k] == s->conns[i].fd;
                for (int k = 0; !old && k < h->nw; k++)
                    if (h->wfd[k] == s->conns[i].fd)
                        die("fd %d is in the watch set but the client closed it",
                            h->wfd[k]);
            }
            int nwatch = h->nw;
            int wfd[256];
            short rev[256];
            for (int i = 0; i < nwatch; i++) {
                wfd[i] = pfd[ns + i].fd;
                rev[i] = pfd[ns + i].revents;
            }
            for (int i = 0; i < nwatch; i++) {
                if (!rev[i])
                    continue;
                if (rev[i] & POLLNVAL)
                    die("fd %d in the watch set is closed", wfd[i]);
                uint32_t ev = 0;
                if (rev[i] & (POLLIN | POLLERR | POLLHUP))
                    ev |= CBFFI_IO_READ;
                if (rev[i] & (POLLOUT | POLLERR | POLLHUP))
                    ev |= CBFFI_IO_WRITE;
                TRACE("  event fd %d %u\n", wfd[i], ev);
                cbffi_io_event(h->c, wfd[i], ev);
                drain_watches(h);
            }
        }
        if (cbffi_io_deadline(h->c) == 0) {
            TRACE("  tick\n");
            cbffi_io_tick(h->c);
            drain_watches(h);
        }
        iter++;
    }
}

static void run_wait(harness *h, const uint8_t *ops, int nops)
{
    for (int i = 0; i < nops; i++)
        schedule(h, ops[3 * i], ops[3 * i + 1], ops[3 * i + 2]);
    uint64_t t0 = now_us();
    uint64_t lim = 0;
    for (int i = 0; i < h->nops; i++)
        if (!h->ops[i].finals && h->ops[i].sched + h->ops[i].limit > lim)
            lim = h->ops[i].sched + h->ops[i].limit;
    cbffi_result res[64];
    /* batch 64: wait without harvesting (out = NULL, max = 0) */
    size_t n = h->batch == 64 ? cbffi_wait(h->c, NULL, 0) : cbffi_wait(h->c, res, h->batch);
    uint64_t t = now_us();
    if (h->batch == 64 && n != 0)
        die("cbffi_wait(NULL, 0) returned %zu", n);
    for (size_t i = 0; i < n; i++)
        check_result(h, &res[i], t);
    harvest(h);
    if (cbffi_pending(h->c) != 0)
        die("cbffi_wait returned with %zu ops pending", cbffi_pending(h->c));
    if (outstanding(h, 0))
        die("cbffi_wait returned but %d ops have no final result", outstanding(h, 0));
    if (lim && t > lim + h->slack + CFG_ALLOWANCE())
        die("cbffi_wait took %.1f ms; the longest op limit was %.1f ms",
            (double)(t - t0) / 1e3, (double)(lim - t0) / 1e3);
}

static int baseline_fds = -1;
static uint64_t slack_us = 300000;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    debug = getenv("FUZZ_SERVER_DEBUG") != NULL;
    const char *e = getenv("FUZZ_SERVER_SLACK_MS");
    if (e && atoi(e) > 0)
        slack_us = (uint64_t)atoi(e) * 1000;
    for (int l = 0; l < MAXL; l++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET};
        socklen_t len = sizeof a;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        /* small receive windows (inherited by accepted sockets): a server
           that stops reading pushes back on the client at once */
        int small = 8192;
        if (fd >= 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
            listen(fd, 128) != 0 ||
            getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
            perror("listener");
            abort();
        }
        listen_fd[l] = fd;
        listen_port[l] = ntohs(a.sin_port);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static server s;
    static harness h;
    reader in = {data, size, 0};
    uint8_t mode = rd(&in), tmo = rd(&in), shape = rd(&in), batch = rd(&in);
    uint8_t mapdesc[7];
    for (int i = 0; i < 7; i++)
        mapdesc[i] = rd(&in);
    int nrounds = 1 + (shape >> 6) % 3;
    int perround = 1 + (shape & 15);
    int nops = nrounds * perround;
    if (nops > MAXOPS)
        nops = MAXOPS;
    uint8_t ops[3 * MAXOPS];
    for (int i = 0; i < 3 * nops; i++)
        ops[i] = rd(&in);

    memset(&h, 0, sizeof h);
    memset(&s, 0, sizeof s);
    cfg_bytes = 0;
    if (baseline_fds < 0)
        baseline_fds = count_sockets(0);
    int scheme = mode & 3;
    h.io = !(mode & 4);
    int destroy_pending = (mode & 8) != 0;
    s.nl = 1 + ((mode >> 4) & 3);
    nallowed = s.nl;
    s.ms.nlisteners = s.nl;
    s.ms.rev = 0;
    reader mr = {mapdesc, 7, 0};
    gen_map(&s.map, &s.ms, &mr);
    s.r = (reader){data + in.pos, size - in.pos, 0};
    s.start_paused = (batch & 0x40) ? 30000 : 0;

    static const uint64_t op_tab[4] = {20000, 30000, 50000, 15000};
    static const uint64_t conn_tab[4] = {20000, 40000, 60000, 10000};
    static const uint64_t dur_tab[4] = {20000, 40000, 80000, 10000};
    static const uint64_t iv_tab[4] = {1000, 2000, 5000, 3000};
    h.op_to = op_tab[tmo & 3];
    h.conn_to = conn_tab[(tmo >> 2) & 3];
    h.dur_to = dur_tab[(tmo >> 4) & 3];
    h.dur_iv = iv_tab[(tmo >> 6) & 3];
    h.boot_to = 2 * h.conn_to + h.op_to;
    h.slack = slack_us;
    h.batch = 1 + batch % 64;
    batch &= 0xbf; /* bit 6: start_paused */

    char cs[512];
    int n = 0;
    const char *user = (mode & 0x80) ? "user" : NULL;
    const char *pass = (mode & 0x80) || (batch & 0x80) ? PASSWORD : NULL;
    if (scheme == 0) {
        n = snprintf(cs, sizeof cs, "memcached://");
        for (int l = 0; l < s.nl; l++)
            n += snprintf(cs + n, sizeof cs - (size_t)n, "%s127.0.0.1:%d", l ? "," : "",
                          listen_port[l]);
        if (mode & 0x40) /* and one that refuses connections */
            n += snprintf(cs + n, sizeof cs - (size_t)n, ",127.0.0.1:9");
    } else if (scheme == 3) {
        n = snprintf(cs, sizeof cs, "http://127.0.0.1:%d/%s", listen_port[0], BUCKET);
    } else {
        n = snprintf(cs, sizeof cs, "couchbase://");
        for (int l = 0; l < s.nl; l++)
            n += snprintf(cs + n, sizeof cs - (size_t)n, "%s127.0.0.1:%d%s", l ? "," : "",
                          listen_port[l], (mode & 0x40) && l == s.nl - 1 ? "=http" : "");
        n += snprintf(cs + n, sizeof cs - (size_t)n, "/%s?operation_timeout=1s%s%s", BUCKET,
                      scheme == 2 ? "&sasl_mech_force=PLAIN" : "",
                      (mode & 0x40) ? "&bootstrap_on=all" : "");
    }
    server_password = pass ? pass : "";
    char err[256];
    int crc = cbffi_client_create(&h.c, cs, user, pass, err, sizeof err);
    if (scheme == 0 && pass && !user) {
        /* memcached:// SASL needs a username: a password alone is refused up front */
        if (crc != CBFFI_EINVAL || h.c != NULL)
            die("a password without a username on memcached:// gave rc 0x%x, not EINVAL", crc);
        server_reset(&s);
        return 0;
    }
    if (crc != CBFFI_OK)
        die("client create failed for %s: %s", cs, err);
    h.type = cbffi_client_type_of(h.c);
    cbffi_client_set_timeout(h.c, CBFFI_TIMEOUT_OPERATION, h.op_to);
    cbffi_client_set_timeout(h.c, CBFFI_TIMEOUT_CONNECT, h.conn_to);
    cbffi_client_set_timeout(h.c, CBFFI_TIMEOUT_BOOTSTRAP, h.boot_to);
    cbffi_client_set_timeout(h.c, CBFFI_TIMEOUT_DURABILITY, h.dur_to);
    cbffi_client_set_timeout(h.c, CBFFI_TIMEOUT_DURABILITY_INTERVAL, h.dur_iv);

    pthread_t thr;
    if (!h.io)
        pthread_create(&thr, NULL, server_thread, &s);

    /* couchbase: connect first, in its own round, unless the input says
       the first ops should wait for the map themselves */
    if (h.type == CBFFI_TYPE_COUCHBASE && !(shape & 16)) {
        uint8_t c3[3] = {19, 0, 0};
        if (h.io)
            run_io(&h, &s, c3, 1);
        else
            run_wait(&h, c3, 1);
    }
    for (int r = 0; r < nrounds; r++) {
        const uint8_t *o = ops + 3 * r * perround;
        int k = perround;
        if (r * perround + k > nops)
            k = nops - r * perround;
        if (k <= 0)
            break;
        if (destroy_pending && r == nrounds - 1) {
            for (int i = 0; i < k; i++)
                schedule(&h, o[3 * i], o[3 * i + 1], o[3 * i + 2]);
            cbffi_io_flush(h.c);
            if (shape & 32) {
                cbffi_io_tick(h.c);
                harvest(&h);
            }
            break;
        }
        if (h.io)
            run_io(&h, &s, o, k);
        else
            run_wait(&h, o, k);
    }
    cbffi_client_destroy(h.c);
    h.c = NULL;
    if (!h.io) {
        s.stop = 1;
        pthread_join(thr, NULL);
    }
    server_reset(&s);
    int socks = count_sockets(0);
    if (socks != baseline_fds) {
        count_sockets(1);
        die("%d sockets open after destroy, %d before", socks, baseline_fds);
    }
    return 0;
}
