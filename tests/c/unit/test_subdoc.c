/* Unit tests: subdoc.c - the request encoding, the checks made before
   anything is sent, and cbffi_subdoc_parse against well-formed and hostile
   reply bodies. */
#include "cmocka_inc.h"
#include "client_private.h"

#include <string.h>

static cbffi_client *make(const char *cs)
{
    cbffi_client *c = NULL;
    char err[256];
    assert_int_equal(cbffi_client_create(&c, cs, NULL, NULL, err, sizeof err), CBFFI_OK);
    return c;
}

/* ---- cbffi_subdoc_parse ------------------------------------------------------ */

static void lookup_bodies(void **state)
{
    (void)state;
    /* (0, "\"a\""), (0xc0, ""), (0, "3") */
    static const char body[] = "\x00\x00\x00\x00\x00\x03\"a\""
                               "\x00\xc0\x00\x00\x00\x00"
                               "\x00\x00\x00\x00\x00\x01" "3";
    size_t n = sizeof body - 1;
    cbffi_subdoc_entry e[3];
    assert_int_equal(cbffi_subdoc_parse(CBFFI_OP_LOOKUP_IN, CBFFI_SUBDOC_MULTI_FAILURE, body, n, 3, e), 3);
    assert_int_equal(e[0].status, 0);
    assert_int_equal(e[0].rc, CBFFI_OK);
    assert_int_equal(e[0].nvalue, 3);
    assert_memory_equal(e[0].value, "\"a\"", 3);
    assert_int_equal(e[1].status, 0xc0);
    assert_int_equal(e[1].rc, CBFFI_SUBDOC_PATH_ENOENT);
    assert_null(e[1].value);
    assert_int_equal(e[2].index, 2);
    assert_memory_equal(e[2].value, "3", 1);
    /* only checking */
    assert_int_equal(cbffi_subdoc_parse(CBFFI_OP_LOOKUP_IN, CBFFI_SUBDOC_MULTI_FAILURE, body, n, 3, NULL), 3);
    /* an "all succeeded" reply with a failed entry, too few / too many
       entries, a cut body, trailing bytes */
    assert_int_equal(cbffi_subdoc_parse(CBFFI_OP_LOOKUP_IN, CBFFI_OK, body, n, 3, e), -1);
    assert_int_equal(cbffi_subdoc_parse(CBFFI_OP_LOOKUP_IN, CBFFI_SUBDOC_MULTI_FAILURE, body, n, 4, e), -1);
    assert_int_equal(cbffi_subdoc_parse(CBFFI_OP_LOOKUP_IN, CBFFI_SUBDOC_MULTI_FAILURE, body, n, 2, e), -1);
    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(cbffi_subdoc_parse(CBFFI_OP_LOOKUP_IN, CBFFI_SUBDOC_MULTI_FAILURE, body, cut, 3, e), -1);
    char longer[sizeof body + 1];
    memcpy(longer, body, n);
    longer[n] = 0;
    assert_int_equal(cbffi_subdoc_parse(CBFFI_OP_LOOKUP_IN, CBFFI_SUBDOC_MULTI_FAILURE, longer, n + 1, 3, e), -1);
    /* a value length far past the end */
    static const char huge[] = "\x00\x00\xff\xff\xff\xff" "x";
    assert_int_equal(cbffi_subdoc_parse(CBFFI_OP_LOOKUP_IN, CBFFI_OK, huge, 7, 1, e), -1);
    /* spec counts out of range, other ops, other rcs */
    assert_int_equal(cbffi_subdoc_parse(CBFFI_OP_LOOKUP_IN, CBFFI_OK, "", 0, 0, e), -1);
    assert_int_equal(cbffi_subdoc_parse(CBFFI_OP_LOOKUP_IN, CBFFI_OK, body, n, 17, NULL), -1);
    assert_int_equal(cbffi_subdoc_parse(CBFFI_OP_GET, CBFFI_OK, body, n, 3, e), -1);
    assert_int_equal(cbffi_subdoc_parse(CBFFI_OP_LOOKUP_IN, CBFFI_KEY_ENOENT, body, n, 3, e), -1);
    assert_int_equal(cbffi_subdoc_parse(CBFFI_OP_LOOKUP_IN, CBFFI_OK, NULL, 5, 1, e), -1);
}

