/*
 * sync.c - one-call shortcuts for a binding's synchronous single-key
 * operations (see "Shortcuts for bindings" in cbffi.h).  Written on the
 * public API only: schedule, then the built-in loop, then harvest the one
 * result, in one crossing instead of two.
 */
#include "cbffi.h"

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
