/* connstr.c - connection string parsing (see connstr.h). */
#include "connstr.h"

#include "cbffi.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t nerr, int rc, const char *fmt, ...)
{
    if (err && nerr) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, nerr, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into a new string; NULL on bad escape (*bad = 1) or
   allocation failure (*bad = 0). */
static char *pct_decode(const char *s, size_t n, int *bad)
{
    char *out = malloc(n + 1);
    size_t j = 0;
    *bad = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[j++] = s[i];
            continue;
        }
        int hi = (i + 1 < n) ? hexval((unsigned char)s[i + 1]) : -1;
        int lo = (i + 2 < n) ? hexval((unsigned char)s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            *bad = 1;
            return NULL;
        }
        out[j++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[j] = '\0';
    return out;
}

/* ---- durations ---------------------------------------------------------- */

struct unit { const char *name; double us; };
static const struct unit units[] = {
    {"ns", 0.001}, {"us", 1}, {"\xc2\xb5s", 1}, {"ms", 1000},
    {"s", 1e6}, {"m", 60e6}, {"h", 3600e6},
};

/* Match the longest unit name at s; returns its length or 0. */
static size_t match_unit(const char *s, double *mult)
{
    size_t best = 0;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        size_t n = strlen(units[i].name);
        if (n > best && strncmp(s, units[i].name, n) == 0) {
            best = n;
            *mult = units[i].us;
        }
    }
    return best;
}

int cb_parse_duration(const char *s, uint64_t *usec)
{
    double total = 0;
    int parts = 0;
    if (!s || !*s)
        return -1;
    while (*s) {
        if (!isdigit((unsigned char)*s) && *s != '.')
            return -1;
        char *end;
        double v = strtod(s, &end);
        if (end == s || v < 0)
            return -1;
        s = end;
        double mult = 0;
        size_t ul = match_unit(s, &mult);
        if (ul == 0) {
            if (*s != '\0' || parts > 0)
                return -1; /* a bare number must be the whole string */
            mult = 1e6;
        }
        s += ul;
        total += v * mult;
        parts++;
    }
    if (!(total >= 1) || total > 24.0 * 3600e6)
        return -1;
    *usec = (uint64_t)total;
    return 0;
}

/* ---- hosts ---------------------------------------------------------------- */

static int valid_name_char(int c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_';
}

static int valid_v6_char(int c)
{
    return isxdigit(c) || c == ':' || c == '.' || c == '%';
}

static int parse_port(const char *s, size_t n, uint16_t *port, uint8_t *proto)
{
    size_t i = 0;
    unsigned long v = 0;
    if (n == 0)
        return -1;
    while (i < n && isdigit((unsigned char)s[i])) {
        v = v * 10 + (unsigned long)(s[i] - '0');
        if (v > 65535)
            return -1;
        i++;
    }
    if (i == 0 || v == 0)
        return -1;
    *proto = 0;
    if (i < n) {
        if (s[i] != '=')
            return -1;
        const char *p = s + i + 1;
        size_t pn = n - i - 1;
        if (pn == 4 && strncasecmp(p, "HTTP", 4) == 0)
            *proto = CB_SCHEME_HTTP;
        else if (pn == 3 && strncasecmp(p, "MCD", 3) == 0)
            *proto = CB_SCHEME_COUCHBASE;
        else if (pn == 8 && strncasecmp(p, "MCCOMPAT", 8) == 0)
            *proto = CB_SCHEME_MEMCACHED;
        else
            return -1;
    }
    *port = (uint16_t)v;
    return 0;
}

static uint16_t default_port(cb_scheme s)
{
    switch (s) {
    case CB_SCHEME_MEMCACHED: return 11211;
    case CB_SCHEME_COUCHBASE: return 11210;
    default: return 8091;
    }
}

