/*
 * cbffi.h - the public contract of libcbffi, a pipelined Couchbase / memcached
 * binary-protocol client.
 *
 * This header is written to be read by a C compiler AND by cffi's cdef():
 * a binding strips the #include lines, the include guard and the final #endif,
 * and hands the rest to cdef() as it is.  Therefore it holds only opaque
 * handles, fixed-width integers, plain structs, enums with explicit values and
 * function prototypes: no macros, no inline functions, no varargs, no
 * bitfields, no unions, no C++ guards.
 *
 * Model
 * -----
 *   1. cbffi_client_create() parses a connection string; nothing is sent yet.
 *   2. Operations are *scheduled* with plain calls (cbffi_get, cbffi_store,
 *      ...).  Scheduling validates the arguments, copies key and value into
 *      the client's own packet buffers (the caller's buffers may be reused at
 *      once) and returns 0, or a cbffi_rc and schedules nothing.
 *   3. The operations are driven to completion either by the built-in loop
 *      (cbffi_wait, blocking) or by a host event loop through the cbffi_io_*
 *      calls (non-blocking).  Both are built on the same code path.
 *   4. Every scheduled operation ends exactly once with a cbffi_result:
 *      success, a server status mapped to a cbffi_rc, or a client error
 *      (timeout, network, ...).  Results are *harvested* in batches into an
 *      array of plain structs owned by the caller.  No callbacks.
 *
 * Threads: a client is used by one thread at a time.  Different clients are
 * independent.  No call keeps a global lock; cbffi_strerror/cbffi_errflags
 * are pure.
 *
 * Ownership
 * ---------
 *   - cbffi_client: allocated by cbffi_client_create, owned by the caller,
 *     released by cbffi_client_destroy (which closes its sockets and drops
 *     every pending operation without producing results).
 *   - Keys, values, connection strings, credentials passed in: borrowed for
 *     the duration of the call only; the client keeps copies.
 *   - cbffi_result arrays: owned by the caller.  The key/value pointers inside
 *     a harvested result point into memory owned by the client; they stay
 *     valid until the next call to cbffi_harvest, cbffi_wait, any cbffi_io_*
 *     call or cbffi_client_destroy on the same client.  Copy what you keep.
 *   - Strings returned by cbffi_strerror: static.  Strings returned by
 *     cbffi_client_* getters: owned by the client, valid until it is destroyed.
 *   - cbffi_stream (N1QL / view rows as they arrive): owned by its client,
 *     released by cbffi_stream_close or cbffi_client_destroy; the results
 *     harvested from it point into its memory (see "Streams").
 */
#ifndef CBFFI_H
#define CBFFI_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------ */
/* Status codes                                                             */
/* ------------------------------------------------------------------------ */

/*
 * Every function that can fail returns one of these, and every result carries
 * one.  Ranges:
 *   0            success
 *   0x01..0x7f   the libcouchbase 2.x codes, same numbers and meanings, so that
 *                the couchbase 2.x Python exceptions keep their .rc values
 *   0x100..      cbffi's own codes (none needed yet)
 * cbffi_errflags() gives each code its category flags (cbffi_errtype).
 */
typedef enum cbffi_rc {
    CBFFI_OK = 0x00,
    CBFFI_AUTH_CONTINUE = 0x01,
    CBFFI_AUTH_ERROR = 0x02,          /* wrong credentials / no access */
    CBFFI_DELTA_BADVAL = 0x03,        /* counter on a non-numeric value */
    CBFFI_E2BIG = 0x04,               /* value too large for the server */
    CBFFI_EBUSY = 0x05,               /* server busy */
    CBFFI_EINTERNAL = 0x06,           /* internal error (a bug) */
    CBFFI_EINVAL = 0x07,              /* invalid argument */
    CBFFI_ENOMEM = 0x08,              /* server out of memory */
    CBFFI_ERANGE = 0x09,
    CBFFI_ERROR = 0x0a,               /* generic error */
    CBFFI_ETMPFAIL = 0x0b,            /* temporary failure on the server */
    CBFFI_KEY_EEXISTS = 0x0c,         /* key exists / CAS mismatch */
    CBFFI_KEY_ENOENT = 0x0d,          /* key not found */
    CBFFI_NETWORK_ERROR = 0x10,       /* connection lost while in flight */
    CBFFI_NOT_MY_VBUCKET = 0x11,
    CBFFI_NOT_STORED = 0x12,          /* append/prepend on a missing key */
    CBFFI_NOT_SUPPORTED = 0x13,       /* operation not supported here */
    CBFFI_UNKNOWN_COMMAND = 0x14,     /* server does not know the opcode */
    CBFFI_UNKNOWN_HOST = 0x15,        /* host name could not be resolved */
    CBFFI_PROTOCOL_ERROR = 0x16,      /* the server sent malformed data */
    CBFFI_ETIMEDOUT = 0x17,           /* no answer within the timeout */
    CBFFI_CONNECT_ERROR = 0x18,       /* could not connect */
    CBFFI_BUCKET_ENOENT = 0x19,       /* bucket does not exist */
    CBFFI_CLIENT_ENOMEM = 0x1a,       /* client allocation failed */
    CBFFI_CLIENT_ENOCONF = 0x1b,      /* not connected/bootstrapped yet */
    CBFFI_EBADHANDLE = 0x1c,          /* client closed or unusable */
    CBFFI_INVALID_HOST_FORMAT = 0x1f, /* bad host in a connection string */
    CBFFI_DURABILITY_ETOOMANY = 0x21, /* more replicas asked than exist */
    CBFFI_DUPLICATE_COMMANDS = 0x22,
    CBFFI_NO_MATCHING_SERVER = 0x23,  /* no server owns the key now */
    CBFFI_SASLMECH_UNAVAILABLE = 0x28,
    CBFFI_ECONNREFUSED = 0x2c,
    CBFFI_ESOCKSHUTDOWN = 0x2d,
    CBFFI_ECONNRESET = 0x2e,
    CBFFI_EMPTY_KEY = 0x35,           /* empty key */
    CBFFI_SSL_ERROR = 0x36,           /* TLS failed: a handshake failure, a
                                         server that does not speak TLS, an
                                         unreadable CA file */
    CBFFI_SSL_CANTVERIFY = 0x37,      /* TLS: the server's certificate (its
                                         chain or its name) cannot be
                                         verified */
    CBFFI_UNKNOWN_MEMCACHED_ERROR = 0x3d, /* a server status with no mapping */
    CBFFI_HTTP_ERROR = 0x3b,          /* an HTTP service answered a non-2xx
                                         status (cbffi_result.status) */
    CBFFI_MUTATION_LOST = 0x3e,
    /* sub-document (libcouchbase 2.x numbers; server statuses 0xc0..0xcc) */
    CBFFI_SUBDOC_PATH_ENOENT = 0x3f,      /* the path does not exist */
    CBFFI_SUBDOC_PATH_MISMATCH = 0x40,    /* the path contradicts the document */
    CBFFI_SUBDOC_PATH_EINVAL = 0x41,      /* the path does not parse */
    CBFFI_SUBDOC_PATH_E2BIG = 0x42,       /* the path is too long / deep */
    CBFFI_SUBDOC_DOC_E2DEEP = 0x43,       /* the document is too deep */
    CBFFI_SUBDOC_VALUE_CANTINSERT = 0x44, /* the value cannot go there */
    CBFFI_SUBDOC_DOC_NOTJSON = 0x45,      /* the document is not JSON */
    CBFFI_SUBDOC_NUM_ERANGE = 0x46,       /* the number is out of range */
    CBFFI_SUBDOC_BAD_DELTA = 0x47,        /* invalid counter delta */
    CBFFI_SUBDOC_PATH_EEXISTS = 0x48,     /* the path exists already */
    CBFFI_SUBDOC_MULTI_FAILURE = 0x49,    /* one or more specs failed */
    CBFFI_SUBDOC_VALUE_E2DEEP = 0x4a,     /* the value would be too deep */
    CBFFI_EMPTY_PATH = 0x4c,              /* a path is required */
    CBFFI_UNKNOWN_SDCMD = 0x4d,           /* not a sub-document command here */
    CBFFI_ENO_COMMANDS = 0x4e,            /* no specs given */
    CBFFI_RC_MAX = 0x100
} cbffi_rc;

