/*
 * clustermap.h - Couchbase terse bucket configs (PROTOCOL.md 5.2 - 5.4).
 *
 * cb_clustermap_parse() reads one config (JSON, as GET_CLUSTER_CONFIG, a
 * NOT_MY_VBUCKET body or GET /pools/default/b/<bucket> return it) with json-c
 * into a plain struct, replacing every "$HOST" with the host the config came
 * from.  Hostile input is bounded (sizes, depth, counts, index ranges, port
 * ranges, string lengths) and rejected with a message naming the problem.
 *
 * Ownership: a cb_clustermap owns every string and array it points to
 * (malloc'd); release with cb_clustermap_free.  Nothing is borrowed from the
 * input buffer, which may be freed after parsing.
 */
#ifndef CBFFI_CLUSTERMAP_H
#define CBFFI_CLUSTERMAP_H

#include <stddef.h>
#include <stdint.h>

enum {
    CB_CM_MAX_BYTES = 16 * 1024 * 1024,  /* whole config */
    CB_CM_MAX_DEPTH = 32,                /* JSON nesting */
    CB_CM_MAX_SERVERS = 1024,            /* serverList, nodes, nodesExt */
    CB_CM_MAX_VBUCKETS = 65536,
    CB_CM_MAX_REPLICAS = 3,
    CB_CM_MAX_STRING = 4096              /* any string we keep */
};

/* Return codes. */
enum { CB_CM_OK = 0, CB_CM_EINPUT = -1, CB_CM_ENOMEM = -2 };

typedef enum { CB_CM_VBUCKET = 1, CB_CM_KETAMA = 2 } cb_cm_locator;

/* bucketCapabilities we act on. */
enum {
    CB_CM_CAP_DURABLE_WRITE = 1u << 0,
    CB_CM_CAP_XATTR = 1u << 1,
    CB_CM_CAP_CCCP = 1u << 2,
    CB_CM_CAP_COUCHAPI = 1u << 3,
    CB_CM_CAP_NODES_EXT = 1u << 4,
    CB_CM_CAP_COLLECTIONS = 1u << 5
};

/* clusterCapabilities we act on ("n1ql": [...]). */
enum {
    CB_CM_CCAP_N1QL_ENHANCED_PREPARED = 1u << 0   /* "enhancedPreparedStatements" */
};

/* nodesExt service ports (index into cb_cm_node_ext.ports). */
typedef enum {
    CB_SVC_KV, CB_SVC_KV_SSL, CB_SVC_MGMT, CB_SVC_MGMT_SSL,
    CB_SVC_CAPI, CB_SVC_CAPI_SSL, CB_SVC_N1QL, CB_SVC_N1QL_SSL,
    CB_SVC_FTS, CB_SVC_FTS_SSL, CB_SVC_INDEX_ADMIN, CB_SVC_INDEX_SCAN,
    CB_SVC_CBAS, CB_SVC_CBAS_SSL, CB_SVC_EVENTING, CB_SVC_EVENTING_SSL,
    CB_SVC__COUNT
} cb_cm_service;

/* A data (KV) server: "host:port" authority ("[v6]:port" for IPv6), and
   its parts (host without brackets). */
typedef struct cb_cm_server {
    char *authority;
    char *host;
    uint16_t port;
    uint8_t ipv6;
} cb_cm_server;

/* One "nodes" entry. */
typedef struct cb_cm_node {
    char *hostname;        /* "host:mgmtport" as given, $HOST replaced */
    uint16_t direct;       /* ports.direct, 0 if absent */
    char *couch_api_base;  /* NULL if absent */
} cb_cm_node;

/* One "nodesExt" entry. */
typedef struct cb_cm_node_ext {
    char *hostname;        /* without brackets; the source host if absent */
    uint8_t ipv6;
    uint8_t this_node;
    uint16_t ports[CB_SVC__COUNT];   /* 0 = service not on this node */
} cb_cm_node_ext;

typedef struct cb_clustermap {
    int64_t rev;           /* -1 if absent */
    int64_t rev_epoch;     /* -1 if absent (before 7.0) */
    char *name, *uuid, *bucket_type;   /* NULL if absent */
    cb_cm_locator locator;
    uint32_t caps;         /* CB_CM_CAP_* (bucketCapabilities) */
    uint32_t cluster_caps; /* CB_CM_CCAP_* (clusterCapabilities) */
    uint32_t nreplicas;    /* vbucket buckets; 0 for ketama */

    /* The data servers: serverList for vbucket buckets; for ketama
       (memcached) buckets, nodes' host + ports.direct, or nodesExt's kv
       ports when there are no nodes. */
    cb_cm_server *servers;
    uint32_t nservers;

    /* vbucket buckets: nvbuckets chains of (nreplicas + 1) server indexes,
       -1 = none; entry (vb, i) is vbmap[vb * (nreplicas + 1) + i]. */
    uint32_t nvbuckets;
    int16_t *vbmap;
    int16_t *vbmap_forward;   /* NULL unless rebalancing; same shape */

    cb_cm_node *nodes;
    uint32_t nnodes;
    cb_cm_node_ext *nodes_ext;
    uint32_t nnodes_ext;
} cb_clustermap;

/*
 * Parse json[0..n) into *out (overwritten; free it first if reused).
 * source_host is the host the config was fetched from, without brackets
 * (e.g. "10.0.0.1", "::1"); it replaces "$HOST" ("[::1]" for IPv6) and fills
 * nodesExt entries without a hostname.  It may be NULL only if the config
 * never needs it.  Returns CB_CM_OK, CB_CM_EINPUT with a reason in
 * err[0..nerr) (out zeroed), or CB_CM_ENOMEM.
 */
int cb_clustermap_parse(cb_clustermap *out, const char *json, size_t n,
                        const char *source_host, char *err, size_t nerr);

/* TLS: give every data server its nodesExt kvSSL port instead of its plain
   one (the nodesExt entry with the same host and kv port).  Returns
   CB_CM_OK, CB_CM_EINPUT (a server without kvSSL: why in err; m unchanged
   otherwise usable) or CB_CM_ENOMEM. */
int cb_clustermap_use_tls(cb_clustermap *m, char *err, size_t nerr);

/* Release everything *m owns and zero it. */
void cb_clustermap_free(cb_clustermap *m);

/* Server index of vbucket vb's chain entry i (0 = active), or -1. */
static inline int cb_clustermap_vb_server(const cb_clustermap *m,
                                          uint32_t vb, uint32_t i)
{
    if (!m->vbmap || vb >= m->nvbuckets || i > m->nreplicas)
        return -1;
    return m->vbmap[(size_t)vb * (m->nreplicas + 1) + i];
}

/* 1 if b is newer than a by (revEpoch, rev), else 0.  a may be NULL. */
int cb_clustermap_is_newer(const cb_clustermap *a, const cb_clustermap *b);

/* vbucket of a key: ((crc32(key) >> 16) & 0x7fff) % nvbuckets (PROTOCOL.md
   5.4); 0 if nvbuckets is 0. */
uint32_t cb_vbucket_of(const void *key, size_t nkey, uint32_t nvbuckets);

#endif
