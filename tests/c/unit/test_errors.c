/* Unit tests: errors.c */
#include "cmocka_inc.h"
#include "cbffi.h"
#include "errors.h"

#include <string.h>

static void every_code_has_text_and_categories(void **state)
{
    (void)state;
    assert_string_equal(cbffi_strerror(CBFFI_OK), "Success");
    assert_int_equal(cbffi_errflags(CBFFI_OK), 0);
    assert_non_null(strstr(cbffi_strerror(CBFFI_KEY_ENOENT), "not exist"));
    assert_true(cbffi_errflags(CBFFI_ETIMEDOUT) & CBFFI_ERRTYPE_TRANSIENT);
    assert_true(cbffi_errflags(CBFFI_ETIMEDOUT) & CBFFI_ERRTYPE_NETWORK);
    assert_true(cbffi_errflags(CBFFI_NETWORK_ERROR) & CBFFI_ERRTYPE_NETWORK);
    assert_true(cbffi_errflags(CBFFI_ETMPFAIL) & CBFFI_ERRTYPE_TRANSIENT);
    assert_true(cbffi_errflags(CBFFI_EMPTY_KEY) & CBFFI_ERRTYPE_INPUT);
    assert_true(cbffi_errflags(CBFFI_AUTH_ERROR) & CBFFI_ERRTYPE_FATAL);
    assert_true(cbffi_errflags(CBFFI_KEY_EEXISTS) & CBFFI_ERRTYPE_DATAOP);
    assert_string_equal(cbffi_strerror(-5), "Unknown error code");
    assert_string_equal(cbffi_strerror(0x7777), "Unknown error code");
    assert_int_equal(cbffi_errflags(0x7777), 0);
}

static void maps_server_statuses(void **state)
{
    (void)state;
    assert_int_equal(cb_status_to_rc(0x00, 0), CBFFI_OK);
    assert_int_equal(cb_status_to_rc(0x01, 0), CBFFI_KEY_ENOENT);
    assert_int_equal(cb_status_to_rc(0x02, 1), CBFFI_KEY_EEXISTS);
    assert_int_equal(cb_status_to_rc(0x03, 1), CBFFI_E2BIG);
    assert_int_equal(cb_status_to_rc(0x05, 1), CBFFI_NOT_STORED);
    assert_int_equal(cb_status_to_rc(0x06, 1), CBFFI_DELTA_BADVAL);
    assert_int_equal(cb_status_to_rc(0x86, 0), CBFFI_ETMPFAIL);
    assert_int_equal(cb_status_to_rc(0x81, 0), CBFFI_UNKNOWN_COMMAND);
    assert_int_equal(cb_status_to_rc(0x09, 1), CBFFI_KEY_EEXISTS); /* locked write */
    assert_int_equal(cb_status_to_rc(0x09, 0), CBFFI_ETMPFAIL);    /* locked read */
    assert_int_equal(cb_status_to_rc(0xbeef, 0), CBFFI_UNKNOWN_MEMCACHED_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_code_has_text_and_categories),
        cmocka_unit_test(maps_server_statuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
