/* libFuzzer target: SCRAM client steps fed hostile server messages.  The
   input is split at the first NUL into server-first and server-final. */
#include "sasl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* PBKDF2 cost grows with i=; the parser's own bound (10 million) is tested
   elsewhere - here keep every run fast. */
static int cheap(const char *p, size_t n)
{
    for (size_t i = 0; i + 2 < n; i++)
        if (p[i] == 'i' && p[i + 1] == '=') {
            size_t digits = 0;
            for (size_t j = i + 2; j < n && p[j] >= '0' && p[j] <= '9'; j++)
                digits++;
            if (digits > 3)
                return 0;
        }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    if (!cheap(p, size))
        return 0;
    const char *nul = memchr(p, '\0', size);
    size_t n1 = nul ? (size_t)(nul - p) : size;
    cb_scram s;
    memset(&s, 0, sizeof s);
    const char *msg;
    size_t nmsg;
    if (cb_scram_start(&s, CB_SASL_SCRAM_SHA256, "user", "pencil", "fyko", &msg, &nmsg) == 0 &&
        cb_scram_step(&s, p, n1, &msg, &nmsg) == 0 && nul)
        cb_scram_verify(&s, nul + 1, size - n1 - 1);
    cb_scram_free(&s);
    return 0;
}
