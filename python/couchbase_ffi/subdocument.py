"""couchbase 2.x ``couchbase.subdocument``: the spec constructors for
:meth:`Bucket.lookup_in` / :meth:`Bucket.mutate_in`, and ``SubdocResult``.

A spec is a tuple, as in 2.x: ``(command, path, flags)`` for lookups and
``remove``, ``(command, path, flags, value)`` for the mutations that take a
value, with libcouchbase's command numbers (``LCB_SDCMD_*``) and spec flags
(``SDSPEC_F_MKDIR_P``).  Values are JSON-encoded with the converter
``couchbase.set_json_converters`` installed; ``MultiValue`` (the
``array_*`` functions' ``*values``) sends several values as one.

Extended attributes (``xattr=True``) are not implemented: asking for them
raises NotSupportedError.
"""
from couchbase_ffi import exceptions as E
from couchbase_ffi.result import OperationResult

# libcouchbase 2.x lcb_SUBDOCOP
LCB_SDCMD_GET = 1
LCB_SDCMD_EXISTS = 2
LCB_SDCMD_REPLACE = 3
LCB_SDCMD_DICT_ADD = 4
LCB_SDCMD_DICT_UPSERT = 5
LCB_SDCMD_ARRAY_ADD_FIRST = 6
LCB_SDCMD_ARRAY_ADD_LAST = 7
LCB_SDCMD_ARRAY_ADD_UNIQUE = 8
LCB_SDCMD_ARRAY_INSERT = 9
LCB_SDCMD_COUNTER = 10
LCB_SDCMD_REMOVE = 11
LCB_SDCMD_GET_COUNT = 12
SDCMD_GET_COUNT = LCB_SDCMD_GET_COUNT   # 2.x's priv_constants name

# libcouchbase 2.x spec flags
SDSPEC_F_MKDIR_P = 1 << 16
SDSPEC_F_XATTR = 1 << 18
SDSPEC_F_EXPANDMACROS = 1 << 19

# command -> (wire opcode, is a lookup)
_WIRE = {
    LCB_SDCMD_GET: (0xc5, True), LCB_SDCMD_EXISTS: (0xc6, True),
    LCB_SDCMD_GET_COUNT: (0xd2, True), LCB_SDCMD_REPLACE: (0xca, False),
    LCB_SDCMD_DICT_ADD: (0xc7, False), LCB_SDCMD_DICT_UPSERT: (0xc8, False),
    LCB_SDCMD_ARRAY_ADD_FIRST: (0xcc, False), LCB_SDCMD_ARRAY_ADD_LAST: (0xcb, False),
    LCB_SDCMD_ARRAY_ADD_UNIQUE: (0xce, False), LCB_SDCMD_ARRAY_INSERT: (0xcd, False),
    LCB_SDCMD_COUNTER: (0xcf, False), LCB_SDCMD_REMOVE: (0xc9, False),
}
_WIRE_MKDIR_P = 0x01

_SPECMAP = dict((v, k[len("LCB_SDCMD_"):]) for k, v in tuple(globals().items())
                if k.startswith("LCB_SDCMD_"))


class Spec(tuple):
    """One sub-document command: ``(command, path, flags[, value])``."""

    def __new__(cls, *args, **kwargs):
        return super(Spec, cls).__new__(cls, tuple(args))

    def __repr__(self):
        details = [_SPECMAP.get(self[0], repr(self[0]))] + [repr(x) for x in self[1:]]
        return "%s<%s>" % (type(self).__name__, ", ".join(details))


class MultiValue(tuple):
    """Several values for one array command, inserted as one unit."""

    def __new__(cls, *args, **kwargs):
        return super(MultiValue, cls).__new__(cls, tuple(args))

    def __repr__(self):
        return "MultiValue(%s)" % (tuple.__repr__(self),)


def _flags(create_path=False, xattr=False, _expand_macros=False):
    if xattr or _expand_macros:
        raise E.NotSupportedError("extended attributes (xattr) are not supported by "
                                  "couchbase_ffi's sub-document operations")
    return SDSPEC_F_MKDIR_P if create_path else 0


def _gen_3spec(op, path, xattr=False):
    return Spec(op, path, _flags(xattr=xattr))


def _gen_4spec(op, path, value, create_path=False, xattr=False, _expand_macros=False):
    return Spec(op, path, _flags(create_path, xattr, _expand_macros), value)