static void mutation_bodies(void **state)
{
    (void)state;
    cbffi_subdoc_entry e[16];
    /* success: counters at 1 and 3 */
    static const char ok[] = "\x01\x00\x00\x00\x00\x00\x02" "42"
                             "\x03\x00\x00\x00\x00\x00\x01" "7";
    size_t n = sizeof ok - 1;
    assert_int_equal(cbffi_subdoc_parse(CBFFI_OP_MUTATE_IN, CBFFI_OK, ok, n, 4, e), 2);
    assert_int_equal(e[0].index, 1);
    assert_memory_equal(e[0].value, "42", 2);
    assert_int_equal(e[1].index, 3);
    assert_int_equal(cbffi_subdoc_parse(CBFFI_OP_MUTATE_IN, CBFFI_OK, "", 0, 4, e), 0);
    /* an index beyond the specs, out of order, repeated, a failed status */
    assert_int_equal(cbffi_subdoc_parse(CBFFI_OP_MUTATE_IN, CBFFI_OK, ok, n, 3, e), -1);
    static const char backwards[] = "\x03\x00\x00\x00\x00\x00\x00" "\x01\x00\x00\x00\x00\x00\x00";
    assert_int_equal(cbffi_subdoc_parse(CBFFI_OP_MUTATE_IN, CBFFI_OK, backwards, 14, 4, e), -1);
    static const char twice[] = "\x01\x00\x00\x00\x00\x00\x00" "\x01\x00\x00\x00\x00\x00\x00";
    assert_int_equal(cbffi_subdoc_parse(CBFFI_OP_MUTATE_IN, CBFFI_OK, twice, 14, 4, e), -1);
    static const char failed[] = "\x00\x00\xc0\x00\x00\x00\x00";
    assert_int_equal(cbffi_subdoc_parse(CBFFI_OP_MUTATE_IN, CBFFI_OK, failed, 7, 4, e), -1);
    for (size_t cut = 1; cut < n; cut++)     /* 9 ends the first entry: a valid body */
        assert_int_equal(cbffi_subdoc_parse(CBFFI_OP_MUTATE_IN, CBFFI_OK, ok, cut, 4, e),
                         cut == 9 ? 1 : -1);
    /* failure: exactly index + status */
    assert_int_equal(cbffi_subdoc_parse(CBFFI_OP_MUTATE_IN, CBFFI_SUBDOC_MULTI_FAILURE, "\x02\x00\xc9", 3, 4, e), 1);
    assert_int_equal(e[0].index, 2);
    assert_int_equal(e[0].status, 0xc9);
    assert_int_equal(e[0].rc, CBFFI_SUBDOC_PATH_EEXISTS);
    assert_int_equal(cbffi_subdoc_parse(CBFFI_OP_MUTATE_IN, CBFFI_SUBDOC_MULTI_FAILURE, "\x04\x00\xc9", 3, 4, e), -1);
    assert_int_equal(cbffi_subdoc_parse(CBFFI_OP_MUTATE_IN, CBFFI_SUBDOC_MULTI_FAILURE, "\x00\x00\x00", 3, 4, e), -1);
    assert_int_equal(cbffi_subdoc_parse(CBFFI_OP_MUTATE_IN, CBFFI_SUBDOC_MULTI_FAILURE, "\x00\x00\xc9\x00", 4, 4, e), -1);
    assert_int_equal(cbffi_subdoc_parse(CBFFI_OP_MUTATE_IN, CBFFI_SUBDOC_MULTI_FAILURE, "\x00\x00", 2, 4, e), -1);
}

/* ---- scheduling ------------------------------------------------------------------ */

static const uint8_t LCMDS[] = {CBFFI_SDCMD_GET, CBFFI_SDCMD_EXISTS, CBFFI_SDCMD_GET_COUNT};
static const uint32_t LPATHS[] = {1, 3, 0};

