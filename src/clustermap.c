/*
 * clustermap.c - terse bucket config parsing (see clustermap.h).
 * Wire facts: PROTOCOL.md 5.2 (fields), 5.3 ($HOST), 5.4 (CRC32 vbuckets).
 */
#include "clustermap.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef struct parse_ctx {
    cb_clustermap *m;
    const char *src;          /* source host, no brackets; may be NULL */
    char src_b[CB_CM_MAX_STRING + 3];   /* as it replaces $HOST */
    char *err;
    size_t nerr;
    int nomem;
} parse_ctx;

static int bad(parse_ctx *c, const char *fmt, ...)
{
    if (c->nerr) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->nerr, fmt, ap);
        va_end(ap);
    }
    return CB_CM_EINPUT;
}

static int oom(parse_ctx *c)
{
    c->nomem = 1;
    if (c->nerr)
        snprintf(c->err, c->nerr, "out of memory");
    return CB_CM_ENOMEM;
}

/* ---- strings ------------------------------------------------------------ */

/* Copy s[0..n) into *dst with every "$HOST" replaced. */
static int dup_replacing(parse_ctx *c, const char *s, size_t n, char **dst,
                         const char *what)
{
    static const char marker[] = "$HOST";
    const size_t nm = sizeof marker - 1;
    size_t count = 0;
    for (const char *p = s; (p = memmem(p, n - (size_t)(p - s), marker, nm));
         p += nm)
        count++;
    if (count && !c->src)
        return bad(c, "%s contains $HOST but no source host was given", what);
    size_t nsrc = count ? strlen(c->src_b) : 0;
    size_t total = n - count * nm + count * nsrc;
    if (total > CB_CM_MAX_STRING)
        return bad(c, "%s is too long (%zu bytes)", what, total);
    char *out = malloc(total + 1), *w = out;
    if (!out)
        return oom(c);
    for (size_t i = 0; i < n;) {
        if (n - i >= nm && memcmp(s + i, marker, nm) == 0) {
            memcpy(w, c->src_b, nsrc);
            w += nsrc;
            i += nm;
        } else {
            *w++ = s[i++];
        }
    }
    *w = '\0';
    *dst = out;
    return 0;
}

/* A string member; *dst stays NULL when absent and not required. */
static int get_string(parse_ctx *c, json_object *o, const char *key,
                      int required, char **dst, const char *what)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !v)
        return required ? bad(c, "%s: missing \"%s\"", what, key) : 0;
    if (!json_object_is_type(v, json_type_string))
        return bad(c, "%s: \"%s\" is not a string", what, key);
    const char *s = json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v);
    if (strlen(s) != n)
        return bad(c, "%s: \"%s\" contains a NUL byte", what, key);
    if (n > CB_CM_MAX_STRING)
        return bad(c, "%s: \"%s\" is too long (%zu bytes)", what, key, n);
    return dup_replacing(c, s, n, dst, key);
}

/* An integer value in [lo, hi]. */
static int int_in(parse_ctx *c, json_object *v, int64_t lo, int64_t hi,
                  int64_t *dst, const char *what)
{
    if (!json_object_is_type(v, json_type_int))
        return bad(c, "%s is not an integer", what);
    int64_t x = json_object_get_int64(v);
    if (x < lo || x > hi ||
        (x == INT64_MAX && json_object_get_uint64(v) != (uint64_t)INT64_MAX))
        return bad(c, "%s out of range %lld..%lld", what, (long long)lo,
                   (long long)hi);
    *dst = x;
    return 0;
}

/* An integer member; *dst = dflt when absent. */
static int get_int(parse_ctx *c, json_object *o, const char *key, int64_t lo,
                   int64_t hi, int64_t dflt, int64_t *dst)
{
    json_object *v;
    *dst = dflt;
    if (!json_object_object_get_ex(o, key, &v) || !v)
        return 0;
    return int_in(c, v, lo, hi, dst, key);
}

