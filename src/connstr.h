/*
 * connstr.h - connection strings.
 *
 *   memcached://host[:port][,host[:port]...][?key=value&...]
 *   couchbase://host[:port][,...][/bucket][?key=value&...]
 *   http://host[:port][,...][/bucket][?...]           (legacy REST bootstrap)
 *
 * Hosts are separated by ',' or ';'; IPv6 addresses go in brackets; hosts,
 * bucket and option values are percent-decoded.  Default ports: memcached
 * 11211, couchbase 11210, http 8091.  An empty host list means localhost.
 * Durations take seconds ("2.5") or Go-style units ("2.5s", "500ms", "1m30s").
 *
 * Ownership: cb_connstr_parse fills a cb_connstr whose strings and host array
 * are malloc'd and owned by it; release them with cb_connstr_free.
 */
#ifndef CBFFI_CONNSTR_H
#define CBFFI_CONNSTR_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    CB_SCHEME_MEMCACHED = 1,
    CB_SCHEME_COUCHBASE = 2,
    CB_SCHEME_HTTP = 3
} cb_scheme;

typedef enum {
    CB_BOOTSTRAP_ALL = 0,
    CB_BOOTSTRAP_CCCP = 1,
    CB_BOOTSTRAP_HTTP = 2
} cb_bootstrap;

typedef struct cb_hostport {
    char *host;      /* without brackets */
    uint16_t port;
    uint8_t ipv6;    /* written in brackets */
    uint8_t port_given;
    uint8_t proto;   /* 0 = the scheme's, else a cb_scheme from "=HTTP"/"=MCD" */
} cb_hostport;

typedef struct cb_connstr {
    cb_scheme scheme;
    cb_hostport *hosts;
    size_t nhosts;
    char *bucket;                   /* "" if none */
    char *username;                 /* NULL if not given */
    char *password;                 /* NULL if not given */
    char *sasl_mech_force;          /* NULL if not given */
    uint64_t operation_timeout_us;  /* 0 = default */
    uint64_t connect_timeout_us;    /* 0 = default */
    uint64_t config_total_timeout_us; /* 0 = default */
    uint64_t http_timeout_us;       /* 0 = default */
    uint64_t query_timeout_us;      /* 0 = default (query_timeout, n1ql_timeout) */
    uint64_t http_max_response;     /* bytes, 0 = default (http_max_response) */
    cb_bootstrap bootstrap_on;
} cb_connstr;

/*
 * Parse `s` into *out.  Returns CBFFI_OK, or CBFFI_EINVAL /
 * CBFFI_INVALID_HOST_FORMAT / CBFFI_CLIENT_ENOMEM with a message naming what
 * is wrong in err (NUL-terminated, truncated to nerr).  On failure *out holds
 * nothing to free.
 */
int cb_connstr_parse(const char *s, cb_connstr *out, char *err, size_t nerr);

/* Free what cb_connstr_parse allocated; zeroes *cs. */
void cb_connstr_free(cb_connstr *cs);

/* Parse a duration into microseconds.  Returns 0, or -1 if malformed, not
   positive, or over 24 hours. */
int cb_parse_duration(const char *s, uint64_t *usec);

/* Format "host:port" ("[v6]:port") into buf; returns the length. */
size_t cb_hostport_format(const cb_hostport *h, char *buf, size_t nbuf);

#endif
