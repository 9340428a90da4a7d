"""Sub-document commands of the mock (kv_engine docs/SubDocument.md semantics).

Two halves:

* a pure engine over a parsed JSON document: ``parse_path`` (``a.b[0]``,
  ``[-1]``, backquoted names with doubled backquotes for a literal one),
  ``lookup`` and ``mutate`` (one spec each; raising ``SubdocError(status)``);
* the request handlers (``multi_lookup``, ``multi_mutation``, ``single``),
  registered in kv.py's handler table, which frame the packets, apply the doc
  flags (MKDOC / ADD), CAS, expiry and locks, and commit the new body through
  the session (so replicas, persistence and seqnos follow as for any
  mutation).

The mock keeps a document as bytes; a sub-document operation parses it, works
on Python objects and writes it back compactly (``separators=(",", ":")``,
UTF-8 as is).  So a value read back is the same JSON, though not always the
same bytes, as a real server (which edits the text in place) would return:
whitespace differs, and a float is Python's spelling of it.
"""
import json
import struct

from couchbase_ffi.mock.protocol import DATATYPE_JSON, MAX_VALUE, Op, Status, response

# spec flags
PATH_MKDIR_P = 0x01
PATH_XATTR = 0x04
PATH_EXPAND_MACROS = 0x10
# doc flags
DOC_MKDOC = 0x01
DOC_ADD = 0x02
DOC_ACCESS_DELETED = 0x04
DOC_KNOWN = DOC_MKDOC | DOC_ADD | DOC_ACCESS_DELETED

# whole-document opcodes inside a multi command (empty path)
WHOLE_GET = Op.GET          # 0x00 in a lookup
WHOLE_SET = Op.SET          # 0x01 in a mutation
WHOLE_DELETE = Op.DELETE    # 0x04 in a mutation

LOOKUPS = frozenset([Op.SUBDOC_GET, Op.SUBDOC_EXISTS, Op.SUBDOC_GET_COUNT, WHOLE_GET])
MUTATIONS = frozenset([Op.SUBDOC_DICT_ADD, Op.SUBDOC_DICT_UPSERT, Op.SUBDOC_DELETE,
                       Op.SUBDOC_REPLACE, Op.SUBDOC_ARRAY_PUSH_LAST, Op.SUBDOC_ARRAY_PUSH_FIRST,
                       Op.SUBDOC_ARRAY_INSERT, Op.SUBDOC_ARRAY_ADD_UNIQUE, Op.SUBDOC_COUNTER,
                       WHOLE_SET, WHOLE_DELETE])
_WITH_VALUE = frozenset([Op.SUBDOC_DICT_ADD, Op.SUBDOC_DICT_UPSERT, Op.SUBDOC_REPLACE,
                         Op.SUBDOC_ARRAY_PUSH_LAST, Op.SUBDOC_ARRAY_PUSH_FIRST,
                         Op.SUBDOC_ARRAY_INSERT, Op.SUBDOC_ARRAY_ADD_UNIQUE, Op.SUBDOC_COUNTER,
                         WHOLE_SET])
_ARRAY_OPS = frozenset([Op.SUBDOC_ARRAY_PUSH_LAST, Op.SUBDOC_ARRAY_PUSH_FIRST,
                        Op.SUBDOC_ARRAY_ADD_UNIQUE])

MAX_PATHS = 16          # SUBDOC_MULTI_MAX_PATHS
MAX_PATH_LEN = 1024     # bytes
MAX_COMPONENTS = 32     # also the deepest a document may be
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

_U16 = struct.Struct(">H")
_LOOKUP_SPEC = struct.Struct(">BBH")
_MUTATION_SPEC = struct.Struct(">BBHI")
_LOOKUP_RESULT = struct.Struct(">HI")
_MUTATION_RESULT = struct.Struct(">BHI")
_FAILED_INDEX = struct.Struct(">BH")


