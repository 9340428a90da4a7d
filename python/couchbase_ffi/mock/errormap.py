"""The error map returned by GET_ERROR_MAP (shape of kv_engine's error_map_v*.json)."""
import json

# code: (name, description, attributes)
_ERRORS = {
    0x00: ("SUCCESS", "Success", ["success"]),
    0x01: ("KEY_ENOENT", "Not Found", ["item-only"]),
    0x02: ("KEY_EEXISTS", "key already exists, or CAS mismatch", ["item-only"]),
    0x03: ("E2BIG", "Value is too big", ["item-only", "invalid-input"]),
    0x04: ("EINVAL", "Invalid packet", ["internal", "invalid-input"]),
    0x05: ("NOT_STORED", "Not stored", ["item-only"]),
    0x06: ("DELTA_BADVAL", "Existing document not a number", ["item-only", "invalid-input"]),
    0x07: ("NOT_MY_VBUCKET", "Server does not know about this vBucket", ["fetch-config", "invalid-input"]),
    0x08: ("NO_BUCKET", "Not connected to a bucket", ["conn-state-invalidated"]),
    0x09: ("LOCKED", "Requested resource is locked", ["item-locked", "item-only", "retry-now"]),
    0x0e: ("NOT_LOCKED", "Requested resource is not locked", ["item-only"]),
    0x1f: ("AUTH_STALE", "Reauthentication required", ["conn-state-invalidated", "auth"]),
    0x20: ("AUTH_ERROR", "Authentication failed", ["conn-state-invalidated", "auth"]),
    0x21: ("AUTH_CONTINUE", "Continue authentication", ["special-handling", "auth"]),
    0x22: ("ERANGE", "Range error", ["invalid-input"]),
    0x24: ("EACCESS", "No access", ["conn-state-invalidated", "auth"]),
    0x25: ("NOT_INITIALIZED", "Connection not initialized", ["conn-state-invalidated", "auth"]),
    0x80: ("UNKNOWN_FRAME_INFO", "Unknown frame info", ["support", "invalid-input"]),
    0x81: ("UNKNOWN_COMMAND", "Unknown command", ["support"]),
    0x82: ("ENOMEM", "Out of memory", ["temp", "retry-later"]),
    0x83: ("NOT_SUPPORTED", "Not supported", ["support"]),
    0x84: ("EINTERNAL", "Internal error", ["internal"]),
    0x85: ("EBUSY", "Server too busy", ["temp", "retry-now"]),
    0x86: ("ETMPFAIL", "Temporary failure", ["temp", "retry-now"]),
}


def error_map_json(version):
    """The error map for a client that understands up to ``version`` (1 or 2)."""
    errors = {}
    for code, (name, desc, attrs) in sorted(_ERRORS.items()):
        errors["%x" % code] = {"name": name, "desc": desc, "attrs": attrs}
    return json.dumps({"version": min(int(version), 2), "revision": 1, "errors": errors},
                      separators=(",", ":"))
