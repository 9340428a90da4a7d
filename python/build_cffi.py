"""Build the couchbase_ffi._cbffi extension (cffi, out-of-line API mode).

The extension compiles libcbffi's C sources in (one .so, no separate library
needed at run time).  The cdef is include/cbffi.h itself, minus its #include
lines, include guard and final #endif: the header is written for that.

Used by setup.py (``cffi_modules``) and by ``python build_cffi.py --inplace``,
which builds the extension next to the package for the running interpreter.
Not imported at run time.
"""
import os
import re
import sys

import cffi

HERE = os.path.dirname(os.path.abspath(__file__))


def _find_root():
    # In a source checkout the C sources are one level up (always preferred,
    # so a stale csrc/ copy can never hide changes); in an sdist they are
    # copied under python/csrc by setup.py.
    for root in (os.path.dirname(HERE), os.path.join(HERE, "csrc")):
        if os.path.exists(os.path.join(root, "include", "cbffi.h")):
            return root
    raise RuntimeError("cannot find include/cbffi.h")


ROOT = _find_root()
HEADER = os.path.join(ROOT, "include", "cbffi.h")
_STRIP = re.compile(r"^\s*#\s*(include\b|ifndef\s+CBFFI_H\b|define\s+CBFFI_H\b|endif\b)")


def cdef_text(path=HEADER):
    """The header as cdef() takes it: only #include/guard/#endif lines removed."""
    with open(path) as f:
        return "".join(line for line in f if not _STRIP.match(line))


def c_sources(relative=False):
    """libcbffi's sources, as listed in CMakeLists.txt (one source of truth).

    setuptools wants paths relative to setup.py; ffi.compile() (which changes
    directory) wants absolute ones."""
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        text = f.read()
    block = re.search(r"set\(CBFFI_SOURCES(.*?)\)", text, re.S).group(1)
    paths = [os.path.join(ROOT, s) for s in block.split()]
    return [os.path.relpath(p, HERE) for p in paths] if relative else paths


def make_ffi(relative=False):
    ffi = cffi.FFI()
    ffi.cdef(cdef_text())
    ffi.set_source(
        "couchbase_ffi._cbffi",
        '#include "cbffi.h"\n',
        sources=c_sources(relative),
        include_dirs=[os.path.join(ROOT, "include"), os.path.join(ROOT, "src")],
        define_macros=[("_GNU_SOURCE", "1")],
        extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wno-unused-function"],
        libraries=["crypto", "json-c", "z", "curl", "pthread"],
    )
    return ffi


# setuptools (setup.py's cffi_modules) builds from here: relative paths
ffibuilder = make_ffi(relative=__name__ != "__main__")

if __name__ == "__main__":
    if "--inplace" in sys.argv:
        ffibuilder = make_ffi(relative=False)
        ffibuilder.compile(tmpdir=os.path.join(HERE, "build", "cffi-%s" % sys.implementation.cache_tag),
                           verbose=False)
        # compile() writes into tmpdir/couchbase_ffi/; move the .so next to the package
        import glob
        import shutil
        built = glob.glob(os.path.join(HERE, "build", "cffi-%s" % sys.implementation.cache_tag,
                                       "couchbase_ffi", "_cbffi*.so"))
        for so in built:
            shutil.copy2(so, os.path.join(HERE, "couchbase_ffi", os.path.basename(so)))
            print(os.path.join("python", "couchbase_ffi", os.path.basename(so)))
    else:
        print(cdef_text())