/* An array member of at most max entries; NULL when absent. */
static int get_array(parse_ctx *c, json_object *o, const char *key,
                     size_t max, json_object **dst, size_t *n)
{
    json_object *v;
    *dst = NULL;
    *n = 0;
    if (!json_object_object_get_ex(o, key, &v) || !v)
        return 0;
    if (!json_object_is_type(v, json_type_array))
        return bad(c, "\"%s\" is not an array", key);
    *n = json_object_array_length(v);
    if (*n > max)
        return bad(c, "\"%s\" has too many entries (%zu > %zu)", key, *n, max);
    *dst = v;
    return 0;
}

/* ---- host:port ---------------------------------------------------------- */

/* Split "host:port" or "[v6]:port" into a malloc'd host (no brackets). */
static int split_hostport(parse_ctx *c, const char *s, char **host,
                          uint16_t *port, uint8_t *ipv6, const char *what)
{
    const char *colon = strrchr(s, ':'), *h = s, *he;
    if (!colon)
        return bad(c, "%s: \"%s\" has no port", what, s);
    he = colon;
    if (s[0] == '[') {
        if (colon == s || colon[-1] != ']')
            return bad(c, "%s: \"%s\" has a bad IPv6 address", what, s);
        h = s + 1;
        he = colon - 1;
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end || p < 1 || p > 65535)
        return bad(c, "%s: \"%s\" has a bad port", what, s);
    if (he == h)
        return bad(c, "%s: \"%s\" has an empty host", what, s);
    *host = strndup(h, (size_t)(he - h));
    if (!*host)
        return oom(c);
    *port = (uint16_t)p;
    *ipv6 = memchr(h, ':', (size_t)(he - h)) != NULL;
    return 0;
}

/* Fill a server from host + port, building its authority. */
static int make_server(parse_ctx *c, cb_cm_server *sv, const char *host,
                       uint16_t port)
{
    sv->ipv6 = strchr(host, ':') != NULL;
    sv->port = port;
    size_t n = strlen(host) + 10;
    sv->host = strdup(host);
    sv->authority = malloc(n);
    if (!sv->host || !sv->authority)
        return oom(c);
    snprintf(sv->authority, n, sv->ipv6 ? "[%s]:%u" : "%s:%u", host,
             (unsigned)port);
    return 0;
}

/* ---- top level fields --------------------------------------------------- */

static const struct { const char *name; uint32_t flag; } cap_names[] = {
    {"durableWrite", CB_CM_CAP_DURABLE_WRITE}, {"xattr", CB_CM_CAP_XATTR},
    {"cccp", CB_CM_CAP_CCCP}, {"couchapi", CB_CM_CAP_COUCHAPI},
    {"nodesExt", CB_CM_CAP_NODES_EXT}, {"collections", CB_CM_CAP_COLLECTIONS},
};

static int parse_caps(parse_ctx *c, json_object *root)
{
    json_object *a;
    size_t n;
    int rc = get_array(c, root, "bucketCapabilities", 256, &a, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_object *v = json_object_array_get_idx(a, i);
        if (!json_object_is_type(v, json_type_string))
            return bad(c, "bucketCapabilities[%zu] is not a string", i);
        for (size_t k = 0; k < sizeof cap_names / sizeof cap_names[0]; k++)
            if (strcmp(json_object_get_string(v), cap_names[k].name) == 0)
                c->m->caps |= cap_names[k].flag;
    }
    return rc;
}

/* clusterCapabilities: {"n1ql": ["enhancedPreparedStatements", ...], ...};
   other services' lists and unknown names are ignored. */
