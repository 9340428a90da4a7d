/*
 * subdoc.c - sub-document operations: LOOKUP_IN (SUBDOC_MULTI_LOOKUP 0xd0)
 * and MUTATE_IN (SUBDOC_MULTI_MUTATION 0xd1), couchbase:// only
 * (kv_engine docs/SubDocument.md).
 *
 * Scheduling checks the specs, encodes the whole request into the op's kept
 * packet and hands it to the cluster layer, so the op is routed and retried
 * like any other key op: NOT_MY_VBUCKET and temporary failures are retried;
 * after a lost connection a lookup is sent again (cluster.c counts it as a
 * read), a mutation that may have reached the server is not.
 *
 * The reply's body is handed to the binding as the result's value, once
 * cbffi_subdoc_parse (a pure function over bytes, also the fuzz target's
 * subject) has found it well formed for the request's spec count; a body
 * that is not is a protocol error for that op (the framing is intact, so the
 * connection stays).
 *
 * Ownership: nothing here outlives a call; the spec body is built in a
 * temporary buffer freed before returning.  The op owns its packet.
 */
#include "client_private.h"
#include "errors.h"

#include <stdlib.h>
#include <string.h>

enum {
    MAX_SPECS = 16,         /* SUBDOC_MULTI_MAX_PATHS */
    MAX_PATH = 1024,        /* SUBDOC_MAX_PATH_LENGTH */
    LOOKUP_SPEC_HDR = 4,    /* cmd u8, flags u8, path length u16 */
    MUTATION_SPEC_HDR = 8,  /* cmd u8, flags u8, path length u16, value length u32 */
    LOOKUP_RES_HDR = 6,     /* status u16, value length u32 */
    MUTATION_RES_HDR = 7,   /* index u8, status u16, value length u32 */
    MUTATION_FAIL_LEN = 3,  /* index u8, status u16 */
    ST_MULTI_PATH_FAILURE = 0xcc
};

static int is_lookup_cmd(uint8_t cmd)
{
    return cmd == CBFFI_SDCMD_GET_DOC || cmd == CBFFI_SDCMD_GET ||
           cmd == CBFFI_SDCMD_EXISTS || cmd == CBFFI_SDCMD_GET_COUNT;
}

static int is_mutation_cmd(uint8_t cmd)
{
    return cmd == CBFFI_SDCMD_SET_DOC || cmd == CBFFI_SDCMD_REMOVE_DOC ||
           (cmd >= CBFFI_SDCMD_DICT_ADD && cmd <= CBFFI_SDCMD_COUNTER);
}

static int whole_doc(uint8_t cmd)
{
    return cmd == CBFFI_SDCMD_GET_DOC || cmd == CBFFI_SDCMD_SET_DOC ||
           cmd == CBFFI_SDCMD_REMOVE_DOC;
}

/* Commands that may address the document's root with an empty path. */
static int root_ok(uint8_t cmd)
{
    return cmd == CBFFI_SDCMD_EXISTS || cmd == CBFFI_SDCMD_GET_COUNT ||
           cmd == CBFFI_SDCMD_ARRAY_ADD_LAST || cmd == CBFFI_SDCMD_ARRAY_ADD_FIRST ||
           cmd == CBFFI_SDCMD_ARRAY_ADD_UNIQUE;
}

static int takes_value(uint8_t cmd)
{
    return cmd != CBFFI_SDCMD_REMOVE && cmd != CBFFI_SDCMD_REMOVE_DOC &&
           is_mutation_cmd(cmd);
}

/* ---- the reply ----------------------------------------------------------------- */

int cbffi_subdoc_parse(int op, int rc, const char *body, size_t nbody,
                       size_t n, cbffi_subdoc_entry *out)
{
    size_t pos = 0, count = 0;
    int last = -1;
    if (n == 0 || n > MAX_SPECS || (nbody && !body))
        return -1;
    if (op == CBFFI_OP_LOOKUP_IN) {
        if (rc != CBFFI_OK && rc != CBFFI_SUBDOC_MULTI_FAILURE)
            return -1;
        while (pos < nbody) {
            if (count == n || nbody - pos < LOOKUP_RES_HDR)
                return -1;
            uint16_t st = cb_get16(body + pos);
            uint32_t len = cb_get32(body + pos + 2);
            pos += LOOKUP_RES_HDR;
            if (len > nbody - pos)
                return -1;
            /* all succeeded means every status is 0 */
            if (rc == CBFFI_OK && st != 0)
                return -1;
            if (out) {
                out[count].value = len ? body + pos : NULL;
                out[count].nvalue = len;
                out[count].status = st;
                out[count].rc = cb_status_to_rc(st, 0);
                out[count].index = (uint8_t)count;
                out[count].reserved[0] = 0;
            }
            pos += len;
            count++;
        }
        return count == n ? (int)count : -1;
    }
    if (op != CBFFI_OP_MUTATE_IN)
        return -1;
    if (rc == CBFFI_SUBDOC_MULTI_FAILURE) {
        if (nbody != MUTATION_FAIL_LEN)
            return -1;
        uint8_t ix = (uint8_t)body[0];
        uint16_t st = cb_get16(body + 1);
        if (ix >= n || st == 0)
            return -1;
        if (out) {
            out[0].value = NULL;
            out[0].nvalue = 0;
            out[0].status = st;
            out[0].rc = cb_status_to_rc(st, 1);
            out[0].index = ix;
            out[0].reserved[0] = 0;
        }
        return 1;
    }
    if (rc != CBFFI_OK)
        return -1;
    while (pos < nbody) {
        if (count == n || nbody - pos < MUTATION_RES_HDR)
            return -1;
        uint8_t ix = (uint8_t)body[pos];
        uint16_t st = cb_get16(body + pos + 1);
        uint32_t len = cb_get32(body + pos + 3);
        pos += MUTATION_RES_HDR;
        if (ix >= n || (int)ix <= last || st != 0 || len > nbody - pos)
            return -1;
        if (out) {
            out[count].value = len ? body + pos : NULL;
            out[count].nvalue = len;
            out[count].status = 0;
            out[count].rc = CBFFI_OK;
            out[count].index = ix;
            out[count].reserved[0] = 0;
        }
        last = ix;
        pos += len;
        count++;
    }
    return (int)count;
}