/* Parse one host element s[0..n) into h. */
static int parse_host(const char *s, size_t n, cb_scheme scheme,
                      cb_hostport *h, char *err, size_t nerr)
{
    const char *hs = s, *ps = NULL;
    size_t hn = n, pn = 0;
    memset(h, 0, sizeof(*h));
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close)
            return fail(err, nerr, CBFFI_INVALID_HOST_FORMAT,
                        "IPv6 address '%.*s' lacks its closing ']'", (int)n, s);
        hs = s + 1;
        hn = (size_t)(close - hs);
        h->ipv6 = 1;
        size_t rest = n - (size_t)(close + 1 - s);
        if (rest > 0) {
            if (close[1] != ':')
                return fail(err, nerr, CBFFI_INVALID_HOST_FORMAT,
                            "unexpected text after ']' in '%.*s'", (int)n, s);
            ps = close + 2;
            pn = rest - 1;
        }
        const char *zone = memchr(hs, '%', hn);
        for (size_t i = 0; i < hn; i++)
            if (!valid_v6_char((unsigned char)hs[i]) &&
                !(zone && hs + i > zone && valid_name_char((unsigned char)hs[i])))
                return fail(err, nerr, CBFFI_INVALID_HOST_FORMAT,
                            "invalid character '%c' in IPv6 address '%.*s'",
                            hs[i], (int)hn, hs);
        if (hn == 0 || !memchr(hs, ':', hn))
            return fail(err, nerr, CBFFI_INVALID_HOST_FORMAT,
                        "'[%.*s]' is not an IPv6 address", (int)hn, hs);
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon) {
            if (memchr(colon + 1, ':', n - (size_t)(colon + 1 - s)))
                return fail(err, nerr, CBFFI_INVALID_HOST_FORMAT,
                            "host '%.*s' has several ':' (put IPv6 addresses "
                            "in brackets)", (int)n, s);
            hn = (size_t)(colon - s);
            ps = colon + 1;
            pn = n - hn - 1;
        }
        for (size_t i = 0; i < hn; i++)
            if (!valid_name_char((unsigned char)hs[i]))
                return fail(err, nerr, CBFFI_INVALID_HOST_FORMAT,
                            "invalid character '%c' in host '%.*s'",
                            hs[i], (int)hn, hs);
        if (hn == 0)
            return fail(err, nerr, CBFFI_INVALID_HOST_FORMAT,
                        "empty host name in '%.*s'", (int)n, s);
    }
    if (hn > 253)
        return fail(err, nerr, CBFFI_INVALID_HOST_FORMAT, "host name too long");
    h->port = default_port(scheme);
    if (ps) {
        if (parse_port(ps, pn, &h->port, &h->proto) != 0)
            return fail(err, nerr, CBFFI_INVALID_HOST_FORMAT,
                        "invalid port '%.*s' (expected 1-65535)", (int)pn, ps);
        h->port_given = 1;
    }
    h->host = strndup(hs, hn);
    if (!h->host)
        return CBFFI_CLIENT_ENOMEM;
    return CBFFI_OK;
}

static int parse_hosts(const char *s, size_t n, cb_connstr *cs, char *err,
                       size_t nerr)
{
    size_t count = 1;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ',' || s[i] == ';')
            count++;
    cs->hosts = calloc(count, sizeof(*cs->hosts));
    if (!cs->hosts)
        return CBFFI_CLIENT_ENOMEM;
    if (n == 0) {
        cs->hosts[0].host = strdup("localhost");
        cs->hosts[0].port = default_port(cs->scheme);
        cs->nhosts = 1;
        return cs->hosts[0].host ? CBFFI_OK : CBFFI_CLIENT_ENOMEM;
    }
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ',' && s[i] != ';')
            continue;
        if (i == start)
            return fail(err, nerr, CBFFI_INVALID_HOST_FORMAT,
                        "empty host in host list '%.*s'", (int)n, s);
        int bad;
        char *dec = pct_decode(s + start, i - start, &bad);
        if (!dec)
            return bad ? fail(err, nerr, CBFFI_INVALID_HOST_FORMAT,
                              "bad %%-escape in host '%.*s'",
                              (int)(i - start), s + start)
                       : CBFFI_CLIENT_ENOMEM;
        int rc = parse_host(dec, strlen(dec), cs->scheme,
                            &cs->hosts[cs->nhosts], err, nerr);
        free(dec);
        if (rc != CBFFI_OK)
            return rc;
        cs->nhosts++;
        start = i + 1;
    }
    return CBFFI_OK;
}