class SubdocError(Exception):
    def __init__(self, status):
        Exception.__init__(self, "subdoc status 0x%02x" % status)
        self.status = status


def _fail(status):
    raise SubdocError(status)


# ---- paths ---------------------------------------------------------------------------------------
def parse_path(path):
    """bytes -> [str (a dictionary key) | int (an array index, -1 = the last)].

    PATH_EINVAL for bad syntax, PATH_E2BIG when it is longer than 1024 bytes or
    has more than 32 components."""
    if len(path) > MAX_PATH_LEN:
        _fail(Status.SUBDOC_PATH_E2BIG)
    try:
        text = path.decode("utf-8")
    except UnicodeDecodeError:
        _fail(Status.SUBDOC_PATH_EINVAL)
    out = []
    i, n = 0, len(text)
    expect_key = True       # at the start, or after a dot
    while i < n:
        c = text[i]
        if c == "[":
            j = text.find("]", i + 1)
            if j < 0:
                _fail(Status.SUBDOC_PATH_EINVAL)
            digits = text[i + 1:j]
            if digits == "-1":
                out.append(-1)
            elif digits.isdigit() and digits.isascii() and (digits == "0" or digits[0] != "0"):
                out.append(int(digits))
            else:
                _fail(Status.SUBDOC_PATH_EINVAL)
            i = j + 1
            expect_key = False
            if i < n and text[i] not in ".[":
                _fail(Status.SUBDOC_PATH_EINVAL)
        elif c == ".":
            if expect_key or i + 1 >= n:
                _fail(Status.SUBDOC_PATH_EINVAL)   # empty component
            i += 1
            expect_key = True
            if text[i] in ".[":
                _fail(Status.SUBDOC_PATH_EINVAL)
        else:
            if not expect_key:
                _fail(Status.SUBDOC_PATH_EINVAL)
            name = []
            while i < n and text[i] not in ".[":
                if text[i] == "]":
                    _fail(Status.SUBDOC_PATH_EINVAL)
                if text[i] == "`":
                    j = i + 1
                    while True:
                        if j >= n:
                            _fail(Status.SUBDOC_PATH_EINVAL)   # unterminated
                        if text[j] == "`":
                            if j + 1 < n and text[j + 1] == "`":
                                name.append("`")
                                j += 2
                                continue
                            break
                        name.append(text[j])
                        j += 1
                    i = j + 1
                else:
                    name.append(text[i])
                    i += 1
            out.append(_json_key("".join(name)))
            expect_key = False
        if len(out) > MAX_COMPONENTS:
            _fail(Status.SUBDOC_PATH_E2BIG)
    return out


def _json_key(name):
    """A path component is a JSON string body: undo its escapes."""
    if "\\" not in name and '"' not in name:
        return name
    try:
        return json.loads('"' + name + '"')
    except ValueError:
        _fail(Status.SUBDOC_PATH_EINVAL)


# ---- documents -----------------------------------------------------------------------------------
def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def depth(obj):
    """Nesting depth: a primitive is 0, ``[]`` / ``{}`` 1."""
    if isinstance(obj, dict):
        return 1 + max((depth(v) for v in obj.values()), default=0)
    if isinstance(obj, list):
        return 1 + max((depth(v) for v in obj), default=0)
    return 0


def parse_doc(body):
    """The document as Python objects; DOC_NOTJSON / DOC_E2DEEP."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        _fail(Status.SUBDOC_DOC_NOTJSON)
    if depth(doc) > MAX_COMPONENTS:
        _fail(Status.SUBDOC_DOC_E2DEEP)
    return doc


def _values(raw, single=False):
    """A spec's value: one JSON value, or (array inserts) a comma-separated list of them."""
    if not raw.strip():
        _fail(Status.SUBDOC_VALUE_CANTINSERT)
    try:
        text = raw.decode("utf-8")
        vals = json.loads("[" + text + "]")
    except (ValueError, UnicodeDecodeError):
        _fail(Status.SUBDOC_VALUE_CANTINSERT)
    if single and len(vals) != 1:
        _fail(Status.SUBDOC_VALUE_CANTINSERT)
    return vals


