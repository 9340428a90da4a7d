"""Names couchbase 2.x kept for code shared between Python 2 and 3, reachable as
``couchbase._pyport`` after ``install_as_couchbase()``: on Python 3 they are the
built-ins that replaced them."""
import urllib.parse as ulp

long = int
xrange = range
basestring = str
unicode = str

__all__ = ["ulp", "long", "xrange", "basestring", "unicode"]