static int parse_cluster_caps(parse_ctx *c, json_object *root)
{
    json_object *o, *a;
    size_t n;
    if (!json_object_object_get_ex(root, "clusterCapabilities", &o) || !o)
        return 0;
    if (!json_object_is_type(o, json_type_object))
        return bad(c, "\"clusterCapabilities\" is not an object");
    int rc = get_array(c, o, "n1ql", 256, &a, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_object *v = json_object_array_get_idx(a, i);
        if (!json_object_is_type(v, json_type_string))
            return bad(c, "clusterCapabilities.n1ql[%zu] is not a string", i);
        if (strcmp(json_object_get_string(v), "enhancedPreparedStatements") == 0)
            c->m->cluster_caps |= CB_CM_CCAP_N1QL_ENHANCED_PREPARED;
    }
    return rc;
}

static int parse_header(parse_ctx *c, json_object *root)
{
    cb_clustermap *m = c->m;
    char *loc = NULL;
    int rc = get_int(c, root, "rev", 0, INT64_MAX, -1, &m->rev);
    if (!rc)
        rc = get_int(c, root, "revEpoch", 0, INT64_MAX, -1, &m->rev_epoch);
    if (!rc)
        rc = get_string(c, root, "name", 0, &m->name, "config");
    if (!rc)
        rc = get_string(c, root, "uuid", 0, &m->uuid, "config");
    if (!rc)
        rc = get_string(c, root, "bucketType", 0, &m->bucket_type, "config");
    if (!rc)
        rc = get_string(c, root, "nodeLocator", 0, &loc, "config");
    if (!rc && loc) {
        if (strcmp(loc, "vbucket") == 0)
            m->locator = CB_CM_VBUCKET;
        else if (strcmp(loc, "ketama") == 0)
            m->locator = CB_CM_KETAMA;
        else
            rc = bad(c, "unknown nodeLocator \"%.64s\"", loc);
    }
    free(loc);
    if (!rc && !m->locator)
        m->locator = json_object_object_get_ex(root, "vBucketServerMap", NULL)
                         ? CB_CM_VBUCKET : CB_CM_KETAMA;
    if (!rc)
        rc = parse_caps(c, root);
    return rc ? rc : parse_cluster_caps(c, root);
}

/* ---- nodes / nodesExt --------------------------------------------------- */

static int parse_node(parse_ctx *c, json_object *o, cb_cm_node *nd, size_t i)
{
    char what[64];
    snprintf(what, sizeof what, "nodes[%zu]", i);
    if (!json_object_is_type(o, json_type_object))
        return bad(c, "%s is not an object", what);
    int rc = get_string(c, o, "hostname", 1, &nd->hostname, what);
    if (!rc)
        rc = get_string(c, o, "couchApiBase", 0, &nd->couch_api_base, what);
    json_object *ports;
    if (!rc && json_object_object_get_ex(o, "ports", &ports) && ports) {
        int64_t d;
        if (!json_object_is_type(ports, json_type_object))
            return bad(c, "%s: \"ports\" is not an object", what);
        json_object *v;
        if (!json_object_object_get_ex(ports, "direct", &v) || !v)
            return 0;
        snprintf(what, sizeof what, "nodes[%zu].ports.direct", i);
        rc = int_in(c, v, 1, 65535, &d, what);
        nd->direct = rc ? 0 : (uint16_t)d;
    }
    return rc;
}

static const char *const service_keys[CB_SVC__COUNT] = {
    [CB_SVC_KV] = "kv", [CB_SVC_KV_SSL] = "kvSSL", [CB_SVC_MGMT] = "mgmt",
    [CB_SVC_MGMT_SSL] = "mgmtSSL", [CB_SVC_CAPI] = "capi",
    [CB_SVC_CAPI_SSL] = "capiSSL", [CB_SVC_N1QL] = "n1ql",
    [CB_SVC_N1QL_SSL] = "n1qlSSL", [CB_SVC_FTS] = "fts",
    [CB_SVC_FTS_SSL] = "ftsSSL", [CB_SVC_INDEX_ADMIN] = "indexAdmin",
    [CB_SVC_INDEX_SCAN] = "indexScan", [CB_SVC_CBAS] = "cbas",
    [CB_SVC_CBAS_SSL] = "cbasSSL", [CB_SVC_EVENTING] = "eventingAdminPort",
    [CB_SVC_EVENTING_SSL] = "eventingSSL",
};

