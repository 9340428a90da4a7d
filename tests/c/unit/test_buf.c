/* Unit tests: buf.c */
#include "cmocka_inc.h"
#include "buf.h"

#include <string.h>

static void append_and_consume(void **state)
{
    (void)state;
    cb_buf b = {0};
    assert_int_equal(cb_buf_append(&b, "hello", 5), 0);
    assert_int_equal(cb_buf_append(&b, " world", 6), 0);
    assert_int_equal(cb_buf_size(&b), 11);
    cb_buf_consume(&b, 6);
    assert_memory_equal(cb_buf_head(&b), "world", 5);
    cb_buf_consume(&b, 5);
    assert_int_equal(cb_buf_size(&b), 0);
    assert_int_equal(b.off, 0); /* resets once drained */
    cb_buf_free(&b);
}

/* A buffer that was never allocated (an empty HTTP reply body, an empty
   config value) has no head: NULL, not NULL + 0 (found by fuzz_server). */
static void empty_buffer_head_is_null(void **state)
{
    (void)state;
    cb_buf b = {0};
    assert_null(cb_buf_head(&b));
    assert_int_equal(cb_buf_size(&b), 0);
}

static void grows_and_compacts(void **state)
{
    (void)state;
    cb_buf b = {0};
    char chunk[1000];
    memset(chunk, 'x', sizeof(chunk));
    for (int i = 0; i < 100; i++)
        assert_int_equal(cb_buf_append(&b, chunk, sizeof(chunk)), 0);
    assert_int_equal(cb_buf_size(&b), 100000);
    cb_buf_consume(&b, 99000);
    cb_buf_compact(&b);
    assert_int_equal(b.off, 0);
    assert_int_equal(cb_buf_size(&b), 1000);
    assert_memory_equal(cb_buf_head(&b), chunk, 1000);
    cb_buf_free(&b);
    assert_null(b.data);
}

static void reserve_reuses_consumed_space(void **state)
{
    (void)state;
    cb_buf b = {0};
    assert_int_equal(cb_buf_reserve(&b, 256), 0);
    size_t cap = b.cap;
    assert_int_equal(cb_buf_append(&b, "0123456789", 10), 0);
    b.len = cap; /* pretend it is full */
    memset(b.data, 'a', cap);
    cb_buf_consume(&b, cap - 8);
    assert_int_equal(cb_buf_reserve(&b, 16), 0);
    assert_int_equal(b.cap, cap); /* compacted instead of growing */
    assert_int_equal(cb_buf_size(&b), 8);
    cb_buf_free(&b);
}

static void big_endian_helpers(void **state)
{
    (void)state;
    char p[8];
    cb_put16(p, 0x1234);
    assert_int_equal((unsigned char)p[0], 0x12);
    assert_int_equal(cb_get16(p), 0x1234);
    cb_put32(p, 0xdeadbeef);
    assert_int_equal(cb_get32(p), 0xdeadbeef);
    cb_put64(p, 0x0102030405060708ull);
    assert_int_equal((unsigned char)p[0], 1);
    assert_int_equal((unsigned char)p[7], 8);
    assert_true(cb_get64(p) == 0x0102030405060708ull);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(append_and_consume),
        cmocka_unit_test(empty_buffer_head_is_null),
        cmocka_unit_test(grows_and_compacts),
        cmocka_unit_test(reserve_reuses_consumed_space),
        cmocka_unit_test(big_endian_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
