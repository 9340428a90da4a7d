/* libFuzzer target: the response decoder, fed a stream in chunks whose
   sizes come from the input itself. */
#include "codec.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cb_buf b = {0};
    size_t pos = 0;
    while (pos < size) {
        size_t chunk = 1 + data[pos] % 64;
        if (chunk > size - pos)
            chunk = size - pos;
        cb_buf_append(&b, data + pos, chunk);
        pos += chunk;
        for (;;) {
            cb_resp r;
            const char *why;
            ssize_t n = cb_decode(cb_buf_head(&b), cb_buf_size(&b), &r, 1 << 16, &why);
            if (n <= 0) {
                if (n < 0)
                    cb_buf_clear(&b);
                break;
            }
            if ((size_t)r.nframe + r.next + r.nkey + r.nvalue != r.bodylen)
                __builtin_trap();
            cb_buf_consume(&b, (size_t)n);
        }
    }
    cb_buf_free(&b);
    return 0;
}
