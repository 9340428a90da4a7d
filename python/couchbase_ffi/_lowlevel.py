"""The compiled binding: exports only ``ffi`` and ``lib``."""
from couchbase_ffi._cbffi import ffi, lib  # noqa: F401

__all__ = ["ffi", "lib"]
