/* ketama.c - ketama continuum (see ketama.h). */
#include "ketama.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cb_ketama_authority(char *buf, size_t nbuf, const char *host, int ipv6,
                         unsigned port, int libmemcached_compat)
{
    const char *fmt = ipv6 ? "[%s]:%u" : "%s:%u";
    if (libmemcached_compat && port == 11211)
        snprintf(buf, nbuf, ipv6 ? "[%s]" : "%s", host);
    else
        snprintf(buf, nbuf, fmt, host, port);
}

static int ensure_md5(cb_ketama *k)
{
    if (k->md5)
        return 0;
    k->md = EVP_MD_fetch(NULL, "MD5", NULL);
    k->md5 = EVP_MD_CTX_new();
    return k->md && k->md5 ? 0 : -1;
}

/* MD5 of p[0..n) followed by q[0..nq). */
static void md5_2(cb_ketama *k, const void *p, size_t n, const void *q,
                  size_t nq, unsigned char out[16])
{
    unsigned int len = 16;
    EVP_DigestInit_ex2(k->md5, k->md, NULL);
    EVP_DigestUpdate(k->md5, p, n);
    if (nq)
        EVP_DigestUpdate(k->md5, q, nq);
    EVP_DigestFinal_ex(k->md5, out, &len);
}

static void md5(cb_ketama *k, const void *p, size_t n, unsigned char out[16])
{
    md5_2(k, p, n, NULL, 0, out);
}

static uint32_t le32(const unsigned char *d)
{
    return (uint32_t)d[0] | ((uint32_t)d[1] << 8) | ((uint32_t)d[2] << 16) |
           ((uint32_t)d[3] << 24);
}

static int cmp_point(const void *a, const void *b)
{
    const cb_ketama_point *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->server < y->server ? -1 : x->server > y->server;
}

int cb_ketama_build(cb_ketama *k, const char *const *authorities, size_t n)
{
    if (ensure_md5(k) != 0)
        return -1;
    cb_ketama_point *pts = calloc(n * CB_KETAMA_POINTS_PER_SERVER + 1,
                                  sizeof(*pts));
    if (!pts)
        return -1;
    size_t np = 0;
    for (size_t s = 0; s < n; s++) {
        size_t na = strlen(authorities[s]);
        for (unsigned h = 0; h < CB_KETAMA_POINTS_PER_SERVER / 4; h++) {
            /* "<authority>-<h>"; an authority from a cluster map may be
               several KiB long: hashed in two parts, not formatted */
            char suffix[16];
            unsigned char d[16];
            int len = snprintf(suffix, sizeof(suffix), "-%u", h);
            md5_2(k, authorities[s], na, suffix, (size_t)len, d);
            for (int i = 0; i < 4; i++) {
                pts[np].hash = le32(d + 4 * i);
                pts[np].server = (uint32_t)s;
                np++;
            }
        }
    }
    qsort(pts, np, sizeof(*pts), cmp_point);
    free(k->points);
    k->points = pts;
    k->npoints = np;
    return 0;
}

uint32_t cb_ketama_hash(cb_ketama *k, const char *key, size_t nkey)
{
    unsigned char d[16];
    if (ensure_md5(k) != 0)
        return 0;
    md5(k, key, nkey, d);
    return le32(d);
}

int cb_ketama_lookup(const cb_ketama *k, uint32_t hash)
{
    if (k->npoints == 0)
        return -1;
    size_t lo = 0, hi = k->npoints;
    while (lo < hi) { /* first point >= hash */
        size_t mid = lo + (hi - lo) / 2;
        if (k->points[mid].hash < hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == k->npoints)
        lo = 0;
    return (int)k->points[lo].server;
}

void cb_ketama_free(cb_ketama *k)
{
    free(k->points);
    EVP_MD_CTX_free(k->md5);
    EVP_MD_free(k->md);
    memset(k, 0, sizeof(*k));
}
