/*
 * errors.h - status code tables: cbffi_rc descriptions and flags, and the
 * mapping from a memcached/Couchbase server status to a cbffi_rc.
 */
#ifndef CBFFI_ERRORS_H
#define CBFFI_ERRORS_H

#include <stdint.h>

/* Wire status codes (PROTOCOL.md section 3) that the client acts on. */
enum {
    CB_ST_SUCCESS = 0x00,
    CB_ST_KEY_ENOENT = 0x01,
    CB_ST_KEY_EEXISTS = 0x02,
    CB_ST_E2BIG = 0x03,
    CB_ST_EINVAL = 0x04,
    CB_ST_NOT_STORED = 0x05,
    CB_ST_DELTA_BADVAL = 0x06,
    CB_ST_NOT_MY_VBUCKET = 0x07,
    CB_ST_NO_BUCKET = 0x08,
    CB_ST_LOCKED = 0x09,
    CB_ST_NOT_LOCKED = 0x0e,
    CB_ST_AUTH_STALE = 0x1f,
    CB_ST_AUTH_ERROR = 0x20,
    CB_ST_AUTH_CONTINUE = 0x21,
    CB_ST_ERANGE = 0x22,
    CB_ST_EACCESS = 0x24,
    CB_ST_NOT_INITIALIZED = 0x25,
    CB_ST_UNKNOWN_COMMAND = 0x81,
    CB_ST_ENOMEM = 0x82,
    CB_ST_NOT_SUPPORTED = 0x83,
    CB_ST_EINTERNAL = 0x84,
    CB_ST_EBUSY = 0x85,
    CB_ST_ETMPFAIL = 0x86,
    CB_ST_DURABILITY_IMPOSSIBLE = 0xa1,
    CB_ST_SYNC_WRITE_IN_PROGRESS = 0xa2
};

/* The cbffi_rc for a server status.  `is_mutation` selects the couchbase 2.x
   meaning of LOCKED (KEY_EEXISTS for writes, ETMPFAIL for reads/locks). */
int cb_status_to_rc(uint16_t status, int is_mutation);

#endif