static int parse_services(parse_ctx *c, json_object *svc, cb_cm_node_ext *ne,
                          size_t i)
{
    if (!json_object_is_type(svc, json_type_object))
        return bad(c, "nodesExt[%zu].services is not an object", i);
    for (int k = 0; k < CB_SVC__COUNT; k++) {
        json_object *v;
        int64_t p;
        char what[64];
        if (!json_object_object_get_ex(svc, service_keys[k], &v) || !v)
            continue;
        snprintf(what, sizeof what, "nodesExt[%zu].services.%s", i,
                 service_keys[k]);
        if (int_in(c, v, 1, 65535, &p, what) != 0)
            return CB_CM_EINPUT;
        ne->ports[k] = (uint16_t)p;
    }
    return 0;
}

static int parse_node_ext(parse_ctx *c, json_object *o, cb_cm_node_ext *ne,
                          size_t i)
{
    char what[64];
    snprintf(what, sizeof what, "nodesExt[%zu]", i);
    if (!json_object_is_type(o, json_type_object))
        return bad(c, "%s is not an object", what);
    int rc = get_string(c, o, "hostname", 0, &ne->hostname, what);
    if (!rc && !ne->hostname) {
        if (!c->src)
            return bad(c, "%s has no hostname and no source host was given",
                       what);
        rc = dup_replacing(c, c->src, strlen(c->src), &ne->hostname, what);
    }
    if (rc)
        return rc;
    size_t n = strlen(ne->hostname);
    if (n >= 2 && ne->hostname[0] == '[' && ne->hostname[n - 1] == ']') {
        memmove(ne->hostname, ne->hostname + 1, n - 2);
        ne->hostname[n - 2] = '\0';
    }
    if (!ne->hostname[0])
        return bad(c, "%s: empty hostname", what);
    ne->ipv6 = strchr(ne->hostname, ':') != NULL;
    json_object *v;
    if (json_object_object_get_ex(o, "thisNode", &v) && v)
        ne->this_node = json_object_get_boolean(v) ? 1 : 0;
    if (!json_object_object_get_ex(o, "services", &v) || !v)
        return bad(c, "%s: missing \"services\"", what);
    return parse_services(c, v, ne, i);
}

static int parse_nodes(parse_ctx *c, json_object *root)
{
    cb_clustermap *m = c->m;
    json_object *a;
    size_t n;
    int rc = get_array(c, root, "nodes", CB_CM_MAX_SERVERS, &a, &n);
    if (!rc && n) {
        if (!(m->nodes = calloc(n, sizeof *m->nodes)))
            return oom(c);
        m->nnodes = (uint32_t)n;
        for (size_t i = 0; !rc && i < n; i++)
            rc = parse_node(c, json_object_array_get_idx(a, i), &m->nodes[i], i);
    }
    if (!rc)
        rc = get_array(c, root, "nodesExt", CB_CM_MAX_SERVERS, &a, &n);
    if (!rc && n) {
        if (!(m->nodes_ext = calloc(n, sizeof *m->nodes_ext)))
            return oom(c);
        m->nnodes_ext = (uint32_t)n;
        for (size_t i = 0; !rc && i < n; i++)
            rc = parse_node_ext(c, json_object_array_get_idx(a, i),
                                &m->nodes_ext[i], i);
    }
    return rc;
}

/* ---- vBucketServerMap --------------------------------------------------- */