static void refusals(void **state)
{
    (void)state;
    cbffi_client *m = make("memcached://127.0.0.1:1");
    assert_int_equal(cbffi_subdoc(m, CBFFI_OP_LOOKUP_IN, "k", 1, 3, LCMDS, NULL, "abcd",
                                  LPATHS, NULL, NULL, 0, 0, 0, 0, 0, 0), CBFFI_NOT_SUPPORTED);
    cbffi_client_destroy(m);

    cbffi_client *c = make("couchbase://127.0.0.1:1/b");
    uint8_t cmds[17];
    uint32_t np[17];
    memset(cmds, CBFFI_SDCMD_GET, sizeof cmds);
    for (int i = 0; i < 17; i++)
        np[i] = 1;
    char paths[17];
    memset(paths, 'p', sizeof paths);
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_LOOKUP_IN, "", 0, 1, cmds, NULL, paths, np, NULL,
                                  NULL, 0, 0, 0, 0, 0, 0), CBFFI_EMPTY_KEY);
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_LOOKUP_IN, "k", 1, 0, cmds, NULL, paths, np, NULL,
                                  NULL, 0, 0, 0, 0, 0, 0), CBFFI_ENO_COMMANDS);
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_LOOKUP_IN, "k", 1, 17, cmds, NULL, paths, np, NULL,
                                  NULL, 0, 0, 0, 0, 0, 0), CBFFI_EINVAL);
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_GET, "k", 1, 1, cmds, NULL, paths, np, NULL,
                                  NULL, 0, 0, 0, 0, 0, 0), CBFFI_EINVAL);
    /* a mutation command in a lookup and back */
    uint8_t up = CBFFI_SDCMD_DICT_UPSERT, get = CBFFI_SDCMD_GET;
    uint32_t one = 1, zero = 0;
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_LOOKUP_IN, "k", 1, 1, &up, NULL, "p", &one, "1",
                                  &one, 0, 0, 0, 0, 0, 0), CBFFI_UNKNOWN_SDCMD);
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_MUTATE_IN, "k", 1, 1, &get, NULL, "p", &one, NULL,
                                  NULL, 0, 0, 0, 0, 0, 0), CBFFI_UNKNOWN_SDCMD);
    /* paths and values */
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_LOOKUP_IN, "k", 1, 1, &get, NULL, "", &zero, NULL,
                                  NULL, 0, 0, 0, 0, 0, 0), CBFFI_EMPTY_PATH);
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_MUTATE_IN, "k", 1, 1, &up, NULL, "", &zero, "1",
                                  &one, 0, 0, 0, 0, 0, 0), CBFFI_EMPTY_PATH);
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_MUTATE_IN, "k", 1, 1, &up, NULL, "p", &one, NULL,
                                  &zero, 0, 0, 0, 0, 0, 0), CBFFI_EINVAL);   /* no value */
    uint8_t rm = CBFFI_SDCMD_REMOVE, setdoc = CBFFI_SDCMD_SET_DOC;
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_MUTATE_IN, "k", 1, 1, &rm, NULL, "p", &one, "1",
                                  &one, 0, 0, 0, 0, 0, 0), CBFFI_EINVAL);   /* value on remove */
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_MUTATE_IN, "k", 1, 1, &setdoc, NULL, "p", &one, "1",
                                  &one, 0, 0, 0, 0, 0, 0), CBFFI_EINVAL);   /* path on a whole doc */
    static char longpath[1025];
    memset(longpath, 'x', sizeof longpath);
    uint32_t nlong = sizeof longpath;
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_LOOKUP_IN, "k", 1, 1, &get, NULL, longpath, &nlong,
                                  NULL, NULL, 0, 0, 0, 0, 0, 0), CBFFI_SUBDOC_PATH_E2BIG);
    uint8_t mkdir = CBFFI_SDSPEC_MKDIR_P, bad = 0x80;
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_LOOKUP_IN, "k", 1, 1, &get, &mkdir, "p", &one,
                                  NULL, NULL, 0, 0, 0, 0, 0, 0), CBFFI_EINVAL);
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_MUTATE_IN, "k", 1, 1, &up, &bad, "p", &one, "1",
                                  &one, 0, 0, 0, 0, 0, 0), CBFFI_EINVAL);
    /* document options */
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_LOOKUP_IN, "k", 1, 1, &get, NULL, "p", &one, NULL,
                                  NULL, 0, 0, 5, 0, 0, 0), CBFFI_EINVAL);   /* cas on a lookup */
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_MUTATE_IN, "k", 1, 1, &up, NULL, "p", &one, "1",
                                  &one, CBFFI_SDDOC_MKDOC | CBFFI_SDDOC_ADD, 0, 0, 0, 0, 0),
                     CBFFI_EINVAL);
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_MUTATE_IN, "k", 1, 1, &up, NULL, "p", &one, "1",
                                  &one, CBFFI_SDDOC_ADD, 0, 9, 0, 0, 0), CBFFI_EINVAL);
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_MUTATE_IN, "k", 1, 1, &up, NULL, "p", &one, "1",
                                  &one, 0x40, 0, 0, 0, 0, 0), CBFFI_EINVAL);
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_MUTATE_IN, "k", 1, 1, &up, NULL, "p", &one, "1",
                                  &one, 0, 0, 0, 1, 0, 0), CBFFI_CLIENT_ENOCONF); /* no map: no durability */
    assert_int_equal(cbffi_pending(c), 0);
    cbffi_client_destroy(c);
}