/* Category flags of a status code (same bits as libcouchbase's errtypes). */
typedef enum cbffi_errtype {
    CBFFI_ERRTYPE_INPUT = 0x01,     /* the caller's input was wrong */
    CBFFI_ERRTYPE_NETWORK = 0x02,   /* network or connection problem */
    CBFFI_ERRTYPE_FATAL = 0x04,     /* the client needs reconfiguring */
    CBFFI_ERRTYPE_TRANSIENT = 0x08, /* retrying later may succeed */
    CBFFI_ERRTYPE_DATAOP = 0x10,    /* a data outcome (not found, exists...) */
    CBFFI_ERRTYPE_INTERNAL = 0x20,
    CBFFI_ERRTYPE_SRVLOAD = 0x80,   /* the server is overloaded */
    CBFFI_ERRTYPE_SRVGEN = 0x100    /* the code came from the server */
} cbffi_errtype;

/* A short, static, human-readable description of rc.  Never NULL. */
const char *cbffi_strerror(int rc);

/* The cbffi_errtype bits of rc; 0 for CBFFI_OK and unknown codes. */
uint32_t cbffi_errflags(int rc);

/* ------------------------------------------------------------------------ */
/* Operations and results                                                   */
/* ------------------------------------------------------------------------ */

/* What an operation was; reported in cbffi_result.op. */
typedef enum cbffi_op {
    CBFFI_OP_GET = 1,
    CBFFI_OP_SET = 2,       /* upsert */
    CBFFI_OP_ADD = 3,       /* insert */
    CBFFI_OP_REPLACE = 4,
    CBFFI_OP_APPEND = 5,
    CBFFI_OP_PREPEND = 6,
    CBFFI_OP_REMOVE = 7,
    CBFFI_OP_COUNTER = 8,
    CBFFI_OP_TOUCH = 9,
    CBFFI_OP_UNLOCK = 10,
    CBFFI_OP_STATS = 11,
    CBFFI_OP_VERSION = 12,
    CBFFI_OP_FLUSH = 13,
    CBFFI_OP_NOOP = 14,
    CBFFI_OP_CONNECT = 15,
    CBFFI_OP_GET_REPLICA = 16,  /* Couchbase: read a replica copy */
    CBFFI_OP_OBSERVE = 17,      /* Couchbase: where and how a key is stored */
    CBFFI_OP_ENDURE = 18,       /* Couchbase: wait until persisted/replicated */
    CBFFI_OP_LOOKUP_IN = 19,    /* Couchbase: sub-document lookups */
    CBFFI_OP_MUTATE_IN = 20,    /* Couchbase: sub-document mutations */
    CBFFI_OP_QUERY = 21,        /* Couchbase: a N1QL request (cbffi_query) */
    CBFFI_OP_VIEW = 22          /* Couchbase: a view or design-document
                                   request (cbffi_view_request) */
} cbffi_op;

/* OBSERVE key states, reported in cbffi_result.flags (PROTOCOL.md 2.2). */
typedef enum cbffi_observe_state {
    CBFFI_OBS_FOUND = 0x00,             /* in memory, not persisted yet */
    CBFFI_OBS_PERSISTED = 0x01,         /* in memory and on disk */
    CBFFI_OBS_NOT_FOUND = 0x80,         /* absent (a delete is persisted) */
    CBFFI_OBS_LOGICALLY_DELETED = 0x81  /* deleted in memory, not on disk */
} cbffi_observe_state;

/* How cbffi_get reads. */
typedef enum cbffi_get_mode {
    CBFFI_GET_PLAIN = 0,    /* GET */
    CBFFI_GET_TOUCH = 1,    /* GAT: read and set the expiry to exptime */
    CBFFI_GET_LOCK = 2      /* GET_LOCKED for exptime seconds (Couchbase) */
} cbffi_get_mode;

/*
 * One finished operation (or one part of a multi-part one).
 *
 * key/value point into client-owned memory, valid until the next
 * cbffi_harvest / cbffi_wait / cbffi_io_* / cbffi_client_destroy call on the
 * same client.  They are NULL when nkey/nvalue is 0.
 */
typedef struct cbffi_result {
    uint64_t cookie;        /* the caller's tag, as given when scheduling */
    uint64_t cas;           /* item CAS after the operation (0 if none) */
    uint64_t u64;           /* counter: the new value */
    const char *key;        /* STATS: stat name; otherwise NULL */
    const char *value;      /* GET: item value; STATS: stat value;
                               VERSION: version string; on a server error:
                               the server's error text, if it sent one */
    uint32_t nkey;
    uint32_t nvalue;
    uint32_t flags;         /* GET: the item's flags */
    int32_t rc;             /* cbffi_rc */
    uint16_t status;        /* the raw server status (0 if no reply);
                               QUERY, VIEW: the HTTP status */
    uint8_t op;             /* cbffi_op */
    uint8_t datatype;       /* the reply's datatype byte */
    int16_t server;         /* index of the server involved, -1 if none */
    uint8_t final;          /* 1 on the last result of this operation.
                               Single-key operations produce one result
                               with final = 1.  STATS, VERSION, FLUSH and NOOP
                               go to every server: one result per stat /
                               per server with final = 0, then one summary
                               result with final = 1, key = NULL and rc = the
                               first error met (or CBFFI_OK).  OBSERVE: one
                               result per node that answered (final = 0,
                               flags = cbffi_observe_state, cas = the node's
                               CAS, u64 = persist-time estimate << 32 |
                               replicate-time estimate, in ms), then the
                               summary (rc = the active node's failure, if
                               any). */
    uint8_t replica;        /* OBSERVE / GET_REPLICA: 0 = the active copy,
                               i = the i-th replica (1-based) */
    /* The mutation token (couchbase:// vbucket buckets, when the server
       sent it: MUTATION_SEQNO is always negotiated): on a successful
       SET/ADD/REPLACE/APPEND/PREPEND/REMOVE/COUNTER/MUTATE_IN (also with
       persist_to / replicate_to), the key's vbucket, that vbucket's uuid
       and the mutation's sequence number.  seqno = 0: no token (every other
       op, failures, memcached:// and memcached buckets; vbucket and vbuuid
       are 0 then too).  Sequence numbers grow per vbucket (while its uuid
       stays the same). */
    uint16_t vbucket;
    uint8_t reserved[2];
    uint64_t vbuuid;
    uint64_t seqno;
} cbffi_result;

