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
        # 2.x's form: ValueResult<rc=0x0, key='k', value=1, cas=0x1a2b, flags=0x2000000>
        rc = "rc=0x%X" % self.rc
        if self.rc:
            rc += "[%s]" % (self.errstr,)
        fields = [rc, "key=%r" % (self.key,)] + self._repr_fields()
        return "%s<%s>" % (type(self).__name__, ", ".join(fields))

    def _repr_fields(self):
        return []


class OperationResult(Result):
    __slots__ = ("cas", "_mt")

    def __init__(self, key=None, rc=0, cas=0):
        self.key = key
        self.rc = rc
        self.cas = cas

    def _repr_fields(self):
        return ["cas=0x%x" % self.cas]

    # -- mutation tokens (2.x: ``rv._mutinfo``) --------------------------------------------
    @property
    def _mutinfo(self):
        """The mutation token, ``(vbucket, vbucket uuid, seqno, bucket name)``, of a
        successful mutation on a couchbase:// bucket opened with
        ``fetch_mutation_tokens=true``; None otherwise (a read, a failure, tokens
        not asked for, memcached)."""
        try:
            return self._mt
        except AttributeError:
            return None
    # -- end of mutation tokens


class ValueResult(OperationResult):
    __slots__ = ("value", "flags")

    def __init__(self, key=None, rc=0, cas=0, value=None, flags=0):
        self.key = key
        self.rc = rc
        self.cas = cas
        self.value = value
        self.flags = flags

    def _repr_fields(self):
        return ["value=%r" % (self.value,), "cas=0x%x" % self.cas, "flags=0x%x" % self.flags]


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
            _OBS_NAMES.get(self.flags, ""), self.flags, self.from_master, self.cas)


OBS_FOUND, OBS_PERSISTED, OBS_NOTFOUND, OBS_LOGICALLY_DELETED = 0x00, 0x01, 0x80, 0x81
OBS_MASK = OBS_PERSISTED | OBS_FOUND | OBS_NOTFOUND  # 0x81, as in 2.x
_OBS_NAMES = {OBS_FOUND: "OBS_FOUND", OBS_PERSISTED: "OBS_PERSISTED",
              OBS_NOTFOUND: "OBS_NOTFOUND", OBS_LOGICALLY_DELETED: "OBS_LOGICALLY_DELETED"}


class HttpResult(Result):
    """The 2.x result of an HTTP request: design documents (``value`` the decoded
    document) and management calls (couchbase_ffi.admin).  ``http_status``, ``url``;
    ``success`` is True for a 2xx answer."""
    __slots__ = ("value", "http_status", "url", "headers", "done")

    def __init__(self, key=None, rc=0, value=None, http_status=0, url=None):
        self.key = key
        self.rc = rc
        self.value = value
        self.http_status = http_status
        self.url = url
        self.headers = None
        self.done = True

    @property
    def success(self):
        return self.rc == 0 and (not self.http_status or 200 <= self.http_status < 300)


def __getattr__(name):
    # 2.x had SubdocResult here; it lives in couchbase_ffi.subdocument (which imports this)
    if name == "SubdocResult":
        from couchbase_ffi.subdocument import SubdocResult
        return SubdocResult
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