static int parse_server_list(parse_ctx *c, json_object *vsm)
{
    cb_clustermap *m = c->m;
    json_object *a;
    size_t n;
    int rc = get_array(c, vsm, "serverList", CB_CM_MAX_SERVERS, &a, &n);
    if (rc)
        return rc;
    if (!a || n == 0)
        return bad(c, "vBucketServerMap.serverList is missing or empty");
    if (!(m->servers = calloc(n, sizeof *m->servers)))
        return oom(c);
    m->nservers = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        json_object *v = json_object_array_get_idx(a, i);
        char what[64], *s = NULL, *host = NULL;
        uint16_t port;
        uint8_t v6;
        snprintf(what, sizeof what, "serverList[%zu]", i);
        if (!json_object_is_type(v, json_type_string) ||
            strlen(json_object_get_string(v)) !=
                (size_t)json_object_get_string_len(v))
            return bad(c, "%s is not a string", what);
        rc = dup_replacing(c, json_object_get_string(v),
                           (size_t)json_object_get_string_len(v), &s, what);
        if (!rc)
            rc = split_hostport(c, s, &host, &port, &v6, what);
        if (!rc)
            rc = make_server(c, &m->servers[i], host, port);
        free(s);
        free(host);
        if (rc)
            return rc;
    }
    return 0;
}

/* Read one vBucketMap(-Forward) array into a new flat int16 table. */
static int parse_vbmap(parse_ctx *c, json_object *a, const char *key,
                       int16_t **dst)
{
    cb_clustermap *m = c->m;
    size_t nvb = json_object_array_length(a), width = m->nreplicas + 1;
    int16_t *t = malloc(nvb * width * sizeof *t);
    if (!t)
        return oom(c);
    *dst = t;
    for (size_t vb = 0; vb < nvb; vb++) {
        json_object *chain = json_object_array_get_idx(a, vb);
        if (!json_object_is_type(chain, json_type_array))
            return bad(c, "%s[%zu] is not an array", key, vb);
        if (json_object_array_length(chain) != width)
            return bad(c, "%s[%zu] has %zu entries, expected numReplicas+1 = %zu",
                       key, vb, json_object_array_length(chain), width);
        for (size_t i = 0; i < width; i++) {
            int64_t x;
            char what[64];
            snprintf(what, sizeof what, "%s[%zu][%zu]", key, vb, i);
            if (int_in(c, json_object_array_get_idx(chain, i), -1,
                       (int64_t)m->nservers - 1, &x, what) != 0)
                return CB_CM_EINPUT;
            t[vb * width + i] = (int16_t)x;
        }
    }
    return 0;
}

static int parse_vbucket_map(parse_ctx *c, json_object *root)
{
    cb_clustermap *m = c->m;
    json_object *vsm, *a, *fwd;
    size_t n, nfwd;
    int64_t nrep;
    char *algo = NULL;
    if (!json_object_object_get_ex(root, "vBucketServerMap", &vsm) ||
        !json_object_is_type(vsm, json_type_object))
        return bad(c, "vbucket config without a vBucketServerMap object");
    int rc = get_string(c, vsm, "hashAlgorithm", 0, &algo, "vBucketServerMap");
    if (!rc && algo && strcmp(algo, "CRC") != 0)
        rc = bad(c, "unsupported hashAlgorithm \"%.32s\"", algo);
    free(algo);
    if (!rc)
        rc = get_int(c, vsm, "numReplicas", 0, CB_CM_MAX_REPLICAS, 0, &nrep);
    if (rc)
        return rc;
    m->nreplicas = (uint32_t)nrep;
    if ((rc = parse_server_list(c, vsm)) != 0 ||
        (rc = get_array(c, vsm, "vBucketMap", CB_CM_MAX_VBUCKETS, &a, &n)) ||
        (rc = get_array(c, vsm, "vBucketMapForward", CB_CM_MAX_VBUCKETS, &fwd,
                        &nfwd)))
        return rc;
    if (!a || n == 0)
        return bad(c, "vBucketServerMap.vBucketMap is missing or empty");
    m->nvbuckets = (uint32_t)n;
    if ((rc = parse_vbmap(c, a, "vBucketMap", &m->vbmap)) != 0 || !fwd)
        return rc;
    if (nfwd != n)
        return bad(c, "vBucketMapForward has %zu vbuckets, vBucketMap %zu",
                   nfwd, n);
    return parse_vbmap(c, fwd, "vBucketMapForward", &m->vbmap_forward);
}