/* ------------------------------------------------------------------------ */
/* Client                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct cbffi_client cbffi_client;

/* Which kind of cluster a client talks to. */
typedef enum cbffi_client_type {
    CBFFI_TYPE_MEMCACHED = 1,   /* memcached:// : ketama over the hosts */
    CBFFI_TYPE_COUCHBASE = 2    /* couchbase:// : vbuckets from the cluster map */
} cbffi_client_type;

/* Timeouts that cbffi_client_set_timeout / _get_timeout address. */
typedef enum cbffi_timeout_kind {
    CBFFI_TIMEOUT_OPERATION = 1,  /* per operation; default 2.5 s */
    CBFFI_TIMEOUT_CONNECT = 2,    /* per connection attempt, including the
                                     handshake; default 2 s */
    CBFFI_TIMEOUT_BOOTSTRAP = 3,  /* couchbase://: getting the first cluster
                                     map (config_total_timeout); default 5 s */
    CBFFI_TIMEOUT_DURABILITY = 4, /* persist_to / replicate_to polling after
                                     a mutation; default 5 s */
    CBFFI_TIMEOUT_DURABILITY_INTERVAL = 5, /* between OBSERVE rounds;
                                              default 10 ms */
    CBFFI_TIMEOUT_HTTP = 6,       /* a REST request that is an operation
                                     (cbffi_flush of a couchbase:// bucket)
                                     (http_timeout); default 75 s, as
                                     libcouchbase's */
    CBFFI_TIMEOUT_QUERY = 7,      /* a N1QL request (cbffi_query), from
                                     scheduling to the whole response
                                     (query_timeout, or 2.x's n1ql_timeout);
                                     default 75 s, as libcouchbase's */
    CBFFI_TIMEOUT_CONFIG_POLL = 8, /* couchbase://: between config polls
                                     (GET_CLUSTER_CONFIG on one data
                                     connection, run by the host loop's
                                     deadline / tick) (config_poll_interval);
                                     default 2.5 s, as libcouchbase's; 0
                                     turns polling off, otherwise at least
                                     50 ms */
    CBFFI_TIMEOUT_VIEW = 9        /* a view / design-document request
                                     (cbffi_view_request), likewise
                                     (views_timeout or view_timeout);
                                     default 75 s, as libcouchbase's */
} cbffi_timeout_kind;

/*
 * Create a client for `connstr` (see docs; e.g.
 * "memcached://host1:11211,[::1]:11212?operation_timeout=500ms").
 *
 * TLS: "couchbases://" (default KV port 11207, REST 18091; the map's
 * kvSSL / mgmtSSL / n1qlSSL ports), or ssl=on on any scheme
 * ("memcached://h:11211?ssl=on&truststorepath=ca.pem").  The servers'
 * certificates are verified against truststorepath= (or certpath=, the
 * libcouchbase 2.x name), else the system's trust store, and must name the
 * host (or IP address) connected to; ssl=no_verify skips every check
 * (UNSAFE: anyone on the path can pose as the server).  TLS failures end
 * connections (and the operations waiting on them) with CBFFI_SSL_ERROR or
 * CBFFI_SSL_CANTVERIFY; a TLS handshake that does not finish within the
 * connect timeout with CBFFI_ETIMEDOUT.
 * username/password may be NULL.  Nothing is connected yet.  On
 * couchbase:// the username defaults to the bucket name (classic
 * credentials).  On memcached:// a username turns on SASL on every
 * connection (SCRAM if the server offers it, else PLAIN: memcached's SASL);
 * without one, no SASL is attempted.
 *
 * On success returns CBFFI_OK and stores a new client in *out (owned by the
 * caller, free it with cbffi_client_destroy).  On failure returns
 * CBFFI_EINVAL, CBFFI_INVALID_HOST_FORMAT, CBFFI_NOT_SUPPORTED,
 * CBFFI_SSL_ERROR (the CA file cannot be loaded) or CBFFI_CLIENT_ENOMEM, leaves *out NULL, and writes a NUL-terminated message
 * naming what is wrong into errbuf (errbuf may be NULL; nerrbuf is its size).
 */
int cbffi_client_create(cbffi_client **out, const char *connstr,
                        const char *username, const char *password,
                        char *errbuf, size_t nerrbuf);

/* Close every socket and free the client.  Pending operations are dropped
   silently.  NULL is accepted. */
void cbffi_client_destroy(cbffi_client *client);

/*
 * Schedule connecting to the cluster; completes as one result with
 * op = CBFFI_OP_CONNECT.  Returns 0 or a cbffi_rc.
 *   memcached://: connects to every server; rc is CBFFI_OK if at least one
 *   server accepted, else the first failure (CBFFI_CONNECT_ERROR,
 *   CBFFI_ECONNREFUSED, CBFFI_UNKNOWN_HOST, CBFFI_ETIMEDOUT).  Operations
 *   do not need it: a server is connected on first use and reconnected
 *   after a failure.
 *   couchbase://: bootstraps: connects to the connection string's hosts in
 *   turn, negotiates (HELLO, SASL SCRAM-SHA512 > 256 > 1, or the mechanism
 *   forced with sasl_mech_force; SELECT_BUCKET) and fetches the cluster map
 *   (GET_CLUSTER_CONFIG), then opens a connection to every data node.  rc:
 *   CBFFI_OK, CBFFI_AUTH_ERROR (wrong credentials),
 *   CBFFI_BUCKET_ENOENT (no such bucket, or no access to it),
 *   CBFFI_SASLMECH_UNAVAILABLE, CBFFI_CONNECT_ERROR / CBFFI_UNKNOWN_HOST
 *   (no host reachable), CBFFI_ETIMEDOUT (CBFFI_TIMEOUT_BOOTSTRAP passed),
 *   CBFFI_PROTOCOL_ERROR (a malformed cluster map).  Operations scheduled
 *   before the map is known wait for it (and bootstrap on their own if
 *   cbffi_connect was not called); they fail with the bootstrap's rc.
 */
int cbffi_connect(cbffi_client *client, uint64_t cookie);

/* Set / get a timeout in microseconds.  Set applies to operations scheduled
   afterwards.  Returns 0 or CBFFI_EINVAL (unknown kind, 0 us). */
int cbffi_client_set_timeout(cbffi_client *client, int kind, uint64_t usec);
uint64_t cbffi_client_get_timeout(cbffi_client *client, int kind);

/* The cbffi_client_type of the client. */
int cbffi_client_type_of(cbffi_client *client);

