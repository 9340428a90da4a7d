/* Unit tests: codec.c - encoding layouts, and decoding of valid, truncated
   and malformed responses (fed whole, byte by byte, and in odd chunks). */
#include "cmocka_inc.h"
#include "codec.h"

#include <stdlib.h>
#include <string.h>

static const uint32_t MAXB = 1 << 20;

static void encodes_set_layout(void **state)
{
    (void)state;
    cb_buf b = {0};
    char ext[8];
    cb_req r = {.opcode = CB_CMD_SET, .opaque = 0x11223344, .cas = 0x0a0b,
                .ext = ext, .key = "key", .nkey = 3, .value = "value",
                .nvalue = 5};
    r.next = cb_ext_store(ext, 0x02000000, 300);
    assert_int_equal(cb_encode(&b, &r), 0);
    const unsigned char *p = (const unsigned char *)b.data;
    assert_int_equal(cb_buf_size(&b), 24 + 8 + 3 + 5);
    assert_int_equal(p[0], 0x80);
    assert_int_equal(p[1], 0x01);
    assert_int_equal(cb_get16(b.data + 2), 3);
    assert_int_equal(p[4], 8);
    assert_int_equal(cb_get32(b.data + 8), 16);
    assert_true(cb_get64(b.data + 16) == 0x0a0b);
    assert_int_equal(cb_get32(b.data + 24), 0x02000000); /* flags */
    assert_int_equal(cb_get32(b.data + 28), 300);        /* expiry */
    assert_memory_equal(b.data + 32, "keyvalue", 8);
    cb_buf_free(&b);
}

static void encodes_counter_extras(void **state)
{
    (void)state;
    char ext[20];
    assert_int_equal(cb_ext_counter(ext, 5, 100, 0xffffffffu), 20);
    assert_true(cb_get64(ext) == 5);
    assert_true(cb_get64(ext + 8) == 100);
    assert_int_equal(cb_get32(ext + 16), 0xffffffffu);
}

/* Build a response packet into buf; returns its length. */
static size_t make_resp(char *buf, uint8_t magic, uint8_t op, uint16_t status,
                        const char *ext, uint8_t next, const char *key,
                        uint16_t nkey, const char *val, uint32_t nval,
                        uint32_t opaque)
{
    memset(buf, 0, 24);
    buf[0] = (char)magic;
    buf[1] = (char)op;
    cb_put16(buf + 2, nkey);
    buf[4] = (char)next;
    cb_put16(buf + 6, status);
    cb_put32(buf + 8, (uint32_t)next + nkey + nval);
    memcpy(buf + 12, &opaque, 4);
    cb_put64(buf + 16, 77);
    if (next)
        memcpy(buf + 24, ext, next);
    if (nkey)
        memcpy(buf + 24 + next, key, nkey);
    if (nval)
        memcpy(buf + 24 + next + nkey, val, nval);
    return 24 + next + nkey + nval;
}

static void decodes_get_response(void **state)
{
    (void)state;
    char pkt[128], flags[4];
    cb_put32(flags, 0x03000002);
    size_t n = make_resp(pkt, 0x81, 0, 0, flags, 4, NULL, 0, "hello", 5, 9);
    cb_resp r;
    const char *why = NULL;
    assert_int_equal(cb_decode(pkt, n, &r, MAXB, &why), (ssize_t)n);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.opaque, 9);
    assert_true(r.cas == 77);
    assert_int_equal(cb_get32(r.ext), 0x03000002);
    assert_int_equal(r.nvalue, 5);
    assert_memory_equal(r.value, "hello", 5);
    assert_null(r.key);
}

static void truncated_input_needs_more_at_every_length(void **state)
{
    (void)state;
    char pkt[128];
    size_t n = make_resp(pkt, 0x81, 0x10, 0, NULL, 0, "pid", 3, "42", 2, 1);
    for (size_t i = 0; i < n; i++) {
        cb_resp r;
        const char *why = NULL;
        assert_int_equal(cb_decode(pkt, i, &r, MAXB, &why), CB_DECODE_NEED_MORE);
    }
}

static void decodes_a_stream_fed_in_odd_chunks(void **state)
{
    (void)state;
    char stream[1024];
    size_t len = 0;
    for (uint32_t i = 0; i < 10; i++)
        len += make_resp(stream + len, 0x81, 0x01, 0, NULL, 0, NULL, 0,
                         "abc", i % 4, i);
    /* feed 1, 2, 3... bytes at a time into an accumulating buffer */
    cb_buf b = {0};
    size_t fed = 0, step = 1;
    uint32_t expect = 0;
    while (fed < len) {
        size_t k = step < len - fed ? step : len - fed;
        cb_buf_append(&b, stream + fed, k);
        fed += k;
        step = step % 7 + 1;
        for (;;) {
            cb_resp r;
            const char *why;
            ssize_t got = cb_decode(cb_buf_head(&b), cb_buf_size(&b), &r, MAXB, &why);
            assert_true(got >= 0);
            if (got == 0)
                break;
            assert_int_equal(r.opaque, expect);
            assert_int_equal(r.nvalue, expect % 4);
            expect++;
            cb_buf_consume(&b, (size_t)got);
        }
    }
    assert_int_equal(expect, 10);
    cb_buf_free(&b);
}