int cb_subdoc_reply(const cb_op *op, const cb_resp *r, int rc)
{
    if (rc != CBFFI_OK && rc != CBFFI_SUBDOC_MULTI_FAILURE)
        return 0; /* a document-level answer: its body is error text */
    return cbffi_subdoc_parse(op->op, rc, r->value, r->nvalue, op->nspecs,
                              NULL) < 0 ? -1 : 0;
}

/* ---- scheduling ---------------------------------------------------------------- */

static int refuse(cbffi_client *c, int rc, const char *why, size_t i)
{
    cb_set_error(c, "spec %zu: %s", i, why);
    return rc;
}

/* Check the specs; *nbody = the size of the encoded spec list. */
static int check_specs(cbffi_client *c, int op, size_t n, const uint8_t *cmds,
                       const uint8_t *pathflags, const uint32_t *npaths,
                       const char *paths, const uint32_t *nvalues,
                       const char *values, size_t *nbody)
{
    size_t total = 0, tpath = 0, tval = 0;
    int lookup = op == CBFFI_OP_LOOKUP_IN;
    if (!cmds || !npaths) {
        cb_set_error(c, "no spec commands or path lengths given");
        return CBFFI_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t cmd = cmds[i];
        uint8_t fl = pathflags ? pathflags[i] : 0;
        uint32_t np = npaths[i];
        uint32_t nv = nvalues ? nvalues[i] : 0;
        if (lookup ? !is_lookup_cmd(cmd) : !is_mutation_cmd(cmd))
            return refuse(c, CBFFI_UNKNOWN_SDCMD,
                          lookup ? "not a lookup command" : "not a mutation command", i);
        if (fl & ~(uint8_t)(CBFFI_SDSPEC_MKDIR_P | CBFFI_SDSPEC_XATTR))
            return refuse(c, CBFFI_EINVAL, "unknown path flags", i);
        if (lookup && (fl & CBFFI_SDSPEC_MKDIR_P))
            return refuse(c, CBFFI_EINVAL, "create_parents on a lookup", i);
        if (np > MAX_PATH)
            return refuse(c, CBFFI_SUBDOC_PATH_E2BIG, "path longer than 1024 bytes", i);
        if (whole_doc(cmd) && np)
            return refuse(c, CBFFI_EINVAL, "a whole-document command takes no path", i);
        if (!np && !whole_doc(cmd) && !root_ok(cmd) && !(fl & CBFFI_SDSPEC_XATTR))
            return refuse(c, CBFFI_EMPTY_PATH, "empty path", i);
        if (lookup && nv)
            return refuse(c, CBFFI_EINVAL, "a lookup takes no value", i);
        if (!lookup && takes_value(cmd) && !nv)
            return refuse(c, CBFFI_EINVAL, "the command needs a value", i);
        if (!lookup && !takes_value(cmd) && nv)
            return refuse(c, CBFFI_EINVAL, "the command takes no value", i);
        tpath += np;
        tval += nv;
        total += (lookup ? LOOKUP_SPEC_HDR : MUTATION_SPEC_HDR) + np + nv;
        if (total > c->max_value)
            return refuse(c, CBFFI_E2BIG, "the specs exceed the value limit", i);
    }
    if ((tpath && !paths) || (tval && !values)) {
        cb_set_error(c, "NULL paths or values with non-zero lengths");
        return CBFFI_EINVAL;
    }
    *nbody = total;
    return CBFFI_OK;
}

