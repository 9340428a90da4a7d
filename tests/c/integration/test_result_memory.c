/*
 * The result queue and its arena stay bounded: results harvested as they
 * come (the synchronous pattern: schedule one, wait, harvest one) must not
 * pile up in the client.  They did, because the queue was only reset inside
 * cbffi_harvest when nothing was left, and in that pattern the next result
 * was always pushed before the check (the queue grew by every result ever
 * received: 80 MB after 350k gets).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "client_private.h"
#include "servers.h"

#include <stdio.h>
#include <string.h>

static mc_server mc;

static cbffi_client *client(void)
{
    char cs[64], err[256];
    snprintf(cs, sizeof cs, "memcached://127.0.0.1:%d", mc.port);
    cbffi_client *c = NULL;
    assert_int_equal(cbffi_client_create(&c, cs, NULL, NULL, err, sizeof err), CBFFI_OK);
    return c;
}

static void sync_ops_keep_the_queue_small(void **state)
{
    (void)state;
    cbffi_client *c = client();
    cbffi_result r;
    char value[128];
    memset(value, 'v', sizeof value);
    for (int i = 0; i < 20000; i++) {
        if (i % 2 == 0) {
            assert_int_equal(cbffi_store(c, CBFFI_OP_SET, "rm:k", 4, value, sizeof value,
                                         0, 0, 0, 0), CBFFI_OK);
            assert_int_equal(cbffi_wait(c, &r, 1), 1);
        } else {
            assert_int_equal(cbffi_get_wait(c, "rm:k", 4, CBFFI_GET_PLAIN, 0, &r), CBFFI_OK);
            assert_int_equal(r.nvalue, sizeof value);
        }
        assert_int_equal(r.rc, CBFFI_OK);
    }
    /* a handful of records and one value's bytes, not 20000 of them */
    assert_true(c->res_cap <= 64);
    assert_true(c->rdata.cap <= 4096);
    cbffi_client_destroy(c);
}

static void batches_harvested_whole_keep_the_queue_small(void **state)
{
    (void)state;
    cbffi_client *c = client();
    cbffi_result r[100];
    char key[32];
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < 100; i++) {
            int n = snprintf(key, sizeof key, "rm:%d", i);
            assert_int_equal(cbffi_store(c, CBFFI_OP_SET, key, (size_t)n, "x", 1, 0, 0, 0,
                                         (uint64_t)i), CBFFI_OK);
        }
        assert_int_equal(cbffi_wait(c, r, 100), 100);
    }
    assert_true(c->res_cap <= 256);
    cbffi_client_destroy(c);
}

static int setup(void **state)
{
    (void)state;
    return mc_start(&mc);
}

static int teardown(void **state)
{
    (void)state;
    mc_kill_all();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sync_ops_keep_the_queue_small),
        cmocka_unit_test(batches_harvested_whole_keep_the_queue_small),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
