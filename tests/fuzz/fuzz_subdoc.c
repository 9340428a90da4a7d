/* libFuzzer target: cbffi_subdoc_parse, the reader of LOOKUP_IN / MUTATE_IN
   reply bodies.  Input: [0] op and rc, [1] spec count, then the body. */
#include "cbffi.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int op = data[0] & 1 ? CBFFI_OP_MUTATE_IN : CBFFI_OP_LOOKUP_IN;
    int rc = data[0] & 2 ? CBFFI_SUBDOC_MULTI_FAILURE : CBFFI_OK;
    size_t n = data[1] % 18;
    const char *body = (const char *)data + 2;
    size_t nbody = size - 2;
    cbffi_subdoc_entry e[17];
    memset(e, 0xa5, sizeof e);
    int k = cbffi_subdoc_parse(op, rc, body, nbody, n, e);
    if (k != cbffi_subdoc_parse(op, rc, body, nbody, n, NULL))
        __builtin_trap();
    if (k < 0)
        return 0;
    if ((size_t)k > n || n == 0 || n > 16 || (op == CBFFI_OP_LOOKUP_IN && (size_t)k != n))
        __builtin_trap();
    size_t total = 0;
    for (int i = 0; i < k; i++) {
        if (e[i].index >= n || (e[i].nvalue && (e[i].value < body ||
                                                e[i].value + e[i].nvalue > body + nbody)))
            __builtin_trap();
        if (i && op == CBFFI_OP_MUTATE_IN && e[i].index <= e[i - 1].index)
            __builtin_trap();
        total += e[i].nvalue;
    }
    if (total > nbody)
        __builtin_trap();
    return 0;
}
