"""The FFI contract check: cffi's cdef() must accept include/cbffi.h after
removing only its #include lines, include guard and #endif - nothing else.
Run with Debian's python3 (python3-cffi)."""
import re
import sys

import cffi

path = sys.argv[1]
keep, dropped = [], []
for line in open(path):
    if re.match(r"\s*#\s*(include\b|ifndef\s+CBFFI_H\b|define\s+CBFFI_H\b|endif\b)", line):
        dropped.append(line.strip())
    else:
        keep.append(line)
leftover = [l.strip() for l in keep if l.lstrip().startswith("#")]
if leftover:
    sys.exit("preprocessor lines cdef cannot take remain: %r" % leftover)
ffi = cffi.FFI()
ffi.cdef("".join(keep))
# Everything a binding needs is visible: functions, the result struct, enums.
needed = ["cbffi_client_create", "cbffi_get", "cbffi_store", "cbffi_wait",
          "cbffi_harvest", "cbffi_strerror", "cbffi_errflags", "cbffi_io_event",
          "cbffi_io_watches"]
decls = ffi.list_types()
lib_funcs = [n for n in needed if n not in "".join(keep)]
if lib_funcs:
    sys.exit("missing declarations: %r" % lib_funcs)
assert "cbffi_result" in decls[0], decls
assert ffi.sizeof("cbffi_result") % 8 == 0
print("cdef accepted %s (%d lines; removed only: %s); sizeof(cbffi_result)=%d"
      % (path, len(keep), ", ".join(dropped), ffi.sizeof("cbffi_result")))
