/* Unit tests: cbffi_harvest_columns without a server - results are queued
   directly (cb_result_push, as a reply would queue them) and harvested into
   columns, alone and mixed with cbffi_harvest. */
#include "cmocka_inc.h"
#include "cbffi.h"
#include "client_private.h"

#include <stdio.h>
#include <string.h>

#define CAP 8

typedef struct cols {
    cbffi_columns c;
    uint64_t cookie[CAP], cas[CAP];
    int32_t rc[CAP];
    uint32_t flags[CAP], voff[CAP], nvalue[CAP];
} cols;

static void cols_init(cols *k, size_t cap)
{
    memset(k, 0xee, sizeof *k); /* arrays: garbage until written */
    k->c = (cbffi_columns){.cap = cap, .cookie = k->cookie, .cas = k->cas,
                           .rc = k->rc, .flags = k->flags, .voff = k->voff,
                           .nvalue = k->nvalue};
}

static cbffi_client *make(void)
{
    cbffi_client *c = NULL;
    char err[256];
    assert_int_equal(cbffi_client_create(&c, "memcached://127.0.0.1:1", NULL, NULL,
                                         err, sizeof err), CBFFI_OK);
    return c;
}

/* Queue a GET-like result with an optional key (STATS-like) and value. */
static void push(cbffi_client *c, uint64_t cookie, int rc, uint64_t cas,
                 uint32_t flags, const char *key, const char *value)
{
    cbffi_result r;
    memset(&r, 0, sizeof r);
    r.cookie = cookie;
    r.rc = rc;
    r.cas = cas;
    r.flags = flags;
    r.op = CBFFI_OP_GET;
    r.final = 1;
    assert_non_null(cb_result_push(c, &r, key, key ? strlen(key) : 0,
                                   value, value ? strlen(value) : 0));
}

static void value_is(const cols *k, size_t i, const char *want)
{
    assert_int_equal(k->nvalue[i], strlen(want));
    assert_true(k->voff[i] + k->nvalue[i] <= k->c.nvalues);
    assert_memory_equal(k->c.values + k->voff[i], want, strlen(want));
}

static void empty_queue_gives_nothing(void **state)
{
    (void)state;
    cbffi_client *c = make();
    cols k;
    cols_init(&k, CAP);
    assert_int_equal(cbffi_harvest_columns(c, &k.c), 0);
    assert_null(k.c.values);
    assert_int_equal(k.c.nvalues, 0);
    assert_int_equal(k.c.nfailed, 0);
    assert_int_equal(k.c.nready, 0);
    push(c, 1, CBFFI_OK, 1, 0, NULL, "v");
    cols_init(&k, 0); /* cap 0 takes nothing */
    assert_int_equal(cbffi_harvest_columns(c, &k.c), 0);
    assert_int_equal(k.c.nready, 1);
    assert_int_equal(cbffi_ready(c), 1);
    cbffi_client_destroy(c);
}