def get(path, **kwargs):
    """The value at ``path`` (lookup_in)."""
    return _gen_3spec(LCB_SDCMD_GET, path, **kwargs)


def exists(path, **kwargs):
    """Whether ``path`` exists: no value, see :meth:`SubdocResult.exists` (lookup_in)."""
    return _gen_3spec(LCB_SDCMD_EXISTS, path, **kwargs)


def get_count(path, **kwargs):
    """The number of elements of the array or dictionary at ``path`` (lookup_in)."""
    return _gen_3spec(LCB_SDCMD_GET_COUNT, path, **kwargs)


def upsert(path, value, create_parents=False, **kwargs):
    """Create or replace the dictionary entry ``path``; ``create_parents``
    creates missing intermediate dictionaries (mutate_in)."""
    return _gen_4spec(LCB_SDCMD_DICT_UPSERT, path, value, create_path=create_parents, **kwargs)


def replace(path, value, **kwargs):
    """Replace the existing value at ``path`` (mutate_in)."""
    return _gen_4spec(LCB_SDCMD_REPLACE, path, value, create_path=False, **kwargs)


def insert(path, value, create_parents=False, **kwargs):
    """Create the dictionary entry ``path``; SubdocPathExistsError if it exists (mutate_in)."""
    return _gen_4spec(LCB_SDCMD_DICT_ADD, path, value, create_path=create_parents, **kwargs)


def array_append(path, *values, **kwargs):
    """Add ``values`` at the end of the array at ``path`` (mutate_in)."""
    return _gen_4spec(LCB_SDCMD_ARRAY_ADD_LAST, path, MultiValue(*values),
                      create_path=kwargs.pop("create_parents", False), **kwargs)


def array_prepend(path, *values, **kwargs):
    """Add ``values`` at the start of the array at ``path`` (mutate_in)."""
    return _gen_4spec(LCB_SDCMD_ARRAY_ADD_FIRST, path, MultiValue(*values),
                      create_path=kwargs.pop("create_parents", False), **kwargs)


def array_insert(path, *values, **kwargs):
    """Insert ``values`` at the array position ``path`` names (``"arr[2]"``) (mutate_in)."""
    return _gen_4spec(LCB_SDCMD_ARRAY_INSERT, path, MultiValue(*values), **kwargs)


def array_addunique(path, value, create_parents=False, **kwargs):
    """Add the primitive ``value`` to the array at ``path`` unless it is there
    (SubdocPathExistsError) (mutate_in)."""
    return _gen_4spec(LCB_SDCMD_ARRAY_ADD_UNIQUE, path, value, create_path=create_parents,
                      **kwargs)


def counter(path, delta, create_parents=False, **kwargs):
    """Add ``delta`` (not 0) to the integer at ``path``, created as ``delta`` if
    missing; the new value is the result's value for this spec (mutate_in)."""
    if not delta:
        raise ValueError("Delta must be positive or negative!")
    return _gen_4spec(LCB_SDCMD_COUNTER, path, delta, create_path=create_parents, **kwargs)


def remove(path, **kwargs):
    """Remove the entry at ``path`` (mutate_in)."""
    return _gen_3spec(LCB_SDCMD_REMOVE, path, **kwargs)


# ---- the encoding handed to cbffi_subdoc ------------------------------------------------------
def _encode_value(spec, json_encode):
    v = spec[3]
    if spec[0] == LCB_SDCMD_COUNTER and v.__class__ is int:
        return str(v).encode("ascii")
    if isinstance(v, MultiValue):
        return b",".join(_json_bytes(x, json_encode) for x in v)
    return _json_bytes(v, json_encode)


def _json_bytes(v, json_encode):
    try:
        out = json_encode(v)
    except Exception as e:
        raise E.ValueFormatError("cannot JSON-encode a sub-document value: %s" % (e,),
                                 objextra=v, inner_cause=e)
    return out.encode("utf-8") if isinstance(out, str) else bytes(out)


