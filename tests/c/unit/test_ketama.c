/* Unit tests: ketama.c - the continuum must reproduce libcouchbase's
   ketama_expected.json for memd_ketama_config.json point for point. */
#include "cmocka_inc.h"
#include "ketama.h"

#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { uint32_t hash; char host[64]; } expected_point;

/* Read the (hash, hostname) pairs of ketama_expected.json. */
static size_t load_expected(expected_point *out, size_t max)
{
    FILE *f = fopen(CBFFI_TESTDATA "/cluster-configs/ketama_expected.json", "r");
    assert_non_null(f);
    char line[256];
    size_t n = 0;
    while (fgets(line, sizeof line, f) && n < max) {
        unsigned long h;
        char host[64];
        if (sscanf(line, " \"hash\": %lu", &h) == 1)
            out[n].hash = (uint32_t)h;
        else if (sscanf(line, " \"hostname\": \"%63[^\"]\"", host) == 1)
            snprintf(out[n++].host, sizeof out[0].host, "%s", host);
    }
    fclose(f);
    return n;
}

static const char *servers[] = {
    /* memd_ketama_config.json's nodes, with $HOST = 192.168.1.104 */
    "192.168.1.103:11210", "192.168.1.101:11210", "192.168.1.102:11210",
    "192.168.1.104:11210",
};

static void reproduces_libcouchbase_continuum(void **state)
{
    (void)state;
    static expected_point want[700];
    size_t n = load_expected(want, 700);
    assert_int_equal(n, 640);
    cb_ketama k = {0};
    assert_int_equal(cb_ketama_build(&k, servers, 4), 0);
    assert_int_equal(k.npoints, 640);
    for (size_t i = 0; i < n; i++) {
        if (k.points[i].hash != want[i].hash ||
            strcmp(servers[k.points[i].server], want[i].host) != 0)
            fail_msg("point %zu: got %u %s, want %u %s", i, k.points[i].hash,
                     servers[k.points[i].server], want[i].hash, want[i].host);
    }
    cb_ketama_free(&k);
}

static void maps_keys_like_libcouchbase(void **state)
{
    (void)state;
    cb_ketama k = {0};
    assert_int_equal(cb_ketama_build(&k, servers, 4), 0);
    uint32_t h = cb_ketama_hash(&k, "Hello", 5);
    assert_int_equal(h, 1402542731u); /* PROTOCOL.md 5.6 */
    assert_string_equal(servers[cb_ketama_lookup(&k, h)], "192.168.1.102:11210");
    /* above the last point wraps to the first */
    assert_string_equal(servers[cb_ketama_lookup(&k, 4294967295u)],
                        "192.168.1.104:11210");
    cb_ketama_free(&k);
}

static void authority_forms(void **state)
{
    (void)state;
    char buf[80];
    cb_ketama_authority(buf, sizeof buf, "10.0.0.1", 0, 11211, 1);
    assert_string_equal(buf, "10.0.0.1"); /* libmemcached drops :11211 */
    cb_ketama_authority(buf, sizeof buf, "10.0.0.1", 0, 11211, 0);
    assert_string_equal(buf, "10.0.0.1:11211");
    cb_ketama_authority(buf, sizeof buf, "10.0.0.1", 0, 22122, 1);
    assert_string_equal(buf, "10.0.0.1:22122");
    cb_ketama_authority(buf, sizeof buf, "::1", 1, 11210, 0);
    assert_string_equal(buf, "[::1]:11210");
}

static void spreads_keys_over_servers(void **state)
{
    (void)state;
    cb_ketama k = {0};
    int count[4] = {0};
    char key[32];
    assert_int_equal(cb_ketama_build(&k, servers, 4), 0);
    for (int i = 0; i < 4000; i++) {
        int n = snprintf(key, sizeof key, "key:%d", i);
        count[cb_ketama_lookup(&k, cb_ketama_hash(&k, key, (size_t)n))]++;
    }
    for (int s = 0; s < 4; s++)
        assert_in_range(count[s], 600, 1400);
    cb_ketama_free(&k);
}

/* Authorities come from cluster maps too (memcached buckets over
   couchbase://), where a host name may have 4096 bytes.  The label
   "<authority>-<h>" was formatted into a 320-byte buffer and then hashed
   for its untruncated length: MD5 read past the buffer, and the points
   depended on stack garbage. */
static void long_authorities_hash_in_full(void **state)
{
    (void)state;
    char *auth = malloc(4200);
    memset(auth, 'a', 4190);
    strcpy(auth + 4190, ":11210");
    const char *names[1] = {auth};
    cb_ketama k;
    memset(&k, 0, sizeof k);
    assert_int_equal(cb_ketama_build(&k, names, 1), 0);
    assert_int_equal(k.npoints, 160);
    /* every point is one of the 4 words of MD5(auth "-" h), h = 0..39 */
    char *label = malloc(4300);
    for (unsigned h = 0; h < 40; h++) {
        unsigned char d[16];
        unsigned int len = 16;
        int n = snprintf(label, 4300, "%s-%u", auth, h);
        EVP_Digest(label, (size_t)n, d, &len, EVP_md5(), NULL);
        for (int i = 0; i < 4; i++) {
            uint32_t want = (uint32_t)d[4 * i] | (uint32_t)d[4 * i + 1] << 8 |
                            (uint32_t)d[4 * i + 2] << 16 | (uint32_t)d[4 * i + 3] << 24;
            int found = 0;
            for (size_t p = 0; p < k.npoints && !found; p++)
                found = k.points[p].hash == want;
            assert_true(found);
        }
    }
    free(label);
    free(auth);
    cb_ketama_free(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reproduces_libcouchbase_continuum),
        cmocka_unit_test(maps_keys_like_libcouchbase),
        cmocka_unit_test(authority_forms),
        cmocka_unit_test(spreads_keys_over_servers),
        cmocka_unit_test(long_authorities_hash_in_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