/* ---- ketama (memcached bucket) servers ---------------------------------- */

static int ketama_from_nodes(parse_ctx *c)
{
    cb_clustermap *m = c->m;
    for (uint32_t i = 0; i < m->nnodes; i++) {
        char what[64], *host = NULL;
        uint16_t mgmt;
        uint8_t v6;
        snprintf(what, sizeof what, "nodes[%u].hostname", i);
        if (!m->nodes[i].direct)
            return bad(c, "nodes[%u] has no ports.direct", i);
        int rc = split_hostport(c, m->nodes[i].hostname, &host, &mgmt, &v6,
                                what);
        if (!rc)
            rc = make_server(c, &m->servers[i], host, m->nodes[i].direct);
        free(host);
        if (rc)
            return rc;
    }
    return 0;
}

static int ketama_from_nodes_ext(parse_ctx *c)
{
    cb_clustermap *m = c->m;
    uint32_t k = 0;
    for (uint32_t i = 0; i < m->nnodes_ext; i++) {
        const cb_cm_node_ext *ne = &m->nodes_ext[i];
        if (!ne->ports[CB_SVC_KV])
            continue;
        int rc = make_server(c, &m->servers[k++], ne->hostname,
                             ne->ports[CB_SVC_KV]);
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_ketama_servers(parse_ctx *c)
{
    cb_clustermap *m = c->m;
    uint32_t n = m->nnodes ? m->nnodes : m->nnodes_ext;
    if (n == 0)
        return bad(c, "memcached bucket config without nodes or nodesExt");
    if (!(m->servers = calloc(n, sizeof *m->servers)))
        return oom(c);
    m->nservers = n;
    int rc = m->nnodes ? ketama_from_nodes(c) : ketama_from_nodes_ext(c);
    if (!rc && !m->nnodes) {
        m->nservers = 0;
        while (m->nservers < n && m->servers[m->nservers].authority)
            m->nservers++;
        if (m->nservers == 0)
            return bad(c, "memcached bucket config: no nodesExt entry has kv");
    }
    return rc;
}

/* ---- entry points ------------------------------------------------------- */

static json_object *parse_json(parse_ctx *c, const char *json, size_t n)
{
    json_tokener *tok = json_tokener_new_ex(CB_CM_MAX_DEPTH);
    if (!tok) {
        oom(c);
        return NULL;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *root = json_tokener_parse_ex(tok, json, (int)n);
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!root || e != json_tokener_success) {
        bad(c, "invalid JSON: %s", e == json_tokener_continue
                                       ? "truncated input"
                                       : json_tokener_error_desc(e));
        json_object_put(root);
        return NULL;
    }
    while (end < n && strchr(" \t\r\n", json[end]) && json[end])
        end++;
    if (end != n || !json_object_is_type(root, json_type_object)) {
        bad(c, end != n ? "invalid JSON: trailing bytes after the config"
                        : "config is not a JSON object");
        json_object_put(root);
        return NULL;
    }
    return root;
}

static int set_source(parse_ctx *c, const char *src)
{
    c->src = src;
    if (!src)
        return 0;
    size_t n = strlen(src);
    if (n == 0 || n > CB_CM_MAX_STRING || src[0] == '[')
        return bad(c, "bad source host (empty, too long or bracketed)");
    snprintf(c->src_b, sizeof c->src_b, strchr(src, ':') ? "[%s]" : "%s", src);
    return 0;
}

int cb_clustermap_parse(cb_clustermap *out, const char *json, size_t n,
                        const char *source_host, char *err, size_t nerr)
{
    parse_ctx c = {.m = out, .err = err, .nerr = nerr};
    memset(out, 0, sizeof *out);
    if (nerr)
        err[0] = '\0';
    if (set_source(&c, source_host) != 0)
        return CB_CM_EINPUT;
    if (n > CB_CM_MAX_BYTES)
        return bad(&c, "config too large (%zu bytes > %d)", n, CB_CM_MAX_BYTES);
    json_object *root = parse_json(&c, json, n);
    if (!root)
        return c.nomem ? CB_CM_ENOMEM : CB_CM_EINPUT;
    int rc = parse_header(&c, root);
    if (!rc)
        rc = parse_nodes(&c, root);
    if (!rc)
        rc = out->locator == CB_CM_VBUCKET ? parse_vbucket_map(&c, root)
                                           : parse_ketama_servers(&c);
    json_object_put(root);
    if (rc) {
        cb_clustermap_free(out);
        return c.nomem ? CB_CM_ENOMEM : CB_CM_EINPUT;
    }
    return CB_CM_OK;
}

void cb_clustermap_free(cb_clustermap *m)
{
    for (uint32_t i = 0; m->servers && i < m->nservers; i++) {
        free(m->servers[i].authority);
        free(m->servers[i].host);
    }
    for (uint32_t i = 0; m->nodes && i < m->nnodes; i++) {
        free(m->nodes[i].hostname);
        free(m->nodes[i].couch_api_base);
    }
    for (uint32_t i = 0; m->nodes_ext && i < m->nnodes_ext; i++)
        free(m->nodes_ext[i].hostname);
    free(m->servers);
    free(m->nodes);
    free(m->nodes_ext);
    free(m->vbmap);
    free(m->vbmap_forward);
    free(m->name);
    free(m->uuid);
    free(m->bucket_type);
    memset(m, 0, sizeof *m);
}

int cb_clustermap_is_newer(const cb_clustermap *a, const cb_clustermap *b)
{
    if (!a)
        return 1;
    if (b->rev_epoch != a->rev_epoch)
        return b->rev_epoch > a->rev_epoch;
    return b->rev > a->rev;
}

uint32_t cb_vbucket_of(const void *key, size_t nkey, uint32_t nvbuckets)
{
    if (nvbuckets == 0)
        return 0;
    uLong crc = crc32_z(0L, (const Bytef *)key, (z_size_t)nkey);
    return (uint32_t)(((crc >> 16) & 0x7fff) % nvbuckets);
}

/* ---- TLS ports ---------------------------------------------------------- */

int cb_clustermap_use_tls(cb_clustermap *m, char *err, size_t nerr)
{
    for (uint32_t i = 0; i < m->nservers; i++) {
        cb_cm_server *sv = &m->servers[i];
        const cb_cm_node_ext *ne = NULL;
        for (uint32_t j = 0; j < m->nnodes_ext && !ne; j++)
            if (m->nodes_ext[j].hostname &&
                m->nodes_ext[j].ports[CB_SVC_KV] == sv->port &&
                strcmp(m->nodes_ext[j].hostname, sv->host) == 0)
                ne = &m->nodes_ext[j];
        if (!ne || !ne->ports[CB_SVC_KV_SSL]) {
            if (err && nerr)
                snprintf(err, nerr, "TLS: the map gives data server %.100s no "
                         "kvSSL port (nodesExt)", sv->authority);
            return CB_CM_EINPUT;
        }
        sv->port = ne->ports[CB_SVC_KV_SSL];
        size_t n = strlen(sv->host) + 10; /* as make_server sized it */
        snprintf(sv->authority, n, sv->ipv6 ? "[%s]:%u" : "%s:%u", sv->host,
                 (unsigned)sv->port);
    }
    return CB_CM_OK;
}