static int encode_specs(cb_buf *b, int op, size_t n, const uint8_t *cmds,
                        const uint8_t *pathflags, const uint32_t *npaths,
                        const char *paths, const uint32_t *nvalues,
                        const char *values, size_t nbody)
{
    if (cb_buf_reserve(b, nbody) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char hdr[MUTATION_SPEC_HDR];
        uint32_t np = npaths[i], nv = nvalues ? nvalues[i] : 0;
        hdr[0] = (char)cmds[i];
        hdr[1] = (char)(pathflags ? pathflags[i] : 0);
        cb_put16(hdr + 2, (uint16_t)np);
        if (op == CBFFI_OP_MUTATE_IN) {
            cb_put32(hdr + 4, nv);
            cb_buf_append(b, hdr, MUTATION_SPEC_HDR);
        } else {
            cb_buf_append(b, hdr, LOOKUP_SPEC_HDR);
        }
        if (np) {
            cb_buf_append(b, paths, np);
            paths += np;
        }
        if (nv) {
            cb_buf_append(b, values, nv);
            values += nv;
        }
    }
    return 0;
}

int cbffi_subdoc(cbffi_client *c, int op, const char *key, size_t nkey,
                 size_t n, const uint8_t *cmds, const uint8_t *pathflags,
                 const char *paths, const uint32_t *npaths,
                 const char *values, const uint32_t *nvalues,
                 uint32_t docflags, uint32_t exptime, uint64_t cas,
                 int persist_to, int replicate_to, uint64_t cookie)
{
    int rc = cb_check_key(c, key, nkey);
    if (rc != CBFFI_OK)
        return rc;
    if (op != CBFFI_OP_LOOKUP_IN && op != CBFFI_OP_MUTATE_IN) {
        cb_set_error(c, "cbffi_subdoc: %d is neither LOOKUP_IN nor MUTATE_IN", op);
        return CBFFI_EINVAL;
    }
    if (c->type != CBFFI_TYPE_COUCHBASE ||
        (c->have_map && c->map.locator != CB_CM_VBUCKET)) {
        cb_set_error(c, "sub-document operations need a Couchbase bucket");
        return CBFFI_NOT_SUPPORTED;
    }
    if (n == 0) {
        cb_set_error(c, "no sub-document specs given");
        return CBFFI_ENO_COMMANDS;
    }
    if (n > MAX_SPECS) {
        cb_set_error(c, "%zu specs; the server takes at most %d", n, MAX_SPECS);
        return CBFFI_EINVAL;
    }
    int lookup = op == CBFFI_OP_LOOKUP_IN;
    if (lookup && (docflags || exptime || cas || persist_to || replicate_to)) {
        cb_set_error(c, "a lookup takes no doc flags, expiry, CAS or durability");
        return CBFFI_EINVAL;
    }
    if (docflags & ~(uint32_t)(CBFFI_SDDOC_MKDOC | CBFFI_SDDOC_ADD)) {
        cb_set_error(c, "unknown doc flags 0x%x", docflags);
        return CBFFI_EINVAL;
    }
    if ((docflags & CBFFI_SDDOC_MKDOC) && (docflags & CBFFI_SDDOC_ADD)) {
        cb_set_error(c, "upsert_doc and insert_doc exclude each other");
        return CBFFI_EINVAL;
    }
    if ((docflags & CBFFI_SDDOC_ADD) && cas) {
        cb_set_error(c, "insert_doc with a CAS");
        return CBFFI_EINVAL;
    }
    size_t nbody = 0;
    rc = check_specs(c, op, n, cmds, pathflags, npaths, paths, nvalues,
                     values, &nbody);
    if (rc != CBFFI_OK)
        return rc;
    if (persist_to || replicate_to) {
        if (!c->have_map) {
            cb_set_error(c, "not connected yet: no cluster map");
            return CBFFI_CLIENT_ENOCONF;
        }
        if ((rc = cb_dur_check(c, persist_to, replicate_to)) != CBFFI_OK)
            return rc;
    }

    char ext[5];
    uint8_t next = 0;
    if (exptime) {
        cb_put32(ext, exptime);
        next = 4;
    }
    if (docflags)
        ext[next++] = (char)docflags;
    cb_buf specs = {0};
    if (encode_specs(&specs, op, n, cmds, pathflags, npaths, paths, nvalues,
                     values, nbody) != 0) {
        cb_buf_free(&specs);
        return CBFFI_CLIENT_ENOMEM;
    }
    cb_req req = {.opcode = lookup ? CB_CMD_SUBDOC_MULTI_LOOKUP
                                   : CB_CMD_SUBDOC_MULTI_MUTATION,
                  .key = key, .nkey = (uint16_t)nkey, .cas = cas,
                  .ext = next ? ext : NULL, .next = next,
                  .value = cb_buf_head(&specs),
                  .nvalue = (uint32_t)cb_buf_size(&specs)};
    cb_op *o = cb_op_new(c, op, cookie);
    if (!o) {
        cb_buf_free(&specs);
        return CBFFI_CLIENT_ENOMEM;
    }
    o->nspecs = (uint8_t)n;
    if ((persist_to || replicate_to) &&
        cb_dur_attach(c, o, key, nkey, persist_to, replicate_to,
                      0) != CBFFI_OK) {
        o->refs = 1;
        cb_op_unref(c, o);
        cb_buf_free(&specs);
        return CBFFI_CLIENT_ENOMEM;
    }
    rc = cb_sched_cluster(c, o, &req);
    cb_buf_free(&specs);
    return rc;
}
