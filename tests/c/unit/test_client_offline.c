/* Unit tests: client.c without a server - argument checks happen at
   scheduling time and send nothing; creation errors name the problem. */
#include "cmocka_inc.h"
#include "cbffi.h"

#include <string.h>

static cbffi_client *make(const char *cs)
{
    cbffi_client *c = NULL;
    char err[256];
    assert_int_equal(cbffi_client_create(&c, cs, NULL, NULL, err, sizeof err), CBFFI_OK);
    return c;
}

static void bad_keys_are_refused_and_nothing_is_pending(void **state)
{
    (void)state;
    cbffi_client *c = make("memcached://127.0.0.1:1");
    char big[251];
    memset(big, 'k', sizeof big);
    assert_int_equal(cbffi_get(c, "", 0, CBFFI_GET_PLAIN, 0, 0), CBFFI_EMPTY_KEY);
    assert_int_equal(cbffi_get(c, NULL, 0, CBFFI_GET_PLAIN, 0, 0), CBFFI_EMPTY_KEY);
    assert_int_equal(cbffi_get(c, big, 251, CBFFI_GET_PLAIN, 0, 0), CBFFI_EINVAL);
    assert_non_null(strstr(cbffi_client_last_error(c), "251"));
    assert_int_equal(cbffi_get(c, big, 65536 + 5, CBFFI_GET_PLAIN, 0, 0), CBFFI_EINVAL);
    assert_int_equal(cbffi_store(c, CBFFI_OP_SET, big, 251, "v", 1, 0, 0, 0, 0), CBFFI_EINVAL);
    assert_int_equal(cbffi_remove(c, "", 0, 0, 0), CBFFI_EMPTY_KEY);
    assert_int_equal(cbffi_counter(c, big, 300, 1, 0, 1, 0, 0), CBFFI_EINVAL);
    assert_int_equal(cbffi_touch(c, "", 0, 5, 0), CBFFI_EMPTY_KEY);
    assert_int_equal(cbffi_store(c, 99, "k", 1, "v", 1, 0, 0, 0, 0), CBFFI_EINVAL);
    assert_int_equal(cbffi_get(c, "k", 1, 42, 0, 0), CBFFI_EINVAL);
    assert_int_equal(cbffi_get(c, big, 250, CBFFI_GET_PLAIN, 0, 0), CBFFI_OK); /* 250 is fine */
    assert_int_equal(cbffi_pending(c), 1);
    cbffi_client_destroy(c);
}

static void memcached_refuses_couchbase_only_operations(void **state)
{
    (void)state;
    cbffi_client *c = make("memcached://127.0.0.1:1");
    assert_int_equal(cbffi_get(c, "k", 1, CBFFI_GET_LOCK, 5, 0), CBFFI_NOT_SUPPORTED);
    assert_int_equal(cbffi_unlock(c, "k", 1, 1, 0), CBFFI_NOT_SUPPORTED);
    assert_int_equal(cbffi_pending(c), 0);
    cbffi_client_destroy(c);
}

static void creation_errors_name_the_problem(void **state)
{
    (void)state;
    cbffi_client *c = (cbffi_client *)1;
    char err[256] = "";
    assert_int_equal(cbffi_client_create(&c, "memcached://h:99999", NULL, NULL, err, sizeof err),
                     CBFFI_INVALID_HOST_FORMAT);
    assert_null(c);
    assert_non_null(strstr(err, "99999"));
    assert_int_equal(cbffi_client_create(&c, NULL, NULL, NULL, err, sizeof err), CBFFI_EINVAL);
    assert_int_equal(cbffi_client_create(&c, "memcached://h", NULL, NULL, NULL, 0), CBFFI_OK);
    cbffi_client_destroy(c);
}

static void getters(void **state)
{
    (void)state;
    cbffi_client *c = make("memcached://a:1,[::1]:2?operation_timeout=750ms");
    assert_int_equal(cbffi_client_type_of(c), CBFFI_TYPE_MEMCACHED);
    assert_int_equal(cbffi_client_server_count(c), 2);
    assert_string_equal(cbffi_client_server_name(c, 1), "[::1]:2");
    assert_null(cbffi_client_server_name(c, 2));
    assert_string_equal(cbffi_client_bucket(c), "");
    assert_int_equal(cbffi_client_cluster_caps(c), 0);    /* no map on memcached:// */
    assert_true(cbffi_client_get_timeout(c, CBFFI_TIMEOUT_OPERATION) == 750000);
    assert_int_equal(cbffi_client_set_timeout(c, CBFFI_TIMEOUT_OPERATION, 0), CBFFI_EINVAL);
    assert_int_equal(cbffi_client_set_timeout(c, 77, 5), CBFFI_EINVAL);
    assert_int_equal(cbffi_client_set_timeout(c, CBFFI_TIMEOUT_CONNECT, 5), CBFFI_OK);
    assert_int_equal(cbffi_io_deadline(c), -1);
    int s = cbffi_client_server_for_key(c, "somekey", 7);
    assert_true(s == 0 || s == 1);
    assert_int_equal(cbffi_client_server_for_key(c, "", 0), -1);
    cbffi_client_destroy(c);
    cbffi_client_destroy(NULL);
}

static void connect_refused_is_a_typed_error(void **state)
{
    (void)state;
    cbffi_client *c = make("memcached://127.0.0.1:1");
    cbffi_result r[4];
    assert_int_equal(cbffi_connect(c, 9), CBFFI_OK);
    assert_int_equal(cbffi_get(c, "k", 1, CBFFI_GET_PLAIN, 0, 10), CBFFI_OK);
    size_t n = cbffi_wait(c, r, 4);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(r[i].rc, CBFFI_CONNECT_ERROR);
        assert_true(r[i].final);
        assert_true(cbffi_errflags(r[i].rc) & CBFFI_ERRTYPE_NETWORK);
    }
    assert_non_null(strstr(cbffi_client_last_error(c), "refused"));
    cbffi_client_destroy(c);
}

static void unknown_host_is_a_typed_error(void **state)
{
    (void)state;
    cbffi_client *c = make("memcached://no-such-host.invalid:11211");
    cbffi_result r[2];
    assert_int_equal(cbffi_get(c, "k", 1, CBFFI_GET_PLAIN, 0, 1), CBFFI_OK);
    assert_int_equal(cbffi_wait(c, r, 2), 1);
    assert_int_equal(r[0].rc, CBFFI_UNKNOWN_HOST);
    cbffi_client_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_keys_are_refused_and_nothing_is_pending),
        cmocka_unit_test(memcached_refuses_couchbase_only_operations),
        cmocka_unit_test(creation_errors_name_the_problem),
        cmocka_unit_test(getters),
        cmocka_unit_test(connect_refused_is_a_typed_error),
        cmocka_unit_test(unknown_host_is_a_typed_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