static void fields_values_and_failures(void **state)
{
    (void)state;
    cbffi_client *c = make();
    push(c, 10, CBFFI_KEY_ENOENT, 0, 0, NULL, NULL);           /* no value first */
    push(c, 11, CBFFI_OK, 0xfedcba9876543210u, 0x03000002, NULL, "alpha");
    push(c, 12, CBFFI_OK, 7, 0x02000000, "statname", "{}");   /* a key between */
    push(c, 13, CBFFI_OK, 8, 0, NULL, NULL);                   /* empty value */
    push(c, 14, CBFFI_KEY_EEXISTS, 0, 0, NULL, "server text"); /* error with text */
    cols k;
    cols_init(&k, CAP);
    assert_int_equal(cbffi_harvest_columns(c, &k.c), 5);
    uint64_t want_cookie[] = {10, 11, 12, 13, 14};
    int32_t want_rc[] = {CBFFI_KEY_ENOENT, 0, 0, 0, CBFFI_KEY_EEXISTS};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(k.cookie[i], want_cookie[i]);
        assert_int_equal(k.rc[i], want_rc[i]);
    }
    assert_true(k.cas[1] == 0xfedcba9876543210u);
    assert_int_equal(k.cas[2], 7);
    assert_int_equal(k.flags[1], 0x03000002);
    assert_int_equal(k.flags[2], 0x02000000);
    assert_int_equal(k.nvalue[0], 0);
    assert_int_equal(k.nvalue[3], 0);
    value_is(&k, 1, "alpha");
    assert_int_equal(k.voff[1], 0); /* values start at the first value */
    value_is(&k, 2, "{}");
    value_is(&k, 4, "server text");
    assert_int_equal(k.c.nvalues, k.voff[4] + strlen("server text"));
    assert_int_equal(k.c.nfailed, 2);
    assert_int_equal(k.c.nready, 0);
    assert_int_equal(cbffi_ready(c), 0);
    cbffi_client_destroy(c);
}

static void small_batches_and_null_columns(void **state)
{
    (void)state;
    cbffi_client *c = make();
    char v[32];
    for (int i = 0; i < 7; i++) {
        snprintf(v, sizeof v, "value-%d", i);
        push(c, (uint64_t)i, CBFFI_OK, (uint64_t)i + 100, 0, NULL, v);
    }
    cols k;
    int seen = 0;
    for (;;) {
        cols_init(&k, 3);
        k.c.cas = NULL; /* not wanted: never written */
        k.c.flags = NULL;
        size_t n = cbffi_harvest_columns(c, &k.c);
        if (!n)
            break;
        assert_true(n <= 3);
        assert_int_equal(k.c.nready, 7 - seen - n);
        for (size_t i = 0; i < n; i++, seen++) {
            assert_int_equal(k.cookie[i], seen);
            snprintf(v, sizeof v, "value-%d", seen);
            value_is(&k, i, v);
        }
        assert_int_equal(k.voff[0], 0); /* each batch from its own first value */
        assert_true(k.cas[0] == 0xeeeeeeeeeeeeeeeeu);
        assert_true(k.flags[0] == 0xeeeeeeeeu);
    }
    assert_int_equal(seen, 7);
    cbffi_client_destroy(c);
}

static void mixes_with_cbffi_harvest(void **state)
{
    (void)state;
    cbffi_client *c = make();
    push(c, 1, CBFFI_OK, 1, 0, NULL, "one");
    push(c, 2, CBFFI_OK, 2, 0, NULL, "two");
    push(c, 3, CBFFI_OK, 3, 0, NULL, "three");
    cbffi_result r;
    assert_int_equal(cbffi_harvest(c, &r, 1), 1);
    assert_int_equal(r.cookie, 1);
    assert_memory_equal(r.value, "one", 3);
    cols k;
    cols_init(&k, CAP);
    assert_int_equal(cbffi_harvest_columns(c, &k.c), 2);
    assert_int_equal(k.c.nready, 0);
    assert_int_equal(k.cookie[0], 2);
    value_is(&k, 0, "two");
    value_is(&k, 1, "three");
    assert_int_equal(k.c.nvalues, 8);
    /* everything was taken: the next harvest releases the arena and starts
       from its beginning */
    push(c, 4, CBFFI_OK, 4, 0, NULL, "four");
    cols_init(&k, CAP);
    assert_int_equal(cbffi_harvest_columns(c, &k.c), 1);
    value_is(&k, 0, "four");
    assert_int_equal(cbffi_harvest(c, &r, 1), 0);
    assert_int_equal(c->rdata.len, 0); /* released by that harvest */
    cbffi_client_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_queue_gives_nothing),
        cmocka_unit_test(fields_values_and_failures),
        cmocka_unit_test(small_batches_and_null_columns),
        cmocka_unit_test(mixes_with_cbffi_harvest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
