"""Results, with the couchbase 2.x classes and attributes.

``Result`` (key, rc, success, errstr), ``OperationResult`` (+ cas),
``ValueResult`` (+ value, flags) and ``MultiResult`` (a dict of key ->
result with ``all_ok``).  Slotted: one is built per operation.
"""


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
        from couchbase_ffi.exceptions import strerror
        return strerror(self.rc)

    def __repr__(self):
        fields = ["RC=0x%X" % self.rc, "Key=%r" % (self.key,)] + self._repr_fields()
        return "%s<%s>" % (type(self).__name__, ", ".join(fields))

    def _repr_fields(self):
        return []


class OperationResult(Result):
    __slots__ = ("cas",)

    def __init__(self, key=None, rc=0, cas=0):
        self.key = key
        self.rc = rc
        self.cas = cas

    def _repr_fields(self):
        return ["CAS=0x%x" % self.cas]


class ValueResult(OperationResult):
    __slots__ = ("value", "flags")

    def __init__(self, key=None, rc=0, cas=0, value=None, flags=0):
        self.key = key
        self.rc = rc
        self.cas = cas
        self.value = value
        self.flags = flags

    def _repr_fields(self):
        return ["Value=%r" % (self.value,), "CAS=0x%x" % self.cas, "Flags=0x%x" % self.flags]


class MultiResult(dict):
    """key -> result of a ``*_multi`` call; ``all_ok`` is True if every one succeeded."""

    def __init__(self, *args, **kwargs):
        dict.__init__(self, *args, **kwargs)
        self.all_ok = True

    def __hash__(self):
        return id(self)