/* ---- options -------------------------------------------------------------- */

static int set_string(char **dst, const char *v)
{
    free(*dst);
    *dst = strdup(v);
    return *dst ? CBFFI_OK : CBFFI_CLIENT_ENOMEM;
}

static int set_option(cb_connstr *cs, const char *k, const char *v, char *err,
                      size_t nerr)
{
    uint64_t *dur = NULL;
    if (strcmp(k, "operation_timeout") == 0)
        dur = &cs->operation_timeout_us;
    else if (strcmp(k, "connect_timeout") == 0)
        dur = &cs->connect_timeout_us;
    else if (strcmp(k, "config_total_timeout") == 0)
        dur = &cs->config_total_timeout_us;
    else if (strcmp(k, "http_timeout") == 0)
        dur = &cs->http_timeout_us;
    else if (strcmp(k, "query_timeout") == 0 || strcmp(k, "n1ql_timeout") == 0)
        dur = &cs->query_timeout_us;
    if (dur) {
        if (cb_parse_duration(v, dur) != 0)
            return fail(err, nerr, CBFFI_EINVAL,
                        "option %s: '%s' is not a duration (use seconds like "
                        "'2.5' or units like '2.5s', '500ms')", k, v);
        return CBFFI_OK;
    }
    if (strcmp(k, "http_max_response") == 0) {
        char *end = NULL;
        unsigned long long n = strtoull(v, &end, 10);
        if (!*v || *end || n < 1024 || n > (1ull << 31))
            return fail(err, nerr, CBFFI_EINVAL,
                        "option %s: '%s' is not a byte count from 1024 to 2 GiB",
                        k, v);
        cs->http_max_response = n;
        return CBFFI_OK;
    }
    if (strcmp(k, "username") == 0 || strcmp(k, "user") == 0)
        return set_string(&cs->username, v);
    if (strcmp(k, "password") == 0 || strcmp(k, "pass") == 0)
        return set_string(&cs->password, v);
    if (strcmp(k, "sasl_mech_force") == 0)
        return set_string(&cs->sasl_mech_force, v);
    if (strcmp(k, "bootstrap_on") == 0) {
        if (strcmp(v, "all") == 0)
            cs->bootstrap_on = CB_BOOTSTRAP_ALL;
        else if (strcmp(v, "cccp") == 0)
            cs->bootstrap_on = CB_BOOTSTRAP_CCCP;
        else if (strcmp(v, "http") == 0)
            cs->bootstrap_on = CB_BOOTSTRAP_HTTP;
        else
            return fail(err, nerr, CBFFI_EINVAL,
                        "option bootstrap_on: '%s' is not one of cccp, http, "
                        "all", v);
        return CBFFI_OK;
    }
    return fail(err, nerr, CBFFI_EINVAL, "unknown option '%s'", k);
}

static int parse_query(const char *s, cb_connstr *cs, char *err, size_t nerr)
{
    while (*s) {
        const char *amp = strchr(s, '&');
        size_t n = amp ? (size_t)(amp - s) : strlen(s);
        const char *eq = memchr(s, '=', n);
        if (n == 0) {
            s += 1;
            continue;
        }
        if (!eq || eq == s)
            return fail(err, nerr, CBFFI_EINVAL,
                        "option '%.*s' is not of the form key=value", (int)n, s);
        int bad;
        char *k = pct_decode(s, (size_t)(eq - s), &bad);
        char *v = k ? pct_decode(eq + 1, n - (size_t)(eq + 1 - s), &bad) : NULL;
        int rc;
        if (!k || !v)
            rc = bad ? fail(err, nerr, CBFFI_EINVAL,
                            "bad %%-escape in option '%.*s'", (int)n, s)
                     : CBFFI_CLIENT_ENOMEM;
        else
            rc = set_option(cs, k, v, err, nerr);
        free(k);
        free(v);
        if (rc != CBFFI_OK)
            return rc;
        s += n + (amp ? 1 : 0);
    }
    return CBFFI_OK;
}