def _walk(doc, comps):
    """The value at comps (a full path); PATH_ENOENT / PATH_MISMATCH."""
    cur = doc
    for c in comps:
        cur = _child(cur, c)
    return cur


def _child(cur, c):
    if isinstance(c, int):
        if not isinstance(cur, list):
            _fail(Status.SUBDOC_PATH_MISMATCH)
        if c == -1:
            if not cur:
                _fail(Status.SUBDOC_PATH_ENOENT)
            return cur[-1]
        if c >= len(cur):
            _fail(Status.SUBDOC_PATH_ENOENT)
        return cur[c]
    if not isinstance(cur, dict):
        _fail(Status.SUBDOC_PATH_MISMATCH)
    if c not in cur:
        _fail(Status.SUBDOC_PATH_ENOENT)
    return cur[c]


def _parent(doc, comps, mkdir_p):
    """The container holding the last component, creating missing dictionaries
    on the way when mkdir_p (never array elements)."""
    cur = doc
    for k, c in enumerate(comps[:-1]):
        try:
            cur = _child(cur, c)
        except SubdocError as e:
            if e.status != Status.SUBDOC_PATH_ENOENT or not mkdir_p or isinstance(c, int):
                raise
            # create the rest of the chain; what comes next decides dict or list
            nxt = comps[k + 1]
            new = [] if isinstance(nxt, int) else {}
            if isinstance(nxt, int):
                _fail(Status.SUBDOC_PATH_ENOENT)  # cannot create an element to index into
            cur[c] = new
            cur = new
    return cur


def _create_at(doc, comps, value, mkdir_p):
    """Create comps (missing) with value; the parent chain per mkdir_p."""
    parent = _parent(doc, comps, mkdir_p)
    last = comps[-1]
    if isinstance(last, int):
        _fail(Status.SUBDOC_PATH_ENOENT)
    if not isinstance(parent, dict):
        _fail(Status.SUBDOC_PATH_MISMATCH)
    parent[last] = value


def _is_primitive(v):
    return not isinstance(v, (dict, list))


def lookup(doc, opcode, comps):
    """One lookup on a parsed document: the value bytes (b"" for exists)."""
    if opcode == Op.SUBDOC_GET:
        if not comps:
            _fail(Status.SUBDOC_PATH_EINVAL)
        return dumps(_walk(doc, comps))
    if opcode == Op.SUBDOC_EXISTS:
        _walk(doc, comps)
        return b""
    if opcode == Op.SUBDOC_GET_COUNT:
        v = _walk(doc, comps)
        if not isinstance(v, (dict, list)):
            _fail(Status.SUBDOC_PATH_MISMATCH)
        return str(len(v)).encode("ascii")
    _fail(Status.SUBDOC_INVALID_COMBO)


