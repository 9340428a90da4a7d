"""The constants of 2.x's ``couchbase.user_constants`` (also exported by
``couchbase``, ``couchbase.bucket``): value formats, observe states, lock modes."""
from couchbase_ffi.transcoder import (  # noqa: F401
    FMT_JSON, FMT_BYTES, FMT_UTF8, FMT_PICKLE, FMT_AUTO, FMT_MASK, FMT_LEGACY_MASK,
    FMT_COMMON_MASK)
from couchbase_ffi.result import (  # noqa: F401
    OBS_PERSISTED, OBS_FOUND, OBS_NOTFOUND, OBS_LOGICALLY_DELETED, OBS_MASK)
from couchbase_ffi.bucket import LOCKMODE_WAIT, LOCKMODE_EXC, LOCKMODE_NONE  # noqa: F401
