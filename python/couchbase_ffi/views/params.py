"""View query parameters with the couchbase 2.x API (``couchbase.views.params``).

``Query(**params)`` keeps the parameters as given (read them back as
attributes) and their encoded forms: JSON for ``key``, ``keys``,
``startkey``, ``endkey``; "true"/"false" for the booleans; decimal for
``limit``, ``skip``, ``group_level``, ``connection_timeout``; ``stale`` one of
STALE_OK ("ok"), STALE_UPDATE_BEFORE ("false"), STALE_UPDATE_AFTER
("update_after") or a boolean (True is "ok"); ``on_error`` "continue" or
"stop".  A bad value, an unknown name, or a range given together with its
ends is :class:`ArgumentError` at once, before anything is sent.
``mapkey_range=[start, end]`` sets ``startkey``/``endkey``,
``dockey_range`` ``startkey_docid``/``endkey_docid``; ``mapkey_single`` is
``key`` and ``mapkey_multi`` ``keys``.  ``passthrough=True`` sends the values
as given (strings); ``unrecognized_ok=True`` lets unknown names through.
``encoded`` is the query string.
"""
import copy as _copy
import json
from urllib.parse import quote

from couchbase_ffi.exceptions import ArgumentError

STALE_UPDATE_BEFORE = "false"
STALE_UPDATE_AFTER = "update_after"
STALE_OK = "ok"
ONERROR_CONTINUE = "continue"
ONERROR_STOP = "stop"


class _Unspec(object):
    """The "not set" marker (false, empty string)."""

    def __bool__(self):
        return False

    __nonzero__ = __bool__

    def __str__(self):
        return ""

    def __repr__(self):
        return "<Placeholder>"

    def __deepcopy__(self, memo):
        return self


UNSPEC = _Unspec()