def mutate(doc, opcode, comps, raw, mkdir_p):
    """One mutation of a parsed document (changed in place; the root may be
    replaced: returns (new root, value bytes to report or None))."""
    if opcode == Op.SUBDOC_COUNTER:
        return doc, _counter(doc, comps, raw, mkdir_p)
    if opcode in (Op.SUBDOC_DICT_ADD, Op.SUBDOC_DICT_UPSERT):
        if not comps or isinstance(comps[-1], int):
            _fail(Status.SUBDOC_PATH_EINVAL)
        value = _values(raw, single=True)[0]
        parent = _parent(doc, comps, mkdir_p)
        if not isinstance(parent, dict):
            _fail(Status.SUBDOC_PATH_MISMATCH)
        if opcode == Op.SUBDOC_DICT_ADD and comps[-1] in parent:
            _fail(Status.SUBDOC_PATH_EEXISTS)
        parent[comps[-1]] = value
        return doc, None
    if opcode == Op.SUBDOC_REPLACE:
        if not comps:
            _fail(Status.SUBDOC_PATH_EINVAL)
        value = _values(raw, single=True)[0]
        parent = _walk(doc, comps[:-1])
        _child(parent, comps[-1])            # must exist
        last = comps[-1]
        parent[len(parent) - 1 if last == -1 else last] = value
        return doc, None
    if opcode == Op.SUBDOC_DELETE:
        if not comps:
            _fail(Status.SUBDOC_PATH_EINVAL)
        parent = _walk(doc, comps[:-1])
        _child(parent, comps[-1])
        last = comps[-1]
        del parent[len(parent) - 1 if last == -1 else last]
        return doc, None
    if opcode in _ARRAY_OPS:
        unique = opcode == Op.SUBDOC_ARRAY_ADD_UNIQUE
        vals = _values(raw, single=unique)
        if unique and not _is_primitive(vals[0]):
            _fail(Status.SUBDOC_VALUE_CANTINSERT)
        if comps:
            try:
                arr = _walk(doc, comps)
            except SubdocError as e:
                if e.status != Status.SUBDOC_PATH_ENOENT or not mkdir_p:
                    raise
                arr = []
                _create_at(doc, comps, arr, mkdir_p)
        else:
            arr = doc
        if not isinstance(arr, list):
            _fail(Status.SUBDOC_PATH_MISMATCH)
        if unique:
            if not all(_is_primitive(v) for v in arr):
                _fail(Status.SUBDOC_PATH_MISMATCH)
            if dumps(vals[0]) in [dumps(v) for v in arr]:
                _fail(Status.SUBDOC_PATH_EEXISTS)
            arr.append(vals[0])
        elif opcode == Op.SUBDOC_ARRAY_PUSH_LAST:
            arr.extend(vals)
        else:
            arr[0:0] = vals
        return doc, None
    if opcode == Op.SUBDOC_ARRAY_INSERT:
        if not comps or not isinstance(comps[-1], int) or comps[-1] < 0:
            _fail(Status.SUBDOC_PATH_EINVAL)
        vals = _values(raw)
        arr = _walk(doc, comps[:-1])
        if not isinstance(arr, list):
            _fail(Status.SUBDOC_PATH_MISMATCH)
        if comps[-1] > len(arr):
            _fail(Status.SUBDOC_PATH_ENOENT)
        arr[comps[-1]:comps[-1]] = vals
        return doc, None
    _fail(Status.SUBDOC_INVALID_COMBO)


