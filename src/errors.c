/* errors.c - descriptions and categories of status codes (see errors.h). */
#include "errors.h"

#include "cbffi.h"

#include <stddef.h>

enum {
    IN = CBFFI_ERRTYPE_INPUT,
    NET = CBFFI_ERRTYPE_NETWORK,
    FAT = CBFFI_ERRTYPE_FATAL,
    TMP = CBFFI_ERRTYPE_TRANSIENT,
    DAT = CBFFI_ERRTYPE_DATAOP,
    INT = CBFFI_ERRTYPE_INTERNAL,
    LOAD = CBFFI_ERRTYPE_SRVLOAD,
    SRV = CBFFI_ERRTYPE_SRVGEN
};

struct rc_info {
    const char *msg;
    uint32_t flags;
};

static const struct rc_info rc_table[] = {
    [CBFFI_OK] = {"Success", 0},
    [CBFFI_AUTH_CONTINUE] = {"Authentication continues", INT | FAT},
    [CBFFI_AUTH_ERROR] = {"Authentication failed: wrong credentials or no access", FAT | IN},
    [CBFFI_DELTA_BADVAL] = {"The stored value is not a number (counter)", IN | DAT | SRV},
    [CBFFI_E2BIG] = {"Value too large", IN | DAT | SRV},
    [CBFFI_EBUSY] = {"Server busy", TMP | LOAD},
    [CBFFI_EINTERNAL] = {"Internal error", INT},
    [CBFFI_EINVAL] = {"Invalid argument", IN},
    [CBFFI_ENOMEM] = {"Server out of memory", TMP | LOAD},
    [CBFFI_ERANGE] = {"Invalid range", IN | DAT | SRV},
    [CBFFI_ERROR] = {"Generic error", 0},
    [CBFFI_ETMPFAIL] = {"Temporary failure on the server; try again later", TMP | LOAD | SRV},
    [CBFFI_KEY_EEXISTS] = {"The key already exists (or the CAS did not match)", DAT | SRV},
    [CBFFI_KEY_ENOENT] = {"The key does not exist", DAT | SRV},
    [CBFFI_NETWORK_ERROR] = {"Network error: the connection failed", NET},
    [CBFFI_NOT_MY_VBUCKET] = {"The server does not own this key's vbucket", NET | TMP | SRV},
    [CBFFI_NOT_STORED] = {"Item not stored (append/prepend to a missing key?)", DAT | SRV},
    [CBFFI_NOT_SUPPORTED] = {"Operation not supported", 0},
    [CBFFI_UNKNOWN_COMMAND] = {"Unknown command", SRV},
    [CBFFI_UNKNOWN_HOST] = {"Host name lookup failed", NET | IN},
    [CBFFI_PROTOCOL_ERROR] = {"Protocol error: malformed data from the server", NET},
    [CBFFI_ETIMEDOUT] = {"Client-side timeout exceeded", NET | TMP},
    [CBFFI_CONNECT_ERROR] = {"Could not connect to the server", NET},
    [CBFFI_BUCKET_ENOENT] = {"The bucket does not exist", IN | FAT},
    [CBFFI_CLIENT_ENOMEM] = {"Client out of memory", FAT},
    [CBFFI_CLIENT_ENOCONF] = {"Client not connected yet", TMP},
    [CBFFI_EBADHANDLE] = {"Bad handle: the client is closed or unusable", IN},
    [CBFFI_INVALID_HOST_FORMAT] = {"Invalid host in the connection string", IN},
    [CBFFI_DURABILITY_ETOOMANY] = {"Durability requirements exceed the configured replicas", IN},
    [CBFFI_DUPLICATE_COMMANDS] = {"The same key was given more than once", IN},
    [CBFFI_NO_MATCHING_SERVER] = {"No server owns the key's vbucket now", TMP},
    [CBFFI_SASLMECH_UNAVAILABLE] = {"The requested SASL mechanism is not offered by the server", IN | FAT},
    [CBFFI_ECONNREFUSED] = {"Connection refused", NET | TMP},
    [CBFFI_ESOCKSHUTDOWN] = {"The server closed the connection", NET | TMP},
    [CBFFI_ECONNRESET] = {"Connection reset by the server", NET | TMP},
    [CBFFI_EMPTY_KEY] = {"An empty key was passed", IN},
    [CBFFI_UNKNOWN_MEMCACHED_ERROR] = {"Unknown server status", SRV},
    [CBFFI_HTTP_ERROR] = {"HTTP request failed: see the HTTP status and body", IN | SRV},
    [CBFFI_MUTATION_LOST] = {"The mutation was lost in a failover", 0},
    [CBFFI_SUBDOC_PATH_ENOENT] = {"Sub-document path does not exist", DAT | SRV},
    [CBFFI_SUBDOC_PATH_MISMATCH] = {"Sub-document path does not match the document's structure", DAT | SRV},
    [CBFFI_SUBDOC_PATH_EINVAL] = {"Invalid sub-document path", IN | SRV},
    [CBFFI_SUBDOC_PATH_E2BIG] = {"Sub-document path too long or too deep", IN | SRV},
    [CBFFI_SUBDOC_DOC_E2DEEP] = {"The document is too deep for sub-document operations", DAT | SRV},
    [CBFFI_SUBDOC_VALUE_CANTINSERT] = {"The value cannot be inserted at the path", IN | SRV},
    [CBFFI_SUBDOC_DOC_NOTJSON] = {"The document is not JSON", DAT | SRV},
    [CBFFI_SUBDOC_NUM_ERANGE] = {"The number at the path is out of range", DAT | SRV},
    [CBFFI_SUBDOC_BAD_DELTA] = {"Invalid counter delta", IN | SRV},
    [CBFFI_SUBDOC_PATH_EEXISTS] = {"Sub-document path already exists", DAT | SRV},
    [CBFFI_SUBDOC_MULTI_FAILURE] = {"One or more sub-document specs failed", DAT | SRV},
    [CBFFI_SUBDOC_VALUE_E2DEEP] = {"The value would make the document too deep", IN | SRV},
    [CBFFI_EMPTY_PATH] = {"An empty sub-document path was given", IN},
    [CBFFI_UNKNOWN_SDCMD] = {"Not a sub-document command of this kind", IN},
    [CBFFI_ENO_COMMANDS] = {"No sub-document specs were given", IN},
};