/* The number of servers, and server i as "host:port" (IPv6 in brackets);
   NULL if i is out of range.  Owned by the client. */
int cbffi_client_server_count(cbffi_client *client);
const char *cbffi_client_server_name(cbffi_client *client, int i);

/* The bucket name ("" for memcached://).  Owned by the client. */
const char *cbffi_client_bucket(cbffi_client *client);

/* The index of the server `key` maps to now, or -1.  (Diagnostics, tests.) */
int cbffi_client_server_for_key(cbffi_client *client, const char *key,
                                size_t nkey);

/* couchbase:// vbucket buckets: the key's vbucket into *vbucket and its
   active server index into *server (-1 if none); returns 0, or
   CBFFI_NOT_SUPPORTED (no vbucket map: memcached:// or a memcached bucket)
   or CBFFI_CLIENT_ENOCONF (no map yet). */
int cbffi_client_vbucket(cbffi_client *client, const char *key, size_t nkey,
                         uint32_t *vbucket, int *server);

/* The bucket's configured replica count; -1 before a map is known or for
   buckets without vbuckets. */
int cbffi_client_replica_count(cbffi_client *client);

/* The revision of the cluster map in use; -1 if none. */
int64_t cbffi_client_config_rev(cbffi_client *client);

/* Cluster capabilities (flags), from the cluster map's clusterCapabilities. */
typedef enum cbffi_cluster_cap {
    /* "n1ql" lists "enhancedPreparedStatements" (Couchbase 6.5+): the query
       service takes PREPARE with "auto_execute" and executes by name alone */
    CBFFI_CLUSTER_CAP_N1QL_ENHANCED_PREPARED = 0x01
} cbffi_cluster_cap;

/* The cbffi_cluster_cap flags of the cluster map in use; 0 before a map is
   known and for memcached:// (no map). */
uint32_t cbffi_client_cluster_caps(cbffi_client *client);

/* A description of the last failure of a scheduling or create call on this
   client, or "" if none.  Owned by the client, valid until the next call. */
const char *cbffi_client_last_error(cbffi_client *client);

/* The number of scheduled operations that have not ended yet (streams'
   requests not counted: see cbffi_stream_wait). */
size_t cbffi_pending(cbffi_client *client);

/* ------------------------------------------------------------------------ */
/* Scheduling                                                               */
/* ------------------------------------------------------------------------ */
/*
 * Common rules for every scheduling call:
 *   - key must be 1..250 bytes: an empty key returns CBFFI_EMPTY_KEY, a
 *     longer one CBFFI_EINVAL; nothing is scheduled or sent.
 *   - value may be NULL when nvalue is 0; values over the client's maximum
 *     (20 MiB) return CBFFI_E2BIG.
 *   - exptime: seconds; up to 30 days relative, above that absolute Unix time
 *     (server semantics); 0 = no expiry.
 *   - cookie: any 64-bit tag; it comes back in cbffi_result.cookie.
 *   - Returns 0 when scheduled (the operation will produce its result), or a
 *     cbffi_rc when refused (no result will be produced).
 *   - Nothing is sent until cbffi_wait or cbffi_io_flush; everything
 *     scheduled until then for one server goes out in one write.
 */

/* GET / GAT (mode CBFFI_GET_TOUCH) / GET_LOCKED (mode CBFFI_GET_LOCK). */
int cbffi_get(cbffi_client *client, const char *key, size_t nkey,
              int mode, uint32_t exptime, uint64_t cookie);

/* SET, ADD, REPLACE, APPEND or PREPEND (op is a cbffi_op).  cas != 0 makes
   the write conditional.  flags and exptime are ignored for APPEND/PREPEND. */
int cbffi_store(cbffi_client *client, int op, const char *key, size_t nkey,
                const char *value, size_t nvalue, uint32_t flags,
                uint32_t exptime, uint64_t cas, uint64_t cookie);

/* DELETE, conditional on cas when cas != 0. */
int cbffi_remove(cbffi_client *client, const char *key, size_t nkey,
                 uint64_t cas, uint64_t cookie);

/* INCR (delta >= 0) or DECR (delta < 0, by |delta|).  If the key is missing
   and create != 0 it is created with `initial`; with create == 0 the result
   is CBFFI_KEY_ENOENT.  The new value is in cbffi_result.u64. */
int cbffi_counter(cbffi_client *client, const char *key, size_t nkey,
                  int64_t delta, uint64_t initial, int create,
                  uint32_t exptime, uint64_t cookie);

/* TOUCH: set the expiry of an existing key. */
int cbffi_touch(cbffi_client *client, const char *key, size_t nkey,
                uint32_t exptime, uint64_t cookie);

/* UNLOCK_KEY (Couchbase only: CBFFI_NOT_SUPPORTED on memcached://). */
int cbffi_unlock(cbffi_client *client, const char *key, size_t nkey,
                 uint64_t cas, uint64_t cookie);

/*
 * Couchbase-only operations (couchbase:// vbucket buckets; on memcached://
 * they return CBFFI_NOT_SUPPORTED and schedule nothing).
 */

/* GET_REPLICA: read a replica copy.  index >= 0: that replica (0 = the
   first); index < 0: the replicas in turn until one has the key.  The
   result has op = CBFFI_OP_GET_REPLICA and replica = the replica (1-based)
   that answered.  Returns CBFFI_NO_MATCHING_SERVER if the bucket has no such
   replica configured. */
int cbffi_get_replica(cbffi_client *client, const char *key, size_t nkey,
                      int index, uint64_t cookie);

/* OBSERVE the key on its active node and (unless master_only) on every
   replica: see cbffi_result for the per-node results. */
int cbffi_observe(cbffi_client *client, const char *key, size_t nkey,
                  int master_only, uint64_t cookie);

/*
 * Poll OBSERVE every interval_us (0: CBFFI_TIMEOUT_DURABILITY_INTERVAL)
 * until the key (at CAS `cas`, if non-zero) is persisted on persist_to
 * nodes (the active node counts) and in memory on replicate_to replicas,
 * or, with check_removed, until its deletion is.  -1 means every node of
 * the key's chain that exists now.  One result, op = CBFFI_OP_ENDURE:
 * CBFFI_OK; CBFFI_KEY_EEXISTS if the key changed (another CAS on the active
 * node); CBFFI_KEY_ENOENT if it is gone (not check_removed);
 * CBFFI_ETIMEDOUT after timeout_us (0: CBFFI_TIMEOUT_DURABILITY).
 * Returns CBFFI_DURABILITY_ETOOMANY when more nodes are asked for than the
 * bucket has (replicas + 1 to persist, replicas to replicate to).
 */
int cbffi_endure(cbffi_client *client, const char *key, size_t nkey,
                 uint64_t cas, int persist_to, int replicate_to,
                 int check_removed, uint64_t timeout_us, uint64_t interval_us,
                 uint64_t cookie);

/* cbffi_store / cbffi_remove followed, once the mutation succeeded, by
   cbffi_endure's polling with the mutation's CAS (persist_to/replicate_to
   as there; 0 and 0 make them plain cbffi_store / cbffi_remove).  One
   result: the mutation's (cas set) with rc = the mutation's failure or the
   durability outcome. */
