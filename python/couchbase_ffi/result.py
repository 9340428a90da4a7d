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


class ObserveInfo(object):
    """What one node said about a key (:meth:`Bucket.observe`): ``flags`` is the
    key state (OBS_FOUND 0x00, OBS_PERSISTED 0x01, OBS_NOTFOUND 0x80,
    OBS_LOGICALLY_DELETED 0x81), ``cas`` the node's CAS, ``from_master`` True
    for the active copy, ``ttp``/``ttr`` the server's persist/replicate time
    estimates (ms)."""
    __slots__ = ("flags", "cas", "from_master", "ttp", "ttr")

    def __init__(self, flags=0, cas=0, from_master=False, ttp=0, ttr=0):
        self.flags = flags
        self.cas = cas
        self.from_master = from_master
        self.ttp = ttp
        self.ttr = ttr

    def __repr__(self):
        return "ObserveInfo<Status=[%s (0x%X)], Master=%s, CAS=0x%X>" % (
            _OBS_NAMES.get(self.flags, "?"), self.flags, self.from_master, self.cas)


OBS_FOUND, OBS_PERSISTED, OBS_NOTFOUND, OBS_LOGICALLY_DELETED = 0x00, 0x01, 0x80, 0x81
_OBS_NAMES = {OBS_FOUND: "OBS_FOUND", OBS_PERSISTED: "OBS_PERSISTED",
              OBS_NOTFOUND: "OBS_NOTFOUND", OBS_LOGICALLY_DELETED: "OBS_LOGICALLY_DELETED"}
