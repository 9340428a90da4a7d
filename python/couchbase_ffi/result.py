"""Results, with the couchbase 2.x attributes."""
from couchbase_ffi._lowlevel import ffi, lib


class Result(object):
    __slots__ = ("key", "rc")

    def __init__(self, key=None, rc=0):
        self.key = key
        self.rc = rc

    @property
    def success(self):
        return self.rc == 0

    @property
    def errstr(self):
        return ffi.string(lib.cbffi_strerror(self.rc)).decode()

    def __repr__(self):
        return "%s<rc=0x%X, key=%r%s>" % (type(self).__name__, self.rc, self.key, self._extra())

    def _extra(self):
        return ""


class OperationResult(Result):
    __slots__ = ("cas",)

    def __init__(self, key=None, rc=0, cas=0):
        Result.__init__(self, key, rc)
        self.cas = cas

    def _extra(self):
        return ", cas=0x%X" % self.cas


class ValueResult(OperationResult):
    __slots__ = ("value", "flags")

    def __init__(self, key=None, rc=0, cas=0, value=None, flags=0):
        self.key = key  # flat, not chained: this runs once per get
        self.rc = rc
        self.cas = cas
        self.value = value
        self.flags = flags

    def _extra(self):
        return ", value=%r, cas=0x%X, flags=0x%X" % (self.value, self.cas, self.flags)


class MultiResult(dict):
    """key -> result for ``*_multi`` calls; ``all_ok`` is True if every one succeeded."""

    def __init__(self, *args, **kwargs):
        dict.__init__(self, *args, **kwargs)
        self.all_ok = True