int cbffi_store_durable(cbffi_client *client, int op, const char *key,
                        size_t nkey, const char *value, size_t nvalue,
                        uint32_t flags, uint32_t exptime, uint64_t cas,
                        int persist_to, int replicate_to, uint64_t cookie);
int cbffi_remove_durable(cbffi_client *client, const char *key, size_t nkey,
                         uint64_t cas, int persist_to, int replicate_to,
                         uint64_t cookie);

/*
 * Sub-document operations (couchbase:// vbucket buckets; docs/couchbase.md).
 *
 * One LOOKUP_IN or MUTATE_IN op carries 1..16 specs, each a command
 * (cbffi_sdcmd), path flags (cbffi_sdspec_flags), a path and, for the
 * mutations that take one, a JSON value (array commands: one value or a
 * comma-separated list of them; counters: the delta as JSON text).
 */
typedef enum cbffi_sdcmd {
    CBFFI_SDCMD_GET_DOC = 0x00,     /* lookup: the whole document; empty path */
    CBFFI_SDCMD_SET_DOC = 0x01,     /* mutation: replace the whole body; empty path */
    CBFFI_SDCMD_REMOVE_DOC = 0x04,  /* mutation: delete the document; empty path */
    CBFFI_SDCMD_GET = 0xc5,
    CBFFI_SDCMD_EXISTS = 0xc6,
    CBFFI_SDCMD_DICT_ADD = 0xc7,        /* insert */
    CBFFI_SDCMD_DICT_UPSERT = 0xc8,     /* upsert */
    CBFFI_SDCMD_REMOVE = 0xc9,
    CBFFI_SDCMD_REPLACE = 0xca,
    CBFFI_SDCMD_ARRAY_ADD_LAST = 0xcb,  /* array append */
    CBFFI_SDCMD_ARRAY_ADD_FIRST = 0xcc, /* array prepend */
    CBFFI_SDCMD_ARRAY_INSERT = 0xcd,
    CBFFI_SDCMD_ARRAY_ADD_UNIQUE = 0xce,
    CBFFI_SDCMD_COUNTER = 0xcf,
    CBFFI_SDCMD_GET_COUNT = 0xd2
} cbffi_sdcmd;

typedef enum cbffi_sdspec_flags {
    CBFFI_SDSPEC_MKDIR_P = 0x01,    /* create missing parents (mutations) */
    CBFFI_SDSPEC_XATTR = 0x04       /* the path names an extended attribute */
} cbffi_sdspec_flags;

typedef enum cbffi_sddoc_flags {
    CBFFI_SDDOC_MKDOC = 0x01,       /* create the document if missing (upsert_doc) */
    CBFFI_SDDOC_ADD = 0x02          /* create it, failing if it exists (insert_doc) */
} cbffi_sddoc_flags;

/*
 * Schedule a LOOKUP_IN (op = CBFFI_OP_LOOKUP_IN) or MUTATE_IN
 * (CBFFI_OP_MUTATE_IN) of n specs on `key`: spec i is cmds[i],
 * pathflags[i] (NULL: all 0), the next npaths[i] bytes of `paths` (all paths
 * back to back) and the next nvalues[i] bytes of `values` (NULL for a
 * lookup: no values).  Mutations take docflags (cbffi_sddoc_flags), exptime,
 * cas and persist_to / replicate_to (as cbffi_store_durable); lookups need
 * them all 0.  Refused before anything is sent: memcached:// or a memcached
 * bucket (CBFFI_NOT_SUPPORTED), n == 0 (CBFFI_ENO_COMMANDS) or > 16
 * (CBFFI_EINVAL), a command of the other kind (CBFFI_UNKNOWN_SDCMD), an
 * empty path where one is needed (CBFFI_EMPTY_PATH: every command but
 * GET_DOC, SET_DOC, REMOVE_DOC, EXISTS, GET_COUNT and the array pushes /
 * add-unique, which may work on the root), a path on a whole-document
 * command, a path over 1024 bytes, a missing value, a value on REMOVE, MKDOC
 * with ADD, ADD with a CAS (CBFFI_EINVAL).
 *
 * Lookups are retried after a lost connection like other reads; a mutation
 * that may have reached the server never is.  One result, op as given:
 *   rc CBFFI_OK: every spec succeeded; CBFFI_SUBDOC_MULTI_FAILURE: some
 *   failed (lookups: each says which; mutations: nothing was changed, the one
 *   entry names the first failing spec); otherwise a document-level error
 *   (CBFFI_KEY_ENOENT, CBFFI_KEY_EEXISTS for a CAS mismatch or ADD on an
 *   existing document, CBFFI_EINVAL, a timeout...).
 *   value: with CBFFI_OK or CBFFI_SUBDOC_MULTI_FAILURE, the server's
 *   multi-response body, already checked against the request: read it with
 *   cbffi_subdoc_parse.  cas: the document's CAS (new CAS for a mutation).
 */
int cbffi_subdoc(cbffi_client *client, int op, const char *key, size_t nkey,
                 size_t n, const uint8_t *cmds, const uint8_t *pathflags,
                 const char *paths, const uint32_t *npaths,
                 const char *values, const uint32_t *nvalues,
                 uint32_t docflags, uint32_t exptime, uint64_t cas,
                 int persist_to, int replicate_to, uint64_t cookie);

/* One spec's outcome, read from a sub-document result by cbffi_subdoc_parse.
   value points into the body given to it (lookups: GET's JSON, GET_COUNT's
   decimal count; mutations: a counter's new value). */
typedef struct cbffi_subdoc_entry {
    const char *value;      /* NULL when nvalue is 0 */
    uint32_t nvalue;
    int32_t rc;             /* cbffi_rc of status (CBFFI_OK on success) */
    uint16_t status;        /* the server's status for this spec */
    uint8_t index;          /* the spec it answers (0-based) */
    uint8_t reserved[1];
} cbffi_subdoc_entry;

/*
 * A pure function (no client): split the value of a LOOKUP_IN / MUTATE_IN
 * result of a request with n specs into entries, written to out[0..n) (out
 * may be NULL to only check).  `rc` is the result's rc.  Lookups give n
 * entries, in spec order.  Mutations: with CBFFI_OK one entry per spec that
 * returned a value (counters), in increasing index order, all successes;
 * with CBFFI_SUBDOC_MULTI_FAILURE exactly one, the first failing spec.
 * Returns the number of entries, or -1 if the body is not a well-formed
 * answer to n specs (a length past the end, too many or too few entries, an
 * index out of range or out of order, trailing bytes, n == 0 or n > 16).
 */
int cbffi_subdoc_parse(int op, int rc, const char *body, size_t nbody,
                       size_t n, cbffi_subdoc_entry *out);

/* STAT `group` (NULL/0 for the default group) on every server; VERSION,
   FLUSH and NOOP on every server.  See cbffi_result.final.  On a
   couchbase:// bucket, flush is one REST request (doFlush) with the
   CBFFI_TIMEOUT_HTTP timeout; with 16 REST requests in flight already it
   returns CBFFI_EBUSY (nothing scheduled). */