def _counter(doc, comps, raw, mkdir_p):
    if not comps:
        _fail(Status.SUBDOC_PATH_EINVAL)
    text = raw.strip()
    try:
        delta = json.loads(text.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        _fail(Status.SUBDOC_DELTA_EINVAL)
    if not isinstance(delta, int) or isinstance(delta, bool) or delta == 0 or \
            not INT64_MIN <= delta <= INT64_MAX:
        _fail(Status.SUBDOC_DELTA_EINVAL)
    try:
        cur = _walk(doc, comps)
    except SubdocError as e:
        if e.status != Status.SUBDOC_PATH_ENOENT:
            raise
        _create_at(doc, comps, delta, mkdir_p)
        return str(delta).encode("ascii")
    if not isinstance(cur, int) or isinstance(cur, bool):
        _fail(Status.SUBDOC_PATH_MISMATCH)
    if not INT64_MIN <= cur <= INT64_MAX:
        _fail(Status.SUBDOC_NUM_ERANGE)
    new = cur + delta
    if not INT64_MIN <= new <= INT64_MAX:
        _fail(Status.SUBDOC_VALUE_CANTINSERT)   # kv_engine: delta overflow
    parent = _walk(doc, comps[:-1])
    last = comps[-1]
    parent[len(parent) - 1 if last == -1 else last] = new
    return str(new).encode("ascii")


def empty_root(specs):
    """The document MKDOC / ADD start from: [] if the first spec is an array
    command on the root, else {}."""
    if specs and specs[0][0] in _ARRAY_OPS and not specs[0][2]:
        return []
    return {}


# ---- request framing -----------------------------------------------------------------------------
def parse_lookup_specs(body):
    """[(opcode, flags, path)] of a multi-lookup body; None if it does not parse."""
    specs, i, n = [], 0, len(body)
    while i < n:
        if i + 4 > n:
            return None
        op, flags, plen = _LOOKUP_SPEC.unpack_from(body, i)
        i += 4
        if i + plen > n:
            return None
        specs.append((op, flags, body[i:i + plen], b""))
        i += plen
    return specs


def parse_mutation_specs(body):
    """[(opcode, flags, path, value)] of a multi-mutation body; None if it does not parse."""
    specs, i, n = [], 0, len(body)
    while i < n:
        if i + 8 > n:
            return None
        op, flags, plen, vlen = _MUTATION_SPEC.unpack_from(body, i)
        i += 8
        if i + plen + vlen > n:
            return None
        specs.append((op, flags, body[i:i + plen], body[i + plen:i + plen + vlen]))
        i += plen + vlen
    return specs


def _check_spec_flags(s, req, flags, mutation):
    allowed = PATH_MKDIR_P | PATH_XATTR | PATH_EXPAND_MACROS if mutation else PATH_XATTR
    if flags & ~allowed:
        return s.einval(req, "unknown sub-document path flags 0x%02x" % flags)
    if flags & (PATH_XATTR | PATH_EXPAND_MACROS):
        # XATTR is not among the HELLO features the mock accepts
        return s.einval(req, "extended attributes are not supported by the mock")
    return None


def _frames_ok(s, req):
    """(preserve_ttl, error packets or None); durability frames are refused as elsewhere."""
    return s._frames(req)


def _doc_flags_error(s, req, docflags, mutation):
    if docflags & ~DOC_KNOWN:
        return s.einval(req, "unknown doc flags 0x%02x" % docflags)
    if docflags & DOC_ACCESS_DELETED:
        return s.einval(req, "access_deleted is not supported by the mock")
    if not mutation and docflags & (DOC_MKDOC | DOC_ADD):
        return s.einval(req, "mkdoc/add are for mutations")
    if docflags & DOC_MKDOC and docflags & DOC_ADD:
        return s.einval(req, "mkdoc and add together")
    if docflags & DOC_ADD and req.cas:
        return s.einval(req, "add with a CAS")
    return None


def _store(s, req):
    """(store, vb) or (None, error packets)."""
    return s._store_for(req)


def multi_lookup(s, req):
    """SUBDOC_MULTI_LOOKUP (0xd0): every spec answered, overall SUCCESS or MULTI_PATH_FAILURE."""
    if len(req.extras) not in (0, 1):
        return s.einval(req, "multi-lookup extras must be 0 or 1 byte")
    docflags = req.extras[0] if req.extras else 0
    err = _doc_flags_error(s, req, docflags, False)
    if err:
        return err
    specs = parse_lookup_specs(req.value)
    if specs is None:
        return s.einval(req, "malformed lookup specs")
    if not specs or len(specs) > MAX_PATHS:
        return s.error(req, Status.SUBDOC_INVALID_COMBO, "1..16 paths")
    for op, flags, path, _ in specs:
        if op not in LOOKUPS:
            return s.error(req, Status.SUBDOC_INVALID_COMBO, "opcode 0x%02x in a lookup" % op)
        if op == WHOLE_GET and path:
            return s.einval(req, "a whole-document get has an empty path")
        err = _check_spec_flags(s, req, flags, False)
        if err:
            return err
    store, vb = _store(s, req)
    if store is None:
        return vb
    cur = s.state.live(store, req.key)
    if cur is None:
        return s.error(req, Status.KEY_ENOENT)
    doc, doc_status = None, 0
    try:
        doc = parse_doc(cur.value)
    except SubdocError as e:
        doc_status = e.status
    out, failed = [], False
    for op, flags, path, _ in specs:
        status, value = 0, b""
        try:
            if op == WHOLE_GET:
                value = cur.value
            elif doc_status:
                _fail(doc_status)
            else:
                value = lookup(doc, op, parse_path(path))
        except SubdocError as e:
            status, value = e.status, b""
        failed = failed or status != 0
        out.append(_LOOKUP_RESULT.pack(status, len(value)) + value)
    status = Status.SUBDOC_MULTI_PATH_FAILURE if failed else 0
    cas = 0xffffffffffffffff if s._locked(cur) else cur.cas   # readers of a locked key
    return [_resp(req, status, b"".join(out), cas=cas)]


def _resp(req, status, value, cas=0, extras=b""):
    return response(req.opcode, status, req.opaque, cas=cas, extras=extras, value=value)


def _apply(s, req, specs, docflags, expiry_field, failed_index_body):
    """Run mutation specs on the document and commit; returns the response packets.

    failed_index_body: True for MULTI_MUTATION (a failure is MULTI_PATH_FAILURE
    with index + status), False for a single-path command (the status itself)."""
    preserve, err = _frames_ok(s, req)
    if err:
        return err
    store, vb = _store(s, req)
    if store is None:
        return vb
    cur = s.state.live(store, req.key)
    if cur is None:
        if not docflags & (DOC_MKDOC | DOC_ADD):
            return s.error(req, Status.KEY_ENOENT)
        if req.cas:
            return s.error(req, Status.KEY_ENOENT)
    elif docflags & DOC_ADD:
        return s.error(req, Status.KEY_EEXISTS)
    err = s._check_cas(req, cur)
    if err:
        return err
    mkdoc = bool(docflags & (DOC_MKDOC | DOC_ADD))
    doc, doc_status = None, 0
    if cur is None:
        doc = empty_root(specs)
    elif not (len(specs) == 1 and specs[0][0] in (WHOLE_SET, WHOLE_DELETE)):
        try:
            doc = parse_doc(cur.value)
        except SubdocError as e:
            doc_status = e.status
    results = []
    deleted = False
    body = None
    for index, (op, flags, path, value) in enumerate(specs):
        try:
            if op == WHOLE_SET:
                if path:
                    _fail(Status.SUBDOC_PATH_EINVAL)
                body = value
                try:
                    doc = json.loads(value.decode("utf-8"))
                    doc_status = 0
                except (ValueError, UnicodeDecodeError):
                    doc, doc_status = None, Status.SUBDOC_DOC_NOTJSON
                continue
            if op == WHOLE_DELETE:
                if path:
                    _fail(Status.SUBDOC_PATH_EINVAL)
                deleted = True
                continue
            if doc_status:
                _fail(doc_status)
            before = depth(doc)
            doc, rv = mutate(doc, op, parse_path(path), value, mkdoc or bool(flags & PATH_MKDIR_P))
            body = None
            if depth(doc) > MAX_COMPONENTS and depth(doc) > before:
                _fail(Status.SUBDOC_VALUE_ETOODEEP)
        except SubdocError as e:
            if not failed_index_body:
                return s.error(req, e.status)
            return [_resp(req, Status.SUBDOC_MULTI_PATH_FAILURE, _FAILED_INDEX.pack(index, e.status))]
        if rv is not None:
            results.append((index, rv))
    if deleted:
        if cur is None:
            return s.error(req, Status.KEY_ENOENT)
        it = s._commit(store, vb, req.key, b"", cur.flags, 0, 0, deleted=True)
    else:
        if body is None:
            body = dumps(doc)
        if len(body) > MAX_VALUE:
            return s.error(req, Status.E2BIG)
        if preserve and cur is not None:
            expiry = cur.expiry
        else:
            expiry = s.state.expiry_to_abs(expiry_field)
        datatype = DATATYPE_JSON if doc_status == 0 else 0
        it = s._commit(store, vb, req.key, body, cur.flags if cur is not None else 0, datatype,
                       expiry)
    extras = s.mutation_extras(vb, it)
    if not failed_index_body:
        return [_resp(req, 0, results[0][1] if results else b"", cas=it.cas, extras=extras)]
    value = b"".join(_MUTATION_RESULT.pack(i, 0, len(v)) + v for i, v in results)
    return [_resp(req, 0, value, cas=it.cas, extras=extras)]


def multi_mutation(s, req):
    """SUBDOC_MULTI_MUTATION (0xd1): all specs or none; a failure names the first failing spec."""
    n = len(req.extras)
    if n not in (0, 1, 4, 5):
        return s.einval(req, "multi-mutation extras must be 0, 1, 4 or 5 bytes")
    expiry = struct.unpack(">I", req.extras[:4])[0] if n >= 4 else 0
    docflags = req.extras[-1] if n in (1, 5) else 0
    err = _doc_flags_error(s, req, docflags, True)
    if err:
        return err
    specs = parse_mutation_specs(req.value)
    if specs is None:
        return s.einval(req, "malformed mutation specs")
    if not specs or len(specs) > MAX_PATHS:
        return s.error(req, Status.SUBDOC_INVALID_COMBO, "1..16 paths")
    for op, flags, path, value in specs:
        if op not in MUTATIONS:
            return s.error(req, Status.SUBDOC_INVALID_COMBO, "opcode 0x%02x in a mutation" % op)
        if op not in _WITH_VALUE and value:
            return s.einval(req, "opcode 0x%02x takes no value" % op)
        err = _check_spec_flags(s, req, flags, True)
        if err:
            return err
    return _apply(s, req, specs, docflags, expiry, True)


def single(s, req):
    """The single-path commands 0xc5..0xcf, 0xd2: extras = path length u16, path
    flags u8 [, expiry u32] [, doc flags u8]; body = key, path, value."""
    n = len(req.extras)
    if n not in (3, 4, 7, 8):
        return s.einval(req, "sub-document extras must be 3, 4, 7 or 8 bytes")
    plen = _U16.unpack_from(req.extras, 0)[0]
    flags = req.extras[2]
    expiry = struct.unpack(">I", req.extras[3:7])[0] if n >= 7 else 0
    docflags = req.extras[-1] if n in (4, 8) else 0
    if plen > len(req.value):
        return s.einval(req, "path longer than the body")
    path, value = req.value[:plen], req.value[plen:]
    op = req.opcode
    mutation = op in MUTATIONS
    if not mutation and (expiry or n >= 7):
        return s.einval(req, "a lookup takes no expiry")
    if op not in _WITH_VALUE and value:
        return s.einval(req, "opcode 0x%02x takes no value" % op)
    err = _doc_flags_error(s, req, docflags, mutation) or _check_spec_flags(s, req, flags, mutation)
    if err:
        return err
    if mutation:
        return _apply(s, req, [(op, flags, path, value)], docflags, expiry, False)
    store, vb = _store(s, req)
    if store is None:
        return vb
    cur = s.state.live(store, req.key)
    if cur is None:
        return s.error(req, Status.KEY_ENOENT)
    try:
        out = lookup(parse_doc(cur.value), op, parse_path(path))
    except SubdocError as e:
        return s.error(req, e.status)
    return [_resp(req, 0, out, cas=cur.cas)]


SINGLE_OPCODES = (Op.SUBDOC_GET, Op.SUBDOC_EXISTS, Op.SUBDOC_DICT_ADD, Op.SUBDOC_DICT_UPSERT,
                  Op.SUBDOC_DELETE, Op.SUBDOC_REPLACE, Op.SUBDOC_ARRAY_PUSH_LAST,
                  Op.SUBDOC_ARRAY_PUSH_FIRST, Op.SUBDOC_ARRAY_INSERT, Op.SUBDOC_ARRAY_ADD_UNIQUE,
                  Op.SUBDOC_COUNTER, Op.SUBDOC_GET_COUNT)
