/*
 * sync.c - shortcuts for bindings (see "Shortcuts for bindings" in
 * cbffi.h): a synchronous single-key operation in one crossing instead of
 * two (schedule, run the built-in loop, harvest the one result), a batch of
 * operations scheduled in one crossing instead of one per key, and a harvest
 * into columns (one array per field) instead of an array of structs.
 * Written on the public API, but for two details: a batch call reads the
 * clock once for all its operations' deadlines (client->batch_now), as they
 * are all scheduled within microseconds; and the columns harvest reads the
 * result queue directly, as cbffi_harvest does.
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

int cbffi_get_now(cbffi_client *c, const char *key, size_t nkey,
                  cbffi_result *out)
{
    return cbffi_get_wait(c, key, nkey, CBFFI_GET_PLAIN, 0, out);
}

int cbffi_set_now(cbffi_client *c, const char *key, size_t nkey,
                  const char *value, size_t nvalue, uint32_t flags,
                  cbffi_result *out)
{
    return cbffi_store_wait(c, CBFFI_OP_SET, key, nkey, value, nvalue, flags,
                            0, 0, out);
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

size_t cbffi_harvest_columns(cbffi_client *c, cbffi_columns *out)
{
    cb_release_harvested(c);
    size_t n = c->res_len - c->res_head;
    if (n > out->cap)
        n = out->cap;
    const cb_result_rec *recs = &c->res[c->res_head];
    size_t base = 0, end = 0, nfailed = 0, i;
    int have_base = 0;
    for (i = 0; i < n; i++) {
        const cbffi_result *r = &recs[i].r;
        uint32_t off = 0;
        if (r->nvalue) {
            if (!have_base) {
                base = recs[i].voff;
                have_base = 1;
            }
            size_t rel = recs[i].voff - base;
            if (rel + r->nvalue > UINT32_MAX)
                break; /* the rest next time, from a new base */
            off = (uint32_t)rel;
            end = rel + r->nvalue;
        }
        if (out->cookie)
            out->cookie[i] = r->cookie;
        if (out->cas)
            out->cas[i] = r->cas;
        if (out->rc)
            out->rc[i] = r->rc;
        if (out->flags)
            out->flags[i] = r->flags;
        if (out->voff)
            out->voff[i] = off;
        if (out->nvalue)
            out->nvalue[i] = r->nvalue;
        nfailed += r->rc != CBFFI_OK;
    }
    out->values = have_base ? c->rdata.data + base : NULL;
    out->nvalues = end;
    out->nfailed = nfailed;
    c->res_head += i;
    out->nready = c->res_len - c->res_head;
    return i;
}

size_t cbffi_wait_columns(cbffi_client *c, cbffi_columns *out)
{
    cbffi_wait(c, NULL, 0);
    return cbffi_harvest_columns(c, out);
}