def encode_specs(specs, lookup, json_encode):
    """(cmds, flags, paths, npaths, values, nvalues, kinds) for cbffi_subdoc, or
    ArgumentError for something that is not a spec of this kind."""
    if not specs:
        raise E.ArgumentError("no sub-document specs given")
    cmds, flags, npaths, nvalues, kinds = [], [], [], [], []
    paths, values = [], []
    for spec in specs:
        if not isinstance(spec, tuple) or len(spec) < 3 or spec[0] not in _WIRE:
            raise E.ArgumentError("not a sub-document spec: %r (use couchbase.subdocument)"
                                  % (spec,), objextra=spec)
        wire, is_lookup = _WIRE[spec[0]]
        if is_lookup != lookup:
            raise E.ArgumentError("%r is a %s spec, not valid in %s" % (
                spec, "lookup" if is_lookup else "mutation",
                "lookup_in" if lookup else "mutate_in"), objextra=spec)
        path = spec[1]
        if isinstance(path, str):
            path = path.encode("utf-8")
        elif not isinstance(path, bytes):
            raise E.ArgumentError("a sub-document path is a str, got %r" % (path,), objextra=spec)
        fl = spec[2] or 0
        if fl & (SDSPEC_F_XATTR | SDSPEC_F_EXPANDMACROS):
            _flags(xattr=True)
        cmds.append(wire)
        flags.append(_WIRE_MKDIR_P if fl & SDSPEC_F_MKDIR_P else 0)
        paths.append(path)
        npaths.append(len(path))
        if len(spec) > 3:
            vb = _encode_value(spec, json_encode)
            values.append(vb)
            nvalues.append(len(vb))
        else:
            nvalues.append(0)
        kinds.append(spec[0])
    return cmds, flags, b"".join(paths), npaths, b"".join(values), nvalues, kinds


# ---- results ---------------------------------------------------------------------------------
_PATH_ENOENT = 0x3F


class SubdocResult(OperationResult):
    """The result of :meth:`Bucket.lookup_in` / :meth:`Bucket.mutate_in`, as in 2.x.

    Per-spec values by index or by path (``rv[0]``, ``rv['a.b']``) and by
    iteration, which raise that spec's error; ``rv.get(i)`` gives
    ``(rc, value)`` without raising; ``rv.exists(i)`` is True / False for a
    path found / not found.  ``rc`` is 0, or SubdocMultipleErrors' code when
    some spec failed (a lookup still returns: see ``success``)."""
    __slots__ = ("_specs", "_results", "_path_cache")

    def __init__(self, key=None, rc=0, cas=0, specs=()):
        self.key = key
        self.rc = rc
        self.cas = cas
        self._specs = tuple(specs)
        self._results = []
        self._path_cache = None

    def _repr_fields(self):
        return ["cas=0x%x" % self.cas, "specs=%r" % (self._specs,),
                "results=%r" % (self._results,)]

    def _index_of(self, path):
        if self._path_cache is None:
            self._path_cache = {}
            for i, spec in enumerate(self._specs):
                self._path_cache.setdefault(spec[1], i)
        return self._path_cache[path]

    def _resolve(self, item):
        if isinstance(item, int):
            return self._results[item]
        return self._results[self._index_of(item)]

    def __getitem__(self, item):
        rc, value = self._resolve(item)
        if rc:
            raise E.exc_from_rc(rc, obj=item, key=self.key)
        return value

    def __iter__(self):
        for (rc, value), spec in zip(self._results, self._specs):
            if rc:
                raise E.exc_from_rc(rc, obj=spec[1], key=self.key)
            yield value

    def __len__(self):
        return len(self._results)

    @property
    def command_count(self):
        """How many specs were sent."""
        return len(self._specs)

    @property
    def result_count(self):
        """How many per-spec results there are."""
        return len(self._results)

    def get(self, path_or_index, default=None):
        """``(rc, value)`` of one spec (``(rc, default)`` if it failed); never
        raises for a failed spec (IndexError / KeyError for one not asked)."""
        rc, value = self._resolve(path_or_index)
        return rc, (default if rc else value)

    def exists(self, path_or_index):
        """True if the path was found, False if not; other errors are raised."""
        rc = self._resolve(path_or_index)[0]
        if not rc:
            return True
        if rc == _PATH_ENOENT:
            return False
        raise E.exc_from_rc(rc, obj=path_or_index, key=self.key)

    def __contains__(self, item):
        return self.exists(item)

    @property
    def access_ok(self):
        """True if the document could be read (whatever its paths did)."""
        return self.rc in (0, 0x49)

    @property
    def value(self):
        raise AttributeError(".value not applicable in multiple result operation")