/* The packet kept by the op waiting for the cluster map. */
static const cb_buf *waiting_packet(cbffi_client *c)
{
    assert_non_null(c->waitq);
    return &c->waitq->pkt;
}

static void lookup_encoding(void **state)
{
    (void)state;
    cbffi_client *c = make("couchbase://127.0.0.1:1/b");
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_LOOKUP_IN, "key", 3, 3, LCMDS, NULL, "abcd", LPATHS,
                                  NULL, NULL, 0, 0, 0, 0, 0, 7), CBFFI_OK);
    assert_int_equal(cbffi_pending(c), 1);
    const cb_buf *p = waiting_packet(c);
    const char *d = cb_buf_head(p);
    static const char specs[] = "\xc5\x00\x00\x01" "a" "\xc6\x00\x00\x03" "bcd" "\xd2\x00\x00\x00";
    size_t nspecs = sizeof specs - 1;
    assert_int_equal(cb_buf_size(p), 24 + 3 + nspecs);
    assert_int_equal((uint8_t)d[0], 0x80);
    assert_int_equal((uint8_t)d[1], 0xd0);
    assert_int_equal(cb_get16(d + 2), 3);
    assert_int_equal((uint8_t)d[4], 0);                 /* no extras */
    assert_int_equal(cb_get32(d + 8), 3 + nspecs);
    assert_memory_equal(d + 24, "key", 3);
    assert_memory_equal(d + 27, specs, nspecs);
    cbffi_client_destroy(c);
}

static void mutation_encoding(void **state)
{
    (void)state;
    cbffi_client *c = make("couchbase://127.0.0.1:1/b");
    const uint8_t cmds[] = {CBFFI_SDCMD_DICT_UPSERT, CBFFI_SDCMD_REMOVE, CBFFI_SDCMD_COUNTER};
    const uint8_t fl[] = {CBFFI_SDSPEC_MKDIR_P, 0, 0};
    const uint32_t np[] = {3, 1, 1}, nv[] = {2, 0, 1};
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_MUTATE_IN, "k", 1, 3, cmds, fl, "a.bcd", np,
                                  "[]5", nv, CBFFI_SDDOC_MKDOC, 60, 0x1122, 0, 0, 7), CBFFI_OK);
    const cb_buf *p = waiting_packet(c);
    const char *d = cb_buf_head(p);
    static const char specs[] = "\xc8\x01\x00\x03\x00\x00\x00\x02" "a.b" "[]"
                                "\xc9\x00\x00\x01\x00\x00\x00\x00" "c"
                                "\xcf\x00\x00\x01\x00\x00\x00\x01" "d" "5";
    size_t nspecs = sizeof specs - 1;
    assert_int_equal((uint8_t)d[1], 0xd1);
    assert_int_equal((uint8_t)d[4], 5);                 /* expiry + doc flags */
    assert_int_equal(cb_get64(d + 16), 0x1122);
    assert_int_equal(cb_get32(d + 8), 5 + 1 + nspecs);
    assert_int_equal(cb_get32(d + 24), 60);
    assert_int_equal((uint8_t)d[28], CBFFI_SDDOC_MKDOC);
    assert_memory_equal(d + 29, "k", 1);
    assert_memory_equal(d + 30, specs, nspecs);
    /* without expiry: the doc flags alone; neither: no extras */
    assert_int_equal(cbffi_subdoc(c, CBFFI_OP_MUTATE_IN, "k", 1, 1, cmds, NULL, "abc", np, "[]",
                                  nv, CBFFI_SDDOC_ADD, 0, 0, 0, 0, 8), CBFFI_OK);
    const cb_buf *p2 = &c->waitq->rnext->pkt;
    assert_int_equal((uint8_t)cb_buf_head(p2)[4], 1);
    assert_int_equal((uint8_t)cb_buf_head(p2)[24], CBFFI_SDDOC_ADD);
    assert_int_equal(cbffi_pending(c), 2);
    cbffi_client_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lookup_bodies),
        cmocka_unit_test(mutation_bodies),
        cmocka_unit_test(refusals),
        cmocka_unit_test(lookup_encoding),
        cmocka_unit_test(mutation_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