enum { RC_TABLE_N = sizeof(rc_table) / sizeof(rc_table[0]) };

const char *cbffi_strerror(int rc)
{
    if (rc >= 0 && rc < RC_TABLE_N && rc_table[rc].msg)
        return rc_table[rc].msg;
    return "Unknown error code";
}

uint32_t cbffi_errflags(int rc)
{
    if (rc >= 0 && rc < RC_TABLE_N && rc_table[rc].msg)
        return rc_table[rc].flags;
    return 0;
}

/* Server status -> rc; 0 in the table means "no mapping". */
static const uint8_t status_table[256] = {
    [CB_ST_SUCCESS] = CBFFI_OK,
    [CB_ST_KEY_ENOENT] = CBFFI_KEY_ENOENT,
    [CB_ST_KEY_EEXISTS] = CBFFI_KEY_EEXISTS,
    [CB_ST_E2BIG] = CBFFI_E2BIG,
    [CB_ST_EINVAL] = CBFFI_EINVAL,
    [CB_ST_NOT_STORED] = CBFFI_NOT_STORED,
    [CB_ST_DELTA_BADVAL] = CBFFI_DELTA_BADVAL,
    [CB_ST_NOT_MY_VBUCKET] = CBFFI_NOT_MY_VBUCKET,
    [CB_ST_NO_BUCKET] = CBFFI_BUCKET_ENOENT,
    [CB_ST_LOCKED] = CBFFI_ETMPFAIL,
    [CB_ST_NOT_LOCKED] = CBFFI_ETMPFAIL,
    [CB_ST_AUTH_STALE] = CBFFI_AUTH_ERROR,
    [CB_ST_AUTH_ERROR] = CBFFI_AUTH_ERROR,
    [CB_ST_AUTH_CONTINUE] = CBFFI_AUTH_CONTINUE,
    [CB_ST_ERANGE] = CBFFI_ERANGE,
    [CB_ST_EACCESS] = CBFFI_AUTH_ERROR,
    [CB_ST_NOT_INITIALIZED] = CBFFI_ETMPFAIL,
    [CB_ST_UNKNOWN_COMMAND] = CBFFI_UNKNOWN_COMMAND,
    [CB_ST_ENOMEM] = CBFFI_ENOMEM,
    [CB_ST_NOT_SUPPORTED] = CBFFI_NOT_SUPPORTED,
    [CB_ST_EINTERNAL] = CBFFI_EINTERNAL,
    [CB_ST_EBUSY] = CBFFI_EBUSY,
    [CB_ST_ETMPFAIL] = CBFFI_ETMPFAIL,
    [CB_ST_DURABILITY_IMPOSSIBLE] = CBFFI_DURABILITY_ETOOMANY,
    [CB_ST_SYNC_WRITE_IN_PROGRESS] = CBFFI_ETMPFAIL,
    [0xc0] = CBFFI_SUBDOC_PATH_ENOENT,
    [0xc1] = CBFFI_SUBDOC_PATH_MISMATCH,
    [0xc2] = CBFFI_SUBDOC_PATH_EINVAL,
    [0xc3] = CBFFI_SUBDOC_PATH_E2BIG,
    [0xc4] = CBFFI_SUBDOC_DOC_E2DEEP,
    [0xc5] = CBFFI_SUBDOC_VALUE_CANTINSERT,
    [0xc6] = CBFFI_SUBDOC_DOC_NOTJSON,
    [0xc7] = CBFFI_SUBDOC_NUM_ERANGE,
    [0xc8] = CBFFI_SUBDOC_BAD_DELTA,
    [0xc9] = CBFFI_SUBDOC_PATH_EEXISTS,
    [0xca] = CBFFI_SUBDOC_VALUE_E2DEEP,
    [0xcb] = CBFFI_EINVAL,                  /* INVALID_COMBO */
    [0xcc] = CBFFI_SUBDOC_MULTI_FAILURE,    /* MULTI_PATH_FAILURE */
};

int cb_status_to_rc(uint16_t status, int is_mutation)
{
    if (status == CB_ST_SUCCESS)
        return CBFFI_OK;
    if (status == CB_ST_LOCKED && is_mutation)
        return CBFFI_KEY_EEXISTS;
    if (status < 256 && status_table[status] != 0)
        return status_table[status];
    return CBFFI_UNKNOWN_MEMCACHED_ERROR;
}
