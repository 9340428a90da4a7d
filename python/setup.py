"""Build the cffi extension (libcbffi compiled in) while installing.

The C sources live at the repository root; they are copied into ``csrc/``
first so that a build outside the checkout (an sdist) finds them too;
build_cffi.py looks there before looking one level up.
"""
import os
import shutil

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def vendor_sources():
    if not os.path.exists(os.path.join(ROOT, "include", "cbffi.h")):
        return  # an sdist: already vendored
    dst = os.path.join(HERE, "csrc")
    for sub in ("include", "src"):
        shutil.rmtree(os.path.join(dst, sub), ignore_errors=True)
        shutil.copytree(os.path.join(ROOT, sub), os.path.join(dst, sub))
    shutil.copy2(os.path.join(ROOT, "CMakeLists.txt"), dst)


vendor_sources()
setup(cffi_modules=["build_cffi.py:ffibuilder"])
