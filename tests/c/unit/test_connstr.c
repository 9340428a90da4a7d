/* Unit tests: connstr.c */
#include "cmocka_inc.h"
#include "cbffi.h"
#include "connstr.h"

#include <string.h>

static void parses_defaults(void **state)
{
    (void)state;
    cb_connstr cs;
    char err[256];
    assert_int_equal(cb_connstr_parse("memcached://cache1", &cs, err, sizeof err), CBFFI_OK);
    assert_int_equal(cs.scheme, CB_SCHEME_MEMCACHED);
    assert_int_equal(cs.nhosts, 1);
    assert_string_equal(cs.hosts[0].host, "cache1");
    assert_int_equal(cs.hosts[0].port, 11211);
    assert_string_equal(cs.bucket, "");
    assert_true(cs.operation_timeout_us == 0);
    cb_connstr_free(&cs);
}

static void parses_host_lists_ipv6_and_options(void **state)
{
    (void)state;
    cb_connstr cs;
    char err[256];
    assert_int_equal(cb_connstr_parse(
        "memcached://a:1,[::1]:2;b.example.com,[fe80::1%25eth0]"
        "?operation_timeout=500ms&connect_timeout=2.5", &cs, err, sizeof err), CBFFI_OK);
    assert_int_equal(cs.nhosts, 4);
    assert_string_equal(cs.hosts[0].host, "a");
    assert_int_equal(cs.hosts[0].port, 1);
    assert_string_equal(cs.hosts[1].host, "::1");
    assert_true(cs.hosts[1].ipv6);
    assert_int_equal(cs.hosts[1].port, 2);
    assert_int_equal(cs.hosts[2].port, 11211);
    assert_string_equal(cs.hosts[3].host, "fe80::1%eth0");
    assert_true(cs.operation_timeout_us == 500000);
    assert_true(cs.connect_timeout_us == 2500000);
    char name[64];
    cb_hostport_format(&cs.hosts[1], name, sizeof name);
    assert_string_equal(name, "[::1]:2");
    cb_connstr_free(&cs);
}

static void parses_couchbase_bucket_and_credentials(void **state)
{
    (void)state;
    cb_connstr cs;
    char err[256];
    assert_int_equal(cb_connstr_parse(
        "couchbase://h1,h2:12000/my%20bucket?username=u&password=p%26q"
        "&bootstrap_on=cccp&config_total_timeout=1m30s", &cs, err, sizeof err), CBFFI_OK);
    assert_int_equal(cs.scheme, CB_SCHEME_COUCHBASE);
    assert_int_equal(cs.hosts[0].port, 11210);
    assert_int_equal(cs.hosts[1].port, 12000);
    assert_string_equal(cs.bucket, "my bucket");
    assert_string_equal(cs.username, "u");
    assert_string_equal(cs.password, "p&q");
    assert_int_equal(cs.bootstrap_on, CB_BOOTSTRAP_CCCP);
    assert_true(cs.config_total_timeout_us == 90000000ull);
    cb_connstr_free(&cs);
}

static void empty_host_list_means_localhost(void **state)
{
    (void)state;
    cb_connstr cs;
    char err[256];
    assert_int_equal(cb_connstr_parse("memcached://", &cs, err, sizeof err), CBFFI_OK);
    assert_string_equal(cs.hosts[0].host, "localhost");
    cb_connstr_free(&cs);
}

/* Each malformed string fails with the expected code and a message that
   names the problem. */
static void rejects_malformed_with_a_reason(void **state)
{
    (void)state;
    static const struct { const char *s; int rc; const char *needle; } bad[] = {
        {"cache1:11211", CBFFI_EINVAL, "missing scheme"},
        {"redis://h", CBFFI_EINVAL, "unsupported scheme 'redis'"},
        {"memcached://h:0", CBFFI_INVALID_HOST_FORMAT, "invalid port '0'"},
        {"memcached://h:65536", CBFFI_INVALID_HOST_FORMAT, "invalid port"},
        {"memcached://h:12x", CBFFI_INVALID_HOST_FORMAT, "invalid port '12x'"},
        {"memcached://a,,b", CBFFI_INVALID_HOST_FORMAT, "empty host"},
        {"memcached://::1", CBFFI_INVALID_HOST_FORMAT, "brackets"},
        {"memcached://[::1", CBFFI_INVALID_HOST_FORMAT, "closing ']'"},
        {"memcached://[zz]:1", CBFFI_INVALID_HOST_FORMAT, "invalid character 'z'"},
        {"memcached://ho st", CBFFI_INVALID_HOST_FORMAT, "whitespace"},
        {"memcached://h/bucket", CBFFI_EINVAL, "takes no bucket"},
        {"memcached://h?operation_timeout=fast", CBFFI_EINVAL, "'fast' is not a duration"},
        {"memcached://h?operation_timeout=-1s", CBFFI_EINVAL, "not a duration"},
        {"memcached://h?operation_timeout=0", CBFFI_EINVAL, "not a duration"},
        {"memcached://h?bogus=1", CBFFI_EINVAL, "unknown option 'bogus'"},
        {"memcached://h?novalue", CBFFI_EINVAL, "key=value"},
        {"couchbase://h?bootstrap_on=smoke", CBFFI_EINVAL, "cccp, http, all"},
        {"memcached://h%zz", CBFFI_INVALID_HOST_FORMAT, "%-escape"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cb_connstr cs;
        char err[256] = "";
        int rc = cb_connstr_parse(bad[i].s, &cs, err, sizeof err);
        if (rc != bad[i].rc || !strstr(err, bad[i].needle))
            fail_msg("'%s': rc %d err '%s' (want %d, '%s')", bad[i].s, rc, err,
                     bad[i].rc, bad[i].needle);
        assert_null(cs.hosts);
    }
}

static void durations(void **state)
{
    (void)state;
    static const struct { const char *s; uint64_t us; } ok[] = {
        {"2.5", 2500000}, {"2.5s", 2500000}, {"500ms", 500000}, {"1m", 60000000},
        {"1m30s", 90000000}, {"250us", 250}, {"1h", 3600000000ull}, {"7", 7000000},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t us = 0;
        assert_int_equal(cb_parse_duration(ok[i].s, &us), 0);
        assert_true(us == ok[i].us);
    }
    static const char *bad[] = {"", "s", "1x", "1.5.5", "-3", "25h", "10ns", "1s2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t us;
        if (cb_parse_duration(bad[i], &us) == 0)
            fail_msg("'%s' accepted as %llu us", bad[i], (unsigned long long)us);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_defaults),
        cmocka_unit_test(parses_host_lists_ipv6_and_options),
        cmocka_unit_test(parses_couchbase_bucket_and_credentials),
        cmocka_unit_test(empty_host_list_means_localhost),
        cmocka_unit_test(rejects_malformed_with_a_reason),
        cmocka_unit_test(durations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
