/* libFuzzer target: the Couchbase cluster-map parser. */
#include "clustermap.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cb_clustermap m;
    char err[128];
    err[0] = '\0';
    int rc = cb_clustermap_parse(&m, (const char *)data, size, "10.0.0.1", err, sizeof err);
    if (rc == CB_CM_OK) {
        for (uint32_t vb = 0; vb < m.nvbuckets; vb++) {
            int s = cb_clustermap_vb_server(&m, vb, 0);
            if (s < -1 || s >= (int)m.nservers)
                __builtin_trap(); /* an accepted map never points outside serverList */
        }
        cb_clustermap_free(&m);
    } else if (rc == CB_CM_EINPUT && err[0] == '\0') {
        __builtin_trap(); /* every rejection says why */
    }
    return 0;
}
