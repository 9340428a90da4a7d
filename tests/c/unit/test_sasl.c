/* Unit tests: sasl.c - mechanism selection, PLAIN, and SCRAM exchanges
   reproduced byte for byte from tests/data/vectors.md. */
#include "cmocka_inc.h"
#include "sasl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    cb_sasl_mech mech;
    const char *user, *password, *cnonce;
    const char *client_first, *server_first, *client_final, *server_final;
} exchange;

static const exchange exchanges[] = {
    {CB_SASL_SCRAM_SHA1, "user", "pencil", "fyko+d2lbbFgONRv9qkxdawL",
     "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
     "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
     "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
     "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
     "v=rmF9pqV8S7suAoZWja4dJRkFsKQ="},
    {CB_SASL_SCRAM_SHA256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO",
     "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
     "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
     "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
     "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
     "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
     "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="},
    {CB_SASL_SCRAM_SHA512, "Administrator", "password", "b2f3c9d07e1a4f65",
     "n,,n=Administrator,r=b2f3c9d07e1a4f65",
     "r=b2f3c9d07e1a4f650a8c4e2d6b1f3957,s=c2FsdHNhbHRzYWx0c2FsdA==,i=15000",
     "c=biws,r=b2f3c9d07e1a4f650a8c4e2d6b1f3957,"
     "p=5AwEXIg/4aZd42QDdSQsGl290ID/ShgqCpwkF1JgXS1MNMwWkFlJhIrCSQwxRE42mNaMo"
     "pqQSsUI6lz6tT8pPA==",
     "v=cgQX7Qbf4JQ2MDfmmWvd8tvJzR+oH/NzGWCMwDNZXgyEiOXN9KS94Gr8DeR0ZjucxpRPO"
     "I+l4SoAjCgKYFFe7w=="},
};

static void assert_msg(const char *got, size_t n, const char *want)
{
    if (n != strlen(want) || memcmp(got, want, n) != 0)
        fail_msg("got '%.*s'\nwant '%s'", (int)n, got, want);
}

/* Start and step exchange e; leaves s ready for verify. */
static void run_to_final(cb_scram *s, const exchange *e)
{
    const char *m;
    size_t n;
    assert_int_equal(cb_scram_start(s, e->mech, e->user, e->password,
                                    e->cnonce, &m, &n), CB_SASL_OK);
    assert_msg(m, n, e->client_first);
    int rc = cb_scram_step(s, e->server_first, strlen(e->server_first), &m, &n);
    if (rc != CB_SASL_OK)
        fail_msg("step: %d %s", rc, cb_scram_error(s));
    assert_msg(m, n, e->client_final);
}

static void vectors_reproduced(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof exchanges / sizeof exchanges[0]; i++) {
        const exchange *e = &exchanges[i];
        cb_scram s = {0};
        run_to_final(&s, e);
        assert_int_equal(cb_scram_verify(&s, e->server_final,
                                         strlen(e->server_final)), CB_SASL_OK);
        assert_string_equal(cb_scram_error(&s), "");
        cb_scram_free(&s);
    }
}

/* step = parse + derive + finish, the way negotiate.c runs it (the
   derivation in another thread): the same messages; the cap is the most
   derive takes; finish wants parse first and a key of the digest's size. */
static void step_in_three_parts(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof exchanges / sizeof exchanges[0]; i++) {
        const exchange *e = &exchanges[i];
        cb_scram s = {0};
        const char *m;
        size_t n;
        assert_int_equal(cb_scram_start(&s, e->mech, e->user, e->password,
                                        e->cnonce, &m, &n), CB_SASL_OK);
        unsigned char key[64];
        size_t nkey = 0;
        assert_int_equal(cb_scram_finish(&s, key, 64, &m, &n), CB_SASL_ESTATE);
        assert_int_equal(cb_scram_parse(&s, e->server_first, strlen(e->server_first)),
                         CB_SASL_OK);
        assert_int_equal(s.iter, i == 2 ? 15000 : 4096);
        assert_int_equal(cb_scram_derive(e->mech, e->password, strlen(e->password),
                                         s.salt, s.nsalt, s.iter, key, &nkey),
                         CB_SASL_OK);
        assert_int_equal(cb_scram_finish(&s, key, nkey - 1, &m, &n), CB_SASL_EINVAL);
        assert_int_equal(cb_scram_finish(&s, key, nkey, &m, &n), CB_SASL_OK);
        assert_msg(m, n, e->client_final);
        assert_int_equal(cb_scram_verify(&s, e->server_final, strlen(e->server_final)),
                         CB_SASL_OK);
        cb_scram_free(&s);
    }
    unsigned char key[64];
    size_t nkey;
    assert_int_equal(cb_scram_derive(CB_SASL_SCRAM_SHA1, "p", 1, (const unsigned char *)"s",
                                     1, CB_SCRAM_MAX_ITER + 1, key, &nkey), CB_SASL_EINVAL);
    assert_int_equal(cb_scram_derive(CB_SASL_PLAIN, "p", 1, (const unsigned char *)"s", 1, 1,
                                     key, &nkey), CB_SASL_EINVAL);
}