static void rejects_bad_magic(void **state)
{
    (void)state;
    char pkt[64];
    size_t n = make_resp(pkt, 0x80, 0, 0, NULL, 0, NULL, 0, NULL, 0, 1);
    cb_resp r;
    const char *why = NULL;
    assert_int_equal(cb_decode(pkt, n, &r, MAXB, &why), CB_DECODE_BAD);
    assert_non_null(strstr(why, "magic"));
    pkt[0] = 'V'; /* a text-protocol "VALUE ..." line */
    assert_int_equal(cb_decode(pkt, n, &r, MAXB, &why), CB_DECODE_BAD);
}

static void rejects_inconsistent_lengths_before_the_body_arrives(void **state)
{
    (void)state;
    char pkt[24] = {0};
    pkt[0] = (char)0x81;
    cb_put16(pkt + 2, 10); /* key 10 */
    pkt[4] = 4;            /* extras 4 */
    cb_put32(pkt + 8, 8);  /* body 8 < 14 */
    cb_resp r;
    const char *why = NULL;
    /* only the header is available: the violation is still caught */
    assert_int_equal(cb_decode(pkt, 24, &r, MAXB, &why), CB_DECODE_BAD);
    assert_non_null(strstr(why, "longer than the body"));
}

static void rejects_oversized_body(void **state)
{
    (void)state;
    char pkt[24] = {0};
    pkt[0] = (char)0x81;
    cb_put32(pkt + 8, 0xffffffffu);
    cb_resp r;
    const char *why = NULL;
    assert_int_equal(cb_decode(pkt, 24, &r, MAXB, &why), CB_DECODE_BAD);
    assert_non_null(strstr(why, "maximum"));
}

static void decodes_flexible_framing(void **state)
{
    (void)state;
    char pkt[64] = {0};
    pkt[0] = (char)0x18;
    pkt[1] = 0x01;
    pkt[2] = 3;            /* framing extras */
    pkt[3] = 0;            /* key */
    cb_put32(pkt + 8, 3);
    pkt[24] = 0x02; /* id 0, len 2: server duration */
    cb_resp r;
    const char *why = NULL;
    assert_int_equal(cb_decode(pkt, 27, &r, MAXB, &why), 27);
    assert_int_equal(r.nframe, 3);
    assert_int_equal(r.nvalue, 0);
}

static void fuzz_random_bytes_never_crash(void **state)
{
    (void)state;
    srand(1234);
    char buf[256];
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)(rand() % 256);
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)rand();
        if (round % 2)
            buf[0] = (char)0x81;
        cb_resp r;
        const char *why = NULL;
        ssize_t got = cb_decode(buf, n, &r, 200, &why);
        assert_true(got == CB_DECODE_BAD || got == 0 || (got >= 24 && (size_t)got <= n));
        if (got > 0)
            assert_true((size_t)r.nframe + r.next + r.nkey + r.nvalue == r.bodylen);
    }
}

static void quiet_forms_round_trip(void **state)
{
    (void)state;
    assert_int_equal(cb_quiet_of(CB_CMD_GET), CB_CMD_GETQ);
    assert_int_equal(cb_loud_of(CB_CMD_GETQ), CB_CMD_GET);
    assert_int_equal(cb_quiet_of(CB_CMD_GAT), CB_CMD_GATQ);
    assert_int_equal(cb_loud_of(CB_CMD_GATQ), CB_CMD_GAT);
    assert_int_equal(cb_quiet_of(CB_CMD_SET), CB_CMD_SET);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encodes_set_layout),
        cmocka_unit_test(encodes_counter_extras),
        cmocka_unit_test(decodes_get_response),
        cmocka_unit_test(truncated_input_needs_more_at_every_length),
        cmocka_unit_test(decodes_a_stream_fed_in_odd_chunks),
        cmocka_unit_test(rejects_bad_magic),
        cmocka_unit_test(rejects_inconsistent_lengths_before_the_body_arrives),
        cmocka_unit_test(rejects_oversized_body),
        cmocka_unit_test(decodes_flexible_framing),
        cmocka_unit_test(fuzz_random_bytes_never_crash),
        cmocka_unit_test(quiet_forms_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
