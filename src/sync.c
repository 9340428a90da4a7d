/*
 * sync.c - shortcuts for bindings (see "Shortcuts for bindings" in
 * cbffi.h): a synchronous single-key operation in one crossing instead of
 * two (schedule, run the built-in loop, harvest the one result), and a
 * batch of operations scheduled in one crossing instead of one per key.
 * Written on the public API, but for one detail: a batch call reads the clock
 * once for all its operations' deadlines (client->batch_now), as they are all
 * scheduled within microseconds.
 */
#include "cbffi.h"
#include "client_private.h"

/* Nothing may be pending or ready: the one result harvested must be ours. */
static int refuse_if_busy(cbffi_client *c, cbffi_result *out)
{
    if (cbffi_pending(c) == 0 && cbffi_ready(c) == 0)
        return CBFFI_OK;
    out->rc = CBFFI_EINVAL;
    out->final = 0;
    return CBFFI_EINVAL;
}

static int wait_one(cbffi_client *c, int rc, cbffi_result *out)
{
    if (rc != CBFFI_OK) {
        out->rc = rc;
        out->final = 0;
        return rc;
    }
    if (cbffi_wait(c, out, 1) != 1) { /* cannot happen: every op ends once */
        out->rc = CBFFI_EINTERNAL;
        out->final = 1;
    }
    return out->rc;
}

int cbffi_get_wait(cbffi_client *c, const char *key, size_t nkey, int mode,
                   uint32_t exptime, cbffi_result *out)
{
    int rc = refuse_if_busy(c, out);
    if (rc != CBFFI_OK)
        return rc;
    return wait_one(c, cbffi_get(c, key, nkey, mode, exptime, 0), out);
}

int cbffi_store_wait(cbffi_client *c, int op, const char *key, size_t nkey,
                     const char *value, size_t nvalue, uint32_t flags,
                     uint32_t exptime, uint64_t cas, cbffi_result *out)
{
    int rc = refuse_if_busy(c, out);
    if (rc != CBFFI_OK)
        return rc;
    return wait_one(c, cbffi_store(c, op, key, nkey, value, nvalue, flags,
                                   exptime, cas, 0), out);
}

int cbffi_get_multi(cbffi_client *c, const char *keys, const uint32_t *nkeys,
                    size_t n, int mode, uint32_t exptime, uint64_t cookie0,
                    size_t *nscheduled)
{
    size_t i = 0;
    int rc = CBFFI_OK;
    c->batch_now = cb_now();
    for (const char *k = keys; i < n; k += nkeys[i++]) {
        rc = cbffi_get(c, k, nkeys[i], mode, exptime, cookie0 + i);
        if (rc != CBFFI_OK)
            break;
    }
    c->batch_now = 0;
    if (nscheduled)
        *nscheduled = i;
    return rc;
}

int cbffi_store_multi(cbffi_client *c, int op, const char *keys,
                      const uint32_t *nkeys, const char *values,
                      const uint32_t *nvalues, const uint32_t *flags, size_t n,
                      uint32_t exptime, uint64_t cookie0, size_t *nscheduled)
{
    size_t i = 0;
    int rc = CBFFI_OK;
    const char *k = keys, *v = values;
    c->batch_now = cb_now();
    for (; i < n; i++) {
        rc = cbffi_store(c, op, k, nkeys[i], nvalues[i] ? v : NULL, nvalues[i],
                         flags ? flags[i] : 0, exptime, 0, cookie0 + i);
        if (rc != CBFFI_OK)
            break;
        k += nkeys[i];
        v += nvalues[i];
    }
    c->batch_now = 0;
    if (nscheduled)
        *nscheduled = i;
    return rc;
}
