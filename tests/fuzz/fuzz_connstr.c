/* libFuzzer target: connection strings and durations. */
#include "cbffi.h"
#include "connstr.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    cb_connstr cs;
    char err[128];
    if (cb_connstr_parse(s, &cs, err, sizeof err) == CBFFI_OK) {
        if (cs.nhosts == 0 || !cs.bucket)
            __builtin_trap();
        cb_connstr_free(&cs);
    } else if (err[0] == '\0') {
        __builtin_trap(); /* every rejection says why */
    }
    uint64_t us;
    cb_parse_duration(s, &us);
    free(s);
    return 0;
}