int cbffi_stats(cbffi_client *client, const char *group, size_t ngroup,
                uint64_t cookie);
int cbffi_version(cbffi_client *client, uint64_t cookie);
int cbffi_flush(cbffi_client *client, uint64_t cookie);
int cbffi_noop(cbffi_client *client, uint64_t cookie);

/*
 * N1QL: POST `body` (a JSON object: "statement", "args", "$name",
 * "scan_consistency", ... as the query service takes it; sent as it is,
 * Content-Type application/json) to /query/service on a node whose
 * nodesExt lists a "n1ql" port, the nodes taken in turn (round-robin), with
 * Basic auth of the client's username and password.  couchbase:// only.
 *
 * timeout_us bounds the whole request, from now to the last byte of the
 * response (0: CBFFI_TIMEOUT_QUERY).  The response is read whole, up to
 * the client's limit (connection-string option http_max_response, bytes;
 * default 64 MiB).  For large results see cbffi_query_stream: the rows one
 * by one as they arrive, in bounded memory.
 *
 * One result, op = CBFFI_OP_QUERY, server = -1:
 *   status = the HTTP status (0 if none arrived), value = the response
 *   body as received (not checked to be JSON);
 *   rc = CBFFI_OK for a 2xx status (a N1QL error can still be in the
 *   body's "errors"), CBFFI_AUTH_ERROR for 401/403, CBFFI_HTTP_ERROR for
 *   any other status (the body holds the server's "errors");
 *   or, with no response (value empty): CBFFI_ETIMEDOUT (the timeout
 *   passed: a silent or slow server), CBFFI_NETWORK_ERROR (the connection
 *   closed or failed before the whole response), CBFFI_PROTOCOL_ERROR
 *   (not HTTP), CBFFI_CONNECT_ERROR / CBFFI_UNKNOWN_HOST, CBFFI_E2BIG (the
 *   response is larger than http_max_response), CBFFI_NOT_SUPPORTED (the
 *   cluster map that arrived lists no node with the query service).
 * Before the first cluster map the request waits for it, as KV operations
 * do (and fails with the bootstrap's rc).
 *
 * Returns 0, or: CBFFI_NOT_SUPPORTED (memcached://; or the map is known
 * and no node runs the query service: cbffi_client_last_error says so),
 * CBFFI_EINVAL (empty body), CBFFI_E2BIG (body over 20 MiB), CBFFI_EBUSY
 * (64 N1QL requests in flight already), CBFFI_CLIENT_ENOMEM.
 */
int cbffi_query(cbffi_client *client, const char *body, size_t nbody,
                uint64_t timeout_us, uint64_t cookie);

/* HTTP methods of cbffi_view_request. */
typedef enum cbffi_http_method {
    CBFFI_HTTP_GET = 0,
    CBFFI_HTTP_POST = 1,
    CBFFI_HTTP_PUT = 2,
    CBFFI_HTTP_DELETE = 3
} cbffi_http_method;

/*
 * Views and design documents (PROTOCOL.md 8.1): one HTTP request `method`
 * (cbffi_http_method) to the bucket's view base on a node whose nodesExt
 * lists a "capi" port (with TLS "capiSSL", over https), or else to a
 * nodes[] couchApiBase (plain http only), the nodes taken in turn, with
 * Basic auth of the client's username and password.  couchbase:// only.
 *
 * The URL is <base>/<bucket><path>: `path` (npath bytes, not
 * NUL-terminated) starts with '/' and is sent as given, so the caller
 * percent-encodes it, e.g. "/_design/dev_d/_view/v?stale=false&limit=10"
 * or "/_design/dev_d".  It may not hold spaces, control bytes or '#'.
 * POST and PUT send `body` (nbody bytes, may be empty) as
 * application/json; GET and DELETE send none (body must then be empty).
 *
 * timeout_us bounds the whole request, from now to the last byte of the
 * response (0: CBFFI_TIMEOUT_VIEW).  The response is read whole, up to
 * http_max_response bytes (cbffi_view_stream: the rows as they arrive).
 *
 * One result, op = CBFFI_OP_VIEW, server = -1, exactly as cbffi_query's:
 * status = the HTTP status, value = the body as received; rc = CBFFI_OK for
 * 2xx, CBFFI_AUTH_ERROR for 401/403, CBFFI_HTTP_ERROR for any other status
 * (the body holds the server's {"error","reason"}); with no response the
 * transport's rc (CBFFI_ETIMEDOUT, CBFFI_NETWORK_ERROR, CBFFI_E2BIG, ...),
 * or CBFFI_NOT_SUPPORTED if the map that arrived lists no capi node.
 * Before the first cluster map the request waits for it.
 *
 * Returns 0, or: CBFFI_NOT_SUPPORTED (memcached://; or the map is known and
 * lists no view node), CBFFI_EINVAL (a bad method or path, a body with GET
 * or DELETE), CBFFI_E2BIG (path over 64 KiB or body over 20 MiB),
 * CBFFI_EBUSY (64 N1QL + view requests in flight already),
 * CBFFI_CLIENT_ENOMEM.
 */
int cbffi_view_request(cbffi_client *client, int method, const char *path,
                       size_t npath, const char *body, size_t nbody,
                       uint64_t timeout_us, uint64_t cookie);

