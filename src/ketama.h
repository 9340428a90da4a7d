/*
 * ketama.h - the ketama consistent-hashing continuum (PROTOCOL.md 5.6).
 *
 * 160 points per server: for h in 0..39, MD5("<authority>-<h>") gives four
 * little-endian 32-bit points.  A key goes to the server owning the first
 * point >= the first four bytes (LE) of MD5(key), wrapping around.
 *
 * The authority is "host:port" (libcouchbase, Couchbase memcached buckets);
 * libmemcached (pylibmc, ketama_weighted) writes just "host" when the port is
 * 11211 - cb_ketama_authority() builds either form.
 *
 * Ownership: cb_ketama owns its point array and digest context; release with
 * cb_ketama_free.
 */
#ifndef CBFFI_KETAMA_H
#define CBFFI_KETAMA_H

#include <stddef.h>
#include <stdint.h>

typedef struct cb_ketama_point {
    uint32_t hash;
    uint32_t server;
} cb_ketama_point;

typedef struct cb_ketama {
    cb_ketama_point *points;
    size_t npoints;
    void *md5;      /* EVP_MD_CTX *, reused for key hashing */
    void *md;       /* EVP_MD * (fetched once) */
} cb_ketama;

enum { CB_KETAMA_POINTS_PER_SERVER = 160 };

/* Write the hashing authority of host:port into buf (NUL-terminated);
   libmemcached_compat drops ":11211".  IPv6 hosts are bracketed. */
void cb_ketama_authority(char *buf, size_t nbuf, const char *host, int ipv6,
                         unsigned port, int libmemcached_compat);

/* Build the continuum for n servers named by their authorities; server i
   in the continuum is authorities[i].  Returns 0 or -1 (out of memory). */
int cb_ketama_build(cb_ketama *k, const char *const *authorities, size_t n);

/* MD5-based key hash (first 4 digest bytes, little-endian). */
uint32_t cb_ketama_hash(cb_ketama *k, const char *key, size_t nkey);

/* The server owning hash; -1 if the continuum is empty. */
int cb_ketama_lookup(const cb_ketama *k, uint32_t hash);

void cb_ketama_free(cb_ketama *k);

#endif