/* ---- top level ------------------------------------------------------------ */

struct scheme_name { const char *prefix; cb_scheme scheme; };
static const struct scheme_name schemes[] = {
    {"memcached://", CB_SCHEME_MEMCACHED},
    {"couchbase://", CB_SCHEME_COUCHBASE},
    {"http://", CB_SCHEME_HTTP},
};

static int parse_scheme(const char **s, cb_connstr *cs, char *err, size_t nerr)
{
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        size_t n = strlen(schemes[i].prefix);
        if (strncasecmp(*s, schemes[i].prefix, n) == 0) {
            cs->scheme = schemes[i].scheme;
            *s += n;
            return CBFFI_OK;
        }
    }
    const char *sep = strstr(*s, "://");
    if (sep)
        return fail(err, nerr, CBFFI_EINVAL,
                    "unsupported scheme '%.*s' (use memcached://, couchbase:// "
                    "or http://)", (int)(sep - *s), *s);
    return fail(err, nerr, CBFFI_EINVAL,
                "missing scheme: the connection string must start with "
                "memcached://, couchbase:// or http://");
}

static int parse_all(const char *s, cb_connstr *cs, char *err, size_t nerr)
{
    int rc = parse_scheme(&s, cs, err, nerr);
    if (rc != CBFFI_OK)
        return rc;
    size_t hn = strcspn(s, "/?");
    for (size_t i = 0; i < hn; i++)
        if (isspace((unsigned char)s[i]) || iscntrl((unsigned char)s[i]))
            return fail(err, nerr, CBFFI_INVALID_HOST_FORMAT,
                        "whitespace or control character in the host list");
    rc = parse_hosts(s, hn, cs, err, nerr);
    if (rc != CBFFI_OK)
        return rc;
    s += hn;
    if (*s == '/') {
        s++;
        size_t bn = strcspn(s, "?");
        int bad;
        cs->bucket = pct_decode(s, bn, &bad);
        if (!cs->bucket)
            return bad ? fail(err, nerr, CBFFI_EINVAL,
                              "bad %%-escape in the bucket name")
                       : CBFFI_CLIENT_ENOMEM;
        if (strchr(cs->bucket, '/'))
            return fail(err, nerr, CBFFI_EINVAL,
                        "bucket name '%s' contains '/'", cs->bucket);
        if (cs->scheme == CB_SCHEME_MEMCACHED && cs->bucket[0])
            return fail(err, nerr, CBFFI_EINVAL,
                        "memcached:// takes no bucket (got '/%s')", cs->bucket);
        s += bn;
    } else {
        cs->bucket = strdup("");
        if (!cs->bucket)
            return CBFFI_CLIENT_ENOMEM;
    }
    if (*s == '?')
        rc = parse_query(s + 1, cs, err, nerr);
    return rc;
}

int cb_connstr_parse(const char *s, cb_connstr *out, char *err, size_t nerr)
{
    memset(out, 0, sizeof(*out));
    if (err && nerr)
        err[0] = '\0';
    if (!s)
        return fail(err, nerr, CBFFI_EINVAL, "no connection string given");
    int rc = parse_all(s, out, err, nerr);
    if (rc == CBFFI_CLIENT_ENOMEM)
        fail(err, nerr, rc, "out of memory");
    if (rc != CBFFI_OK)
        cb_connstr_free(out);
    return rc;
}

void cb_connstr_free(cb_connstr *cs)
{
    for (size_t i = 0; i < cs->nhosts; i++)
        free(cs->hosts[i].host);
    free(cs->hosts);
    free(cs->bucket);
    free(cs->username);
    free(cs->password);
    free(cs->sasl_mech_force);
    memset(cs, 0, sizeof(*cs));
}

size_t cb_hostport_format(const cb_hostport *h, char *buf, size_t nbuf)
{
    int n = snprintf(buf, nbuf, h->ipv6 ? "[%s]:%u" : "%s:%u", h->host,
                     (unsigned)h->port);
    return n < 0 ? 0 : (size_t)n;
}