/* ------------------------------------------------------------------------ */
/* Streams: N1QL and view rows as they arrive                               */
/* ------------------------------------------------------------------------ */
/*
 * cbffi_query and cbffi_view_request read the whole response before their
 * one result.  A stream is the same request in streaming mode: the core
 * splits the response body as it arrives (an incremental JSON scanner, no
 * buffering of the whole body) and delivers each element of the top-level
 * rows array - "results" for N1QL, "rows" for views - as its own result, the
 * row's JSON bytes exactly as sent, then one final result.  Memory is bounded
 * independently of the result size, and the first row can be harvested before
 * the last byte arrives.
 *
 * A stream's results are not in the client's result queue: they wait in the
 * stream, in order, and are harvested with cbffi_stream_harvest (or
 * cbffi_stream_wait), so that other operations run on the same client while a
 * stream is open (cbffi_get_now between rows included) never see them.  A
 * stream's request is not counted by cbffi_pending, and cbffi_wait does not
 * wait for it (both loops drive it, though: it goes on while they run).
 *
 * The results, op = CBFFI_OP_QUERY or CBFFI_OP_VIEW, cookie as given,
 * server = -1; `final` tells them apart:
 *   final = 0: a row.  rc = CBFFI_OK, status = the HTTP status (2xx),
 *     value = the row (a JSON value: object, array, string, number, true,
 *     false or null), u64 = its index (0-based).
 *   final = 1: the end, exactly once, after every row.  status = the HTTP
 *     status (0 if none arrived), u64 = the number of rows delivered, and rc
 *     and value as cbffi_query's / cbffi_view_request's one result, but for
 *     a 2xx response value is the "meta": the body with the rows array
 *     emptied ("results":[] / "rows":[]), the rest byte for byte (requestID,
 *     signature, errors, status, metrics / total_rows, errors...).  A
 *     non-2xx response is not split: value is its body as received, and
 *     there were no rows.  Errors that end a stream after some rows (those
 *     rows stay delivered, and the final says why it ended):
 *       CBFFI_PROTOCOL_ERROR  the body is not a JSON object (malformed
 *                             anywhere, cut short, nested deeper than 256
 *                             levels, bytes after it): the transfer stops at
 *                             the first bad byte;
 *       CBFFI_E2BIG           a row, or the meta, is larger than
 *                             http_max_response (in streaming mode that
 *                             option bounds each row and the meta, not the
 *                             whole response);
 *       CBFFI_ETIMEDOUT       the timeout passed (a server that went silent
 *                             mid-stream; a host that stopped harvesting);
 *       CBFFI_NETWORK_ERROR   the connection closed before the end;
 *       CBFFI_CLIENT_ENOMEM   no memory for the rows;
 *   with value empty for all of these.  cbffi_stream_error describes the
 *   final's rc.
 *
 * Backpressure: rows harvested from a stream leave it; rows not yet
 * harvested are held.  When the bytes held (each row's length plus 16 bytes
 * of bookkeeping) reach CBFFI_STREAM_HOLD_MAX, the core stops reading the
 * response (curl_easy_pause: the server is held back by TCP); once a harvest
 * brings them to half of it, reading resumes at the next cbffi_io_* /
 * cbffi_wait / cbffi_stream_wait call (cbffi_io_deadline is 0 until then, so
 * that a host loop makes that call).  So a stream holds at most about
 * CBFFI_STREAM_HOLD_MAX + one row + the meta, however long the result.  The
 * request's timeout still runs while it is paused.
 *
 * Ownership: a cbffi_stream belongs to the client it was started on.  The
 * caller releases it with cbffi_stream_close (before or after its end);
 * cbffi_client_destroy releases the ones left (the handles are invalid
 * then).  The key/value pointers of results harvested from a stream point
 * into memory the stream owns; they stay valid until the next
 * cbffi_stream_harvest / cbffi_stream_wait on that stream, the next
 * cbffi_io_* / cbffi_wait call on the client, or cbffi_stream_close.
 */
typedef struct cbffi_stream cbffi_stream;

typedef enum cbffi_stream_limits {
    CBFFI_STREAM_HOLD_MAX = 4194304   /* 4 MiB: bytes of rows held per stream
                                         before the transfer pauses */
} cbffi_stream_limits;

/*
 * Start a N1QL request in streaming mode: cbffi_query's request (same body,
 * timeout, node choice, waiting for the first map), its results delivered as
 * above.  On success returns 0 and stores the stream in *out (see
 * Ownership).  Returns, with *out NULL and nothing scheduled, cbffi_query's
 * codes (CBFFI_NOT_SUPPORTED, CBFFI_EINVAL, CBFFI_E2BIG, CBFFI_EBUSY,
 * CBFFI_CLIENT_ENOMEM), or CBFFI_EINVAL if out is NULL.
 */
int cbffi_query_stream(cbffi_client *client, const char *body, size_t nbody,
                       uint64_t timeout_us, uint64_t cookie,
                       cbffi_stream **out);

/* A view request in streaming mode: cbffi_view_request's request and
   return codes, the rows of a view response ("rows") delivered one by one.
   Any request may be streamed (a design document's body has no rows array:
   it is then all meta). */
int cbffi_view_stream(cbffi_client *client, int method, const char *path,
                      size_t npath, const char *body, size_t nbody,
                      uint64_t timeout_us, uint64_t cookie,
                      cbffi_stream **out);

/* Copy up to `max` of the stream's ready results into `out`, oldest first
   (rows, then the final); returns how many.  Never blocks, does no IO.
   Invalidates the pointers of results harvested from this stream before.
   After the final has been harvested it returns 0. */
size_t cbffi_stream_harvest(cbffi_client *client, cbffi_stream *stream,
                            cbffi_result *out, size_t max);

/* Run the built-in loop until the stream has a result ready (a row or the
   final), then cbffi_stream_harvest up to `max`.  Other operations go on
   meanwhile (their results wait in the client's queue).  Returns at once
   with what is ready, and 0 after the final has been harvested.  Blocks at
   most until the stream's timeout; a binding should release its interpreter
   lock around it. */
size_t cbffi_stream_wait(cbffi_client *client, cbffi_stream *stream,
                         cbffi_result *out, size_t max);

/* The number of results ready in the stream (rows, plus 1 for the final
   once it is ready and not yet harvested). */
size_t cbffi_stream_ready(const cbffi_stream *stream);

/* The bytes the stream holds for rows not yet harvested (what
   CBFFI_STREAM_HOLD_MAX bounds); and whether its transfer is paused for
   them now (1) or not (0). */
size_t cbffi_stream_held(const cbffi_stream *stream);
int cbffi_stream_paused(const cbffi_stream *stream);

/* Why the stream ended: a description of its final result's rc ("" while
   it runs or when it succeeded).  Owned by the stream. */
const char *cbffi_stream_error(const cbffi_stream *stream);

/* Release the stream.  If its request is still running it is cancelled
   (the connection closed; no result of it will ever be delivered).  The
   pointers of its harvested results die.  NULL is accepted. */
void cbffi_stream_close(cbffi_client *client, cbffi_stream *stream);

/* ------------------------------------------------------------------------ */
/* Driving: the built-in loop, and harvesting                               */
/* ------------------------------------------------------------------------ */

/*
 * Run the built-in loop until every scheduled operation has ended (each ends
 * by its own deadline at the latest), then harvest up to `max` results into
 * `out` (out may be NULL when max is 0).  Returns the number of results
 * written; call cbffi_harvest for the rest if more than max are ready.
 * Streams are not waited for (see cbffi_stream_wait); they make progress
 * meanwhile.  Blocks; a binding should release its interpreter lock around
 * it.
 */
size_t cbffi_wait(cbffi_client *client, cbffi_result *out, size_t max);

/* Copy up to `max` ready results into `out`, oldest first; returns how many.
   Invalidates the key/value pointers of previously harvested results. */
size_t cbffi_harvest(cbffi_client *client, cbffi_result *out, size_t max);

/* The number of results ready to harvest. */
size_t cbffi_ready(cbffi_client *client);

/* ------------------------------------------------------------------------ */
/* Driving: a host event loop (non-blocking)                                */
/* ------------------------------------------------------------------------ */
/*
 * For Twisted, asyncio, libuv, ...  The client never blocks in these calls.
 *   1. After scheduling, call cbffi_io_flush (sends what it can, starts
 *      connects).
 *   2. After every cbffi_io_* call, read the watch-set changes with
 *      cbffi_io_watches and update the host loop: an entry with events = 0
 *      means "stop watching fd".  The core has already closed that fd by
 *      then (and may reuse the number for a new socket in the same call): a
 *      loop that needs an open descriptor to unregister should register a
 *      dup() of each fd instead.  Besides sockets the set may hold one
 *      eventfd, the core's own (host name lookups and SCRAM key derivation
 *      run in threads and signal through it): watch it like the others.
 *   3. When the host sees fd readable/writable, call cbffi_io_event.
 *   4. Keep a timer for cbffi_io_deadline(); when it fires call
 *      cbffi_io_tick.  Read the deadline again after every cbffi_io_* call
 *      and every scheduling call: a reply can bring it forward (a retry after
 *      NOT_MY_VBUCKET, a config refresh, a reconnect).  It is a lower bound:
 *      a tick that finds nothing due is harmless.
 *   5. Harvest results (cbffi_ready / cbffi_harvest) after each call.
 */