static void wrong_server_signature_rejected(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof exchanges / sizeof exchanges[0]; i++) {
        const exchange *e = &exchanges[i];
        cb_scram s = {0};
        run_to_final(&s, e);
        char bad[200];
        snprintf(bad, sizeof bad, "%s", e->server_final);
        bad[2] = bad[2] == 'A' ? 'B' : 'A';
        assert_int_equal(cb_scram_verify(&s, bad, strlen(bad)), CB_SASL_EAUTH);
        assert_non_null(strstr(cb_scram_error(&s), "signature mismatch"));
        cb_scram_free(&s);
    }
    /* another exchange's (valid base64, wrong length) signature */
    cb_scram s = {0};
    run_to_final(&s, &exchanges[0]);
    const char *other = exchanges[1].server_final;
    assert_int_equal(cb_scram_verify(&s, other, strlen(other)), CB_SASL_EAUTH);
    cb_scram_free(&s);
}

static void server_final_errors(void **state)
{
    (void)state;
    static const struct { const char *msg; int rc; const char *why; } cases[] = {
        {"e=invalid-proof", CB_SASL_EAUTH, "server error: invalid-proof"},
        {"", CB_SASL_EPROTO, "no v="},
        {"x=abc", CB_SASL_EPROTO, "no v="},
        {"v=", CB_SASL_EPROTO, "base64"},
        {"v=rmF9pqV8S7suAoZWja4dJRkFsKQ", CB_SASL_EPROTO, "base64"},
        {"v=rmF9pqV8S7s!AoZWja4dJRkFsKQ=", CB_SASL_EPROTO, "base64"},
        {"v==mF9pqV8S7suAoZWja4dJRkFsKQ=", CB_SASL_EPROTO, "base64"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cb_scram s = {0};
        run_to_final(&s, &exchanges[0]);
        assert_int_equal(cb_scram_verify(&s, cases[i].msg,
                                         strlen(cases[i].msg)), cases[i].rc);
        if (!strstr(cb_scram_error(&s), cases[i].why))
            fail_msg("case %zu: error '%s'", i, cb_scram_error(&s));
        /* a failed exchange cannot be continued */
        assert_int_equal(cb_scram_verify(&s, exchanges[0].server_final,
                                         strlen(exchanges[0].server_final)),
                         CB_SASL_ESTATE);
        cb_scram_free(&s);
    }
}

static void bad_server_first_rejected(void **state)
{
    (void)state;
    static const struct { const char *msg; int rc; const char *why; } cases[] = {
        {"r=XXXXfyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=4096",
         CB_SASL_EPROTO, "does not start with the client nonce"},
        {"r=fyko+d2lbbFgONRv9qkxdawL,s=QSXCR+Q6sek8bf92,i=4096",
         CB_SASL_EPROTO, "nonce has a bad length"},
        {"s=QSXCR+Q6sek8bf92,i=4096", CB_SASL_EPROTO, "missing r="},
        {"r=fyko+d2lbbFgONRv9qkxdawL3rfc,i=4096", CB_SASL_EPROTO, "missing s="},
        {"r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92", CB_SASL_EPROTO,
         "missing i="},
        {"r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf9,i=4096",
         CB_SASL_EPROTO, "base64"},
        {"r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXC*+Q6sek8bf92,i=4096",
         CB_SASL_EPROTO, "base64"},
        {"r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=,i=4096", CB_SASL_EPROTO, "base64"},
        {"r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=0",
         CB_SASL_EPROTO, "iteration"},
        {"r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=99999999999",
         CB_SASL_EPROTO, "iteration"},
        {"r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=10000001",
         CB_SASL_EPROTO, "iteration"},
        /* over the cap: a hostile count is refused before any PBKDF2 */
        {"r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=10000000",
         CB_SASL_EPROTO, "asks for 10000000 PBKDF2 iterations (i=), more than "
                         "this client allows (100000)"},
        {"r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=100001",
         CB_SASL_EPROTO, "more than this client allows (100000)"},
        {"r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=999999999999999999",
         CB_SASL_EPROTO, "more than this client allows"},
        {"r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=9999999999999999999",
         CB_SASL_EPROTO, "not in 1..100000"},
        {"r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=-1",
         CB_SASL_EPROTO, "iteration"},
        {"r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=", CB_SASL_EPROTO,
         "iteration"},
        {"r=fyko+d2lbbFgONRv9qkxdawL3rfc,r=fyko+d2lbbFgONRv9qkxdawL3rfc,"
         "s=QSXCR+Q6sek8bf92,i=1", CB_SASL_EPROTO, "duplicate"},
        {"m=ext,r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=1",
         CB_SASL_EPROTO, "extension"},
        {"e=other-error", CB_SASL_EAUTH, "server error: other-error"},
        {"", CB_SASL_EPROTO, "missing r="},
        {"garbage", CB_SASL_EPROTO, "malformed"},
        {"r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=4096,",
         CB_SASL_EPROTO, "malformed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cb_scram s = {0};
        const char *m;
        size_t n;
        assert_int_equal(cb_scram_start(&s, CB_SASL_SCRAM_SHA1, "user",
                                        "pencil", exchanges[0].cnonce, &m, &n),
                         CB_SASL_OK);
        int rc = cb_scram_step(&s, cases[i].msg, strlen(cases[i].msg), &m, &n);
        if (rc != cases[i].rc || !strstr(cb_scram_error(&s), cases[i].why))
            fail_msg("case %zu: rc %d error '%s'", i, rc, cb_scram_error(&s));
        cb_scram_free(&s);
    }
}

static void out_of_order_and_bad_args(void **state)
{
    (void)state;
    cb_scram s = {0};
    const char *m;
    size_t n;
    assert_int_equal(cb_scram_step(&s, "r=a", 3, &m, &n), CB_SASL_ESTATE);
    assert_int_equal(cb_scram_verify(&s, "v=", 2), CB_SASL_ESTATE);
    assert_int_equal(cb_scram_start(&s, CB_SASL_PLAIN, "u", "p", NULL, &m, &n),
                     CB_SASL_EINVAL);
    assert_int_equal(cb_scram_start(&s, CB_SASL_SCRAM_SHA1, "u", "p", "a,b",
                                    &m, &n), CB_SASL_EINVAL);
    assert_int_equal(cb_scram_start(&s, CB_SASL_SCRAM_SHA1, "u", "p", "", &m,
                                    &n), CB_SASL_EINVAL);
    assert_int_equal(cb_scram_start(&s, CB_SASL_SCRAM_SHA1, "u", "p", NULL, &m,
                                    &n), CB_SASL_OK);
    assert_int_equal(cb_scram_start(&s, CB_SASL_SCRAM_SHA1, "u", "p", NULL, &m,
                                    &n), CB_SASL_ESTATE);
    char *big = malloc(CB_SASL_MAX_SERVER_MSG + 2);
    memset(big, 'a', CB_SASL_MAX_SERVER_MSG + 1);
    big[CB_SASL_MAX_SERVER_MSG + 1] = '\0';
    assert_int_equal(cb_scram_step(&s, big, CB_SASL_MAX_SERVER_MSG + 1, &m, &n),
                     CB_SASL_EPROTO);
    free(big);
    cb_scram_free(&s);
}

static void random_nonce(void **state)
{
    (void)state;
    cb_scram a = {0}, b = {0};
    const char *ma, *mb;
    size_t na, nb;
    assert_int_equal(cb_scram_start(&a, CB_SASL_SCRAM_SHA256, "u", "p", NULL,
                                    &ma, &na), CB_SASL_OK);
    assert_int_equal(cb_scram_start(&b, CB_SASL_SCRAM_SHA256, "u", "p", NULL,
                                    &mb, &nb), CB_SASL_OK);
    assert_int_equal(na, strlen("n,,n=u,r=") + 24);
    assert_memory_equal(ma, "n,,n=u,r=", 9);
    for (size_t i = 9; i < na; i++)
        assert_non_null(strchr("0123456789abcdef", ma[i]));
    assert_false(na == nb && memcmp(ma, mb, na) == 0);
    cb_scram_free(&a);
    cb_scram_free(&b);
}

static void username_escaping(void **state)
{
    (void)state;
    static const char *cases[][2] = {
        {"a=b,c", "n,,n=a=3Db=2Cc,r=abc"},
        {"==", "n,,n==3D=3D,r=abc"},
        {",", "n,,n==2C,r=abc"},
        {"", "n,,n=,r=abc"},
        {"plain", "n,,n=plain,r=abc"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cb_scram s = {0};
        const char *m;
        size_t n;
        assert_int_equal(cb_scram_start(&s, CB_SASL_SCRAM_SHA512, cases[i][0],
                                        "pw", "abc", &m, &n), CB_SASL_OK);
        assert_msg(m, n, cases[i][1]);
        cb_scram_free(&s);
    }
}

static void mechanism_selection(void **state)
{
    (void)state;
    static const struct {
        const char *offered, *force;
        int rc;
        cb_sasl_mech want;
    } cases[] = {
        {"SCRAM-SHA512 SCRAM-SHA256 SCRAM-SHA1 PLAIN", NULL, 0, CB_SASL_SCRAM_SHA512},
        {"PLAIN SCRAM-SHA1 SCRAM-SHA256", NULL, 0, CB_SASL_SCRAM_SHA256},
        {"SCRAM-SHA1 PLAIN", NULL, 0, CB_SASL_SCRAM_SHA1},
        {"scram-sha1", NULL, 0, CB_SASL_SCRAM_SHA1},
        {"  SCRAM-SHA1\t\n", "", 0, CB_SASL_SCRAM_SHA1},
        {"PLAIN", NULL, CB_SASL_ENOMECH, CB_SASL_NONE},
        {"plain cram-md5", NULL, CB_SASL_ENOMECH, CB_SASL_NONE},
        {"", NULL, CB_SASL_ENOMECH, CB_SASL_NONE},
        {"SCRAM-SHA5120 SCRAM-SHA", NULL, CB_SASL_ENOMECH, CB_SASL_NONE},
        {"SCRAM-SHA512 PLAIN", "PLAIN", 0, CB_SASL_PLAIN},
        {"plain cram-md5", "PLAIN", 0, CB_SASL_PLAIN},
        {"SCRAM-SHA512 SCRAM-SHA1", "SCRAM-SHA1", 0, CB_SASL_SCRAM_SHA1},
        {"SCRAM-SHA512", "PLAIN", CB_SASL_EUNAVAIL, CB_SASL_NONE},
        {"SCRAM-SHA512", "SCRAM-SHA256", CB_SASL_EUNAVAIL, CB_SASL_NONE},
        {"SCRAM-SHA512 CRAM-MD5", "CRAM-MD5", CB_SASL_EINVAL, CB_SASL_NONE},
        /* cyrus SASL (memcached -S) spells them the IANA way */
        {"PLAIN SCRAM-SHA-1 SCRAM-SHA-256 SCRAM-SHA-512", NULL, 0,
         CB_SASL_SCRAM_SHA512},
        {"PLAIN SCRAM-SHA-1", NULL, 0, CB_SASL_SCRAM_SHA1},
        {"SCRAM-SHA-256 SCRAM-SHA-1", "SCRAM-SHA256", 0, CB_SASL_SCRAM_SHA256},
        {"SCRAM-SHA-256", "scram-sha-256", 0, CB_SASL_SCRAM_SHA256},
        {"SCRAM-SHA-", NULL, CB_SASL_ENOMECH, CB_SASL_NONE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cb_sasl_mech m = (cb_sasl_mech)99;
        int rc = cb_sasl_select(cases[i].offered, strlen(cases[i].offered),
                                cases[i].force, &m);
        if (rc != cases[i].rc || m != cases[i].want)
            fail_msg("case %zu: rc %d mech %d", i, rc, (int)m);
    }
    /* the offered list is length-bounded, not NUL-terminated */
    cb_sasl_mech m;
    assert_int_equal(cb_sasl_select("SCRAM-SHA1 SCRAM-SHA512", 10, NULL, &m), 0);
    assert_int_equal(m, CB_SASL_SCRAM_SHA1);
    assert_string_equal(cb_sasl_mech_name(CB_SASL_SCRAM_SHA256), "SCRAM-SHA256");
    assert_string_equal(cb_sasl_mech_name(CB_SASL_NONE), "");
    /* AUTH names the mechanism as the server offered it */
    const char *cy = "PLAIN SCRAM-SHA-1 SCRAM-SHA-256";
    assert_string_equal(cb_sasl_wire_name(cy, strlen(cy), CB_SASL_SCRAM_SHA256),
                        "SCRAM-SHA-256");
    const char *cb = "SCRAM-SHA512 SCRAM-SHA1";
    assert_string_equal(cb_sasl_wire_name(cb, strlen(cb), CB_SASL_SCRAM_SHA1),
                        "SCRAM-SHA1");
    assert_string_equal(cb_sasl_wire_name(NULL, 0, CB_SASL_SCRAM_SHA512),
                        "SCRAM-SHA512");
    assert_string_equal(cb_sasl_wire_name(cy, strlen(cy), CB_SASL_PLAIN), "PLAIN");
}

static void plain_encoding(void **state)
{
    (void)state;
    cb_buf b = {0};
    assert_int_equal(cb_sasl_plain(&b, "user", "pass word"), CB_SASL_OK);
    assert_int_equal(cb_buf_size(&b), 15);
    assert_memory_equal(cb_buf_head(&b), "\0user\0pass word", 15);
    cb_buf_clear(&b);
    assert_int_equal(cb_sasl_plain(&b, "", ""), CB_SASL_OK);
    assert_int_equal(cb_buf_size(&b), 2);
    assert_memory_equal(cb_buf_head(&b), "\0\0", 2);
    cb_buf_free(&b);
}

/* Random bytes, truncations and byte flips of valid server messages: every
   call must return cleanly (ASan / UBSan check memory). */
static void fuzz_server_messages(void **state)
{
    (void)state;
    srand(12345);
    const exchange *e = &exchanges[0];
    char buf[256];
    for (int iter = 0; iter < 3000; iter++) {
        const char *src = iter % 2 ? e->server_first : e->server_final;
        size_t n = strlen(src);
        memcpy(buf, src, n);
        int kind = rand() % 3;
        if (kind == 0) {
            n = (size_t)rand() % (n + 1);
        } else if (kind == 1) {
            for (int k = 0; k < 1 + rand() % 4; k++)
                buf[(size_t)rand() % n] = (char)(rand() % 256);
        } else {
            n = (size_t)rand() % sizeof buf;
            for (size_t k = 0; k < n; k++)
                buf[k] = (char)(rand() % 256);
        }
        cb_scram s = {0};
        const char *m;
        size_t nm;
        assert_int_equal(cb_scram_start(&s, CB_SASL_SCRAM_SHA1, e->user,
                                        e->password, e->cnonce, &m, &nm), 0);
        if (iter % 2) {
            (void)cb_scram_step(&s, buf, n, &m, &nm);
        } else {
            assert_int_equal(cb_scram_step(&s, e->server_first,
                                           strlen(e->server_first), &m, &nm), 0);
            int rc = cb_scram_verify(&s, buf, n);
            if (rc == CB_SASL_OK)
                assert_memory_equal(buf, e->server_final, n > 30 ? 30 : n);
        }
        assert_true(strlen(cb_scram_error(&s)) < sizeof s.err);
        cb_scram_free(&s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(vectors_reproduced),
        cmocka_unit_test(step_in_three_parts),
        cmocka_unit_test(wrong_server_signature_rejected),
        cmocka_unit_test(server_final_errors),
        cmocka_unit_test(bad_server_first_rejected),
        cmocka_unit_test(out_of_order_and_bad_args),
        cmocka_unit_test(random_nonce),
        cmocka_unit_test(username_escaping),
        cmocka_unit_test(mechanism_selection),
        cmocka_unit_test(plain_encoding),
        cmocka_unit_test(fuzz_server_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