def _as_bool(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        if v in ("true", "false"):
            return v
        raise ArgumentError.pyexc("a boolean view parameter given as a string must be "
                                  "'true' or 'false'", v)
    if isinstance(v, (int, float)):
        return "true" if v else "false"
    raise ArgumentError.pyexc("a boolean view parameter takes a bool, a number or "
                              "'true'/'false'", v)


def _as_num(v):
    if isinstance(v, bool):
        raise ArgumentError.pyexc("a numeric view parameter does not take a bool", v)
    try:
        return str(int(v))
    except (TypeError, ValueError) as e:
        raise ArgumentError.pyexc("a numeric view parameter takes a number", v, e)


def _as_str(v):
    if isinstance(v, bool):
        raise ArgumentError.pyexc("a string view parameter does not take a bool", v)
    if isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return str(v)
    raise ArgumentError.pyexc("a string view parameter takes a string or a number", v)


def _as_json(v):
    try:
        return json.dumps(v)
    except (TypeError, ValueError) as e:
        raise ArgumentError.pyexc("this view parameter's value cannot be encoded as JSON",
                                  v, e)


def _as_json_array(v):
    s = _as_json(v)
    if not s.startswith("["):
        raise ArgumentError.pyexc("this view parameter takes a list (a JSON array)", v)
    return s


def _as_stale(v):
    if v in (STALE_OK, STALE_UPDATE_AFTER, STALE_UPDATE_BEFORE):
        return v
    b = _as_bool(v)
    return STALE_OK if b == "true" else b


def _as_onerror(v):
    if v not in (ONERROR_CONTINUE, ONERROR_STOP):
        raise ArgumentError.pyexc("on_error takes 'continue' or 'stop'", v)
    return v


class Params(object):
    """The parameter names."""
    DESCENDING = "descending"
    STARTKEY = "startkey"
    STARTKEY_DOCID = "startkey_docid"
    ENDKEY = "endkey"
    ENDKEY_DOCID = "endkey_docid"
    KEY = "key"
    KEYS = "keys"
    INCLUSIVE_END = "inclusive_end"
    GROUP = "group"
    GROUP_LEVEL = "group_level"
    REDUCE = "reduce"
    SKIP = "skip"
    LIMIT = "limit"
    ON_ERROR = "on_error"
    STALE = "stale"
    DEBUG = "debug"
    CONNECTION_TIMEOUT = "connection_timeout"
    FULL_SET = "full_set"
    MAPKEY_SINGLE = "mapkey_single"
    MAPKEY_MULTI = "mapkey_multi"
    MAPKEY_RANGE = "mapkey_range"
    DOCKEY_RANGE = "dockey_range"


_ENCODERS = {
    Params.DESCENDING: _as_bool, Params.STARTKEY: _as_json, Params.STARTKEY_DOCID: _as_str,
    Params.ENDKEY: _as_json, Params.ENDKEY_DOCID: _as_str, Params.FULL_SET: _as_bool,
    Params.GROUP: _as_bool, Params.GROUP_LEVEL: _as_num, Params.INCLUSIVE_END: _as_bool,
    Params.KEY: _as_json, Params.KEYS: _as_json_array, Params.ON_ERROR: _as_onerror,
    Params.REDUCE: _as_bool, Params.STALE: _as_stale, Params.SKIP: _as_num,
    Params.LIMIT: _as_num, Params.DEBUG: _as_bool, Params.CONNECTION_TIMEOUT: _as_num,
}


def _plain(name):
    def get(self):
        return self._get(name)

    def put(self, value):
        self._set(name, value)
    return property(get, put, doc="The %r view parameter." % (name,))


def _range(sugar, start, end):
    def get(self):
        return self._given.get(sugar, UNSPEC)

    def put(self, value):
        self._set_range(sugar, start, end, value)
    return property(get, put, doc="%s and %s as one [start, end] list." % (start, end))


class Query(object):
    """A set of view parameters (see the module's documentation)."""

    STRING_RANGE_END = json.loads('"\\u0FFF"')

    descending = _plain(Params.DESCENDING)
    startkey = _plain(Params.STARTKEY)
    endkey = _plain(Params.ENDKEY)
    startkey_docid = _plain(Params.STARTKEY_DOCID)
    endkey_docid = _plain(Params.ENDKEY_DOCID)
    keys = _plain(Params.KEYS)
    key = _plain(Params.KEY)
    inclusive_end = _plain(Params.INCLUSIVE_END)
    skip = _plain(Params.SKIP)
    limit = _plain(Params.LIMIT)
    on_error = _plain(Params.ON_ERROR)
    stale = _plain(Params.STALE)
    debug = _plain(Params.DEBUG)
    connection_timeout = _plain(Params.CONNECTION_TIMEOUT)
    full_set = _plain(Params.FULL_SET)
    reduce = _plain(Params.REDUCE)
    group = _plain(Params.GROUP)
    group_level = _plain(Params.GROUP_LEVEL)
    mapkey_single = _plain(Params.KEY)
    mapkey_multi = _plain(Params.KEYS)
    mapkey_range = _range(Params.MAPKEY_RANGE, Params.STARTKEY, Params.ENDKEY)
    dockey_range = _range(Params.DOCKEY_RANGE, Params.STARTKEY_DOCID, Params.ENDKEY_DOCID)

    def __init__(self, passthrough=False, unrecognized_ok=False, **params):
        self.passthrough = passthrough
        self.unrecognized_ok = unrecognized_ok
        self._wire = {}      # name -> encoded value, in setting order
        self._given = {}     # name -> the value as given
        self._extra = {}     # unrecognized names (unrecognized_ok)
        self._base_str = ""
        self.update(**params)

    # -- setting ----------------------------------------------------------------------------
    def _set(self, name, value, keep_given=True):
        if value is UNSPEC:
            self._wire.pop(name, None)
            if keep_given:
                self._given.pop(name, None)
            return
        enc = _ENCODERS.get(name)
        if enc is None:
            if not self.unrecognized_ok:
                raise ArgumentError.pyexc("unknown view parameter %r (set unrecognized_ok "
                                          "to send it anyway)" % (name,), name)
            self._extra[name] = _as_str(value)
            return
        self._wire[name] = _as_str(value) if self.passthrough else enc(value)
        if keep_given:
            self._given[name] = value

    def _get(self, name):
        if name in self._given:
            return self._given[name]
        return self._wire.get(name, UNSPEC)

    def _set_range(self, sugar, start, end, value):
        if not isinstance(value, (list, tuple, _Unspec)):
            raise ArgumentError.pyexc("%s takes a list or tuple of one or two values"
                                      % (sugar,), value)
        if self._given.get(start, UNSPEC) is not UNSPEC or \
                self._given.get(end, UNSPEC) is not UNSPEC:
            raise ArgumentError.pyexc("%s cannot be given with %s or %s" % (sugar, start, end))
        if not value:
            self._set(start, UNSPEC, keep_given=False)
            self._set(end, UNSPEC, keep_given=False)
            self._given[sugar] = UNSPEC
            return
        if len(value) not in (1, 2):
            raise ArgumentError.pyexc("%s takes one or two values" % (sugar,), value)
        value = list(value)
        self._set(start, value[0], keep_given=False)
        self._set(end, value[1] if len(value) == 2 else UNSPEC, keep_given=False)
        self._given[sugar] = value

    def update(self, copy=False, **params):
        """Set more parameters (on a copy with ``copy=True``); returns the Query."""
        q = _copy.deepcopy(self) if copy else self
        for k, v in params.items():
            if isinstance(getattr(type(q), k, None), property):
                setattr(q, k, v)
            elif not q.unrecognized_ok:
                raise ArgumentError.pyexc("unknown view parameter %r" % (k,), k)
            else:
                q._set(k, v)
        return q

    @classmethod
    def from_any(cls, params):
        """A new Query from a Query (copied), a dict of parameters, or a string (sent
        before the other parameters, as it is)."""
        if isinstance(params, cls):
            return _copy.deepcopy(params)
        if isinstance(params, dict):
            return cls(**params)
        if isinstance(params, str):
            q = cls()
            q._base_str = params
            return q
        raise ArgumentError.pyexc("view parameters are a Query, a dict or a string", params)

    # -- encoding ---------------------------------------------------------------------------
    def _pairs(self, skip=()):
        out = []
        for k, v in self._wire.items():
            if k in skip:
                continue
            if self.passthrough:
                out.append("%s=%s" % (k, v))
            else:
                out.append("%s=%s" % (quote(k, safe=""), quote(v, safe="")))
        for k, v in self._extra.items():
            out.append("%s=%s" % (quote(k, safe=""), quote(v, safe="")))
        if self._base_str:
            out.insert(0, self._base_str)
        return "&".join(out)

    @property
    def encoded(self):
        """The query string (without the leading '?')."""
        return self._pairs()

    @property
    def has_blob(self):
        """True when the query holds values this class did not check."""
        return bool(self._base_str or self.unrecognized_ok or self.passthrough)

    def __repr__(self):
        return "Query:'%s'" % (self.encoded,)


def make_options_string(params, unrecognized_ok=False):
    """The query string of a dict of parameters (2.x's helper)."""
    if not isinstance(params, Query):
        params = Query(unrecognized_ok=unrecognized_ok, **params)
    return params.encoded


def make_dvpath(doc, view):
    return "_design/%s/_view/%s?" % (doc, view)