typedef enum cbffi_io_events {
    CBFFI_IO_READ = 1,
    CBFFI_IO_WRITE = 2
} cbffi_io_events;

typedef struct cbffi_watch {
    int32_t fd;
    uint32_t events;        /* cbffi_io_events bits; 0 = stop watching */
} cbffi_watch;

/* Send what is queued and start pending connects.  Returns 0. */
int cbffi_io_flush(cbffi_client *client);

/* The host saw `events` on fd.  Unknown fds are ignored.  Returns 0. */
int cbffi_io_event(cbffi_client *client, int fd, uint32_t events);

/* Expire operations and connects whose deadline passed.  Returns 0. */
int cbffi_io_tick(cbffi_client *client);

/* Microseconds until the earliest deadline (0 if already passed), or -1 if
   nothing is pending. */
int64_t cbffi_io_deadline(cbffi_client *client);

/* Copy up to `max` watch-set changes since the last call into `out`; returns
   how many.  Changes not copied stay queued. */
size_t cbffi_io_watches(cbffi_client *client, cbffi_watch *out, size_t max);

/* ------------------------------------------------------------------------ */
/* Shortcuts for bindings                                                   */
/* ------------------------------------------------------------------------ */
/*
 * A binding pays for each call into C (argument conversion; releasing and
 * re-taking its interpreter lock): on CPython that is about as much as the
 * core's own work for an operation.  These do in one call what the calls
 * they name do in several, with the same rules and results.
 */

/*
 * A synchronous single-key operation: cbffi_get / cbffi_store with cookie 0,
 * then cbffi_wait(client, out, 1).  Returns out->rc.  If scheduling was
 * refused, returns that code with out->rc = the code and out->final = 0
 * (nothing was scheduled; cbffi_client_last_error says why, except for the
 * busy case below).  The client
 * must be idle (nothing pending, no result waiting to be harvested; open
 * streams do not count, their results wait apart), so that
 * the result harvested is this operation's: otherwise CBFFI_EINVAL, with
 * out->final = 0, and nothing is scheduled.  Blocks, like cbffi_wait.
 */
int cbffi_get_wait(cbffi_client *client, const char *key, size_t nkey,
                   int mode, uint32_t exptime, cbffi_result *out);
int cbffi_store_wait(cbffi_client *client, int op, const char *key,
                     size_t nkey, const char *value, size_t nvalue,
                     uint32_t flags, uint32_t exptime, uint64_t cas,
                     cbffi_result *out);

/* The commonest forms with fewer arguments (a binding pays for each one it
   converts: on CPython with cffi, about as much per argument as the whole
   C-side work of scheduling the operation): cbffi_get_wait with mode
   CBFFI_GET_PLAIN and exptime 0, and cbffi_store_wait with op CBFFI_OP_SET,
   exptime 0 and cas 0.  Same rules and results. */
int cbffi_get_now(cbffi_client *client, const char *key, size_t nkey,
                  cbffi_result *out);
int cbffi_set_now(cbffi_client *client, const char *key, size_t nkey,
                  const char *value, size_t nvalue, uint32_t flags,
                  cbffi_result *out);

/*
 * Schedule n operations in one call, as n calls of cbffi_get / cbffi_store
 * would, in order: key i is the next nkeys[i] bytes of `keys` (all keys
 * back to back), value i the next nvalues[i] bytes of `values`, flags[i] its
 * flags (flags may be NULL: 0), and its cookie is cookie0 + i.  The stores
 * have no CAS.  Returns 0 when all n are scheduled; otherwise the code that
 * refused operation *nscheduled: the ones before it are scheduled (and will
 * produce results), it and the ones after are not.  *nscheduled (if not
 * NULL) is set to the number scheduled.  Nothing is sent yet.
 */
int cbffi_get_multi(cbffi_client *client, const char *keys,
                    const uint32_t *nkeys, size_t n, int mode,
                    uint32_t exptime, uint64_t cookie0, size_t *nscheduled);
int cbffi_store_multi(cbffi_client *client, int op, const char *keys,
                      const uint32_t *nkeys, const char *values,
                      const uint32_t *nvalues, const uint32_t *flags,
                      size_t n, uint32_t exptime, uint64_t cookie0,
                      size_t *nscheduled);

/*
 * Harvesting into columns: cbffi_harvest, but each field of the results goes
 * to its own array (result i, oldest first, to entry i of every array) and
 * the values are left back to back in one client-owned region, so that a
 * binding converts a whole batch with a few bulk calls (an array into a
 * list, the region into one bytes object) instead of reading struct fields
 * one result at a time.
 *
 * The cbffi_columns struct and the arrays are owned by the caller: it sets
 * cap and the array pointers, each either NULL (that field is not wanted) or
 * an array of cap entries.  The call sets values, nvalues and nfailed.  Only
 * the fields below are reported (not key, u64, status, op, server, final,
 * replica, datatype): operations that need those (STATS, VERSION, OBSERVE,
 * counters...) are harvested with cbffi_harvest; both calls take from the
 * same queue.
 */
typedef struct cbffi_columns {
    size_t cap;             /* in: entries in each non-NULL array */
    uint64_t *cookie;       /* in: caller-owned arrays of cap entries, or NULL */
    uint64_t *cas;
    int32_t *rc;            /* cbffi_rc */
    uint32_t *flags;
    uint32_t *voff;         /* value i is the nvalue[i] bytes at values + voff[i] */
    uint32_t *nvalue;
    const char *values;     /* out: the values, client-owned, valid exactly as
                               long as harvested value pointers (see
                               Ownership); NULL when no result has a value */
    size_t nvalues;         /* out: bytes from values to the end of the last
                               value (copy them in one piece) */
    size_t nfailed;         /* out: results harvested with rc != CBFFI_OK */
    size_t nready;          /* out: results still ready after this call
                               (0: harvest again only after more IO) */
} cbffi_columns;

/* Copy up to out->cap ready results into out's arrays, oldest first;
   returns how many (call again for the rest).  Like cbffi_harvest it
   invalidates the pointers of results harvested before.  Stops early before
   a result whose value would end 4 GiB or more past out->values (never
   before the first: a reply body is at most 64 MiB). */
size_t cbffi_harvest_columns(cbffi_client *client, cbffi_columns *out);

/* cbffi_wait(client, NULL, 0) then cbffi_harvest_columns(client, out): run
   the built-in loop until every scheduled operation has ended, then harvest
   the first results into columns.  Blocks, like cbffi_wait. */
size_t cbffi_wait_columns(cbffi_client *client, cbffi_columns *out);

#endif
