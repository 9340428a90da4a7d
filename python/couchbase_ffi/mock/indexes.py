"""The mock query service's index statements: GSI index definitions kept per
bucket, and the N1QL that manages and lists them (docs/mock.md, "Indexes").

    CREATE PRIMARY INDEX [name] ON ks [USING GSI] [WITH {"defer_build": true}]
    CREATE INDEX name ON ks(expr, ...) [WHERE cond] [USING GSI] [WITH {...}]
    DROP PRIMARY INDEX ON ks [USING GSI]          DROP INDEX ks.name [USING GSI]
    BUILD INDEX ON ks(name, ...) [USING GSI]
    SELECT alias.* | RAW field FROM system:indexes [[AS] alias] [WHERE cond] [ORDER BY ...]

Identifiers may be backquoted, keyspaces prefixed with the namespace
(``default:`b```).  The WHERE of a listing is evaluated over the index rows:
comparisons (``=``, ``==``, ``!=``) of fields, strings and parameters,
``IS [NOT] MISSING`` / ``NULL``, AND, OR, NOT and parentheses (what SDKs'
index managers send); rows come primary first, then by name.  No index is built from data: an index is a
definition with a state — "online" when created, "deferred" when created
with defer_build, "building" after BUILD INDEX until ``build_delay`` seconds
have passed, then "online".  The query service does not require indexes for
its built-in SELECTs.  Errors carry the codes the query service uses: 4300
(the index exists), 12004 (no such index), 12003 (no such keyspace), 3000
(syntax), 5000 (BUILD of an index that is not deferred).
"""
import json
import re
import time
import uuid

_ID = r"(?:`([^`]+)`|([A-Za-z_][A-Za-z0-9_#-]*))"
_NS = r"(?:default\s*:\s*)?"      # the namespace before a keyspace
_USING = r"(?:\s+using\s+(gsi|view))?"
_WITH = r"(?:\s+with\s+(\{.*\}))?"

_CREATE_PRIMARY = re.compile(r"(?is)^create\s+primary\s+index(?:\s+(?!on\s)" + _ID + r")?\s+on\s+"
                             + _NS + _ID + _USING + _WITH + r"$")
_CREATE = re.compile(r"(?is)^create\s+index\s+" + _ID + r"\s+on\s+" + _NS + _ID + r"\s*\((.*)$")
_CREATE_TAIL = re.compile(r"(?is)^(?:\s+where\s+(.+?))?" + _USING + _WITH + r"$")
_DROP_PRIMARY = re.compile(r"(?is)^drop\s+primary\s+index\s+on\s+" + _NS + _ID + _USING + r"$")
_DROP = re.compile(r"(?is)^drop\s+index\s+" + _NS + _ID + r"\s*\.\s*" + _ID + _USING + r"$")
_BUILD = re.compile(r"(?is)^build\s+index\s+on\s+" + _NS + _ID + r"\s*\((.*)$")
_BUILD_TAIL = re.compile(r"(?is)^" + _USING + r"$")
_LIST = re.compile(r"(?is)^select\s+(?:raw\s+" + _ID + r"|" + _ID + r"\s*\.\s*\*)"
                   r"\s+from\s+system\s*:\s*indexes"
                   r"(?:\s+(?:as\s+)?(?!where\b|order\b)" + _ID + r")?"
                   r"(?:\s+where\s+(.+?))?(?:\s+order\s+by\s+.+)?$")
_TOKEN = re.compile(r"""\s*(?:(\()|(\))|(==|!=|<>|=)|"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|"""
                    r"(\$\w+)|`([^`]+)`|([A-Za-z_][A-Za-z0-9_]*)|(\.))")
_MISSING = object()

PRIMARY_NAME = "#primary"


class IndexError_(Exception):
    """A N1QL error of an index statement (code, msg)."""

    def __init__(self, code, msg):
        Exception.__init__(self, msg)
        self.code = code
        self.msg = msg


def parameter(body, spec):
    """The value of N1QL parameter ``spec`` ("$1" positional, "$name" named) in the
    request ``body``; LookupError if the request has none."""
    name = spec[1:]
    if name.isdigit():
        args = body.get("args") or []
        i = int(name) - 1
        if 0 <= i < len(args):
            return args[i]
    elif "$" + name in body:
        return body["$" + name]
    raise LookupError(spec)


def _ident(m, i):
    """The identifier of groups i, i+1 (backquoted or bare), or None."""
    return m.group(i) if m.group(i) is not None else m.group(i + 1)


def _split_top(s):
    """Split ``s`` at the commas outside parentheses, brackets and quotes."""
    out, depth, cur, quote = [], 0, [], None
    for ch in s:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "\"'`":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


def _parenthesized(rest):
    """(the text up to the ``)`` closing an already opened ``(``, what follows it)."""
    depth, quote = 1, None
    for i, ch in enumerate(rest):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return rest[:i], rest[i + 1:]
    raise IndexError_(3000, "syntax error - unbalanced parentheses")


def _unquote(name):
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] == "`":
        return name[1:-1]
    return name


class _Where(object):
    """A listing's WHERE clause, compiled to a predicate over an index row."""

    def __init__(self, text, body, alias):
        self.body = body
        self.alias = (alias or "").lower()
        self.toks = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise IndexError_(3000, "syntax error - near %r (the mock's WHERE subset)"
                                  % text[pos:pos + 20])
            pos = m.end()
            kinds = ("(", ")", "op", "str", "str", "param", "ident", "word", ".")
            for kind, value in zip(kinds, m.groups()):
                if value is not None:
                    if kind == "word" and value.upper() in ("AND", "OR", "NOT", "IS", "MISSING",
                                                             "NULL", "TRUE", "FALSE"):
                        kind, value = value.upper(), value.upper()
                    elif kind == "word":
                        kind = "ident"
                    self.toks.append((kind, value))
                    break
        self.i = 0

    def parse(self):
        fn = self._or()
        if self.i != len(self.toks):
            raise IndexError_(3000, "syntax error - unexpected %r" % (self.toks[self.i][1],))
        return fn

    def _peek(self):
        return self.toks[self.i][0] if self.i < len(self.toks) else None

    def _take(self, kind):
        if self._peek() != kind:
            raise IndexError_(3000, "syntax error - expected %s" % kind)
        self.i += 1
        return self.toks[self.i - 1][1]

    def _or(self):
        parts = [self._and()]
        while self._peek() == "OR":
            self.i += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) is True for p in parts))

    def _and(self):
        parts = [self._not()]
        while self._peek() == "AND":
            self.i += 1
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) is True for p in parts))

    def _not(self):
        if self._peek() == "NOT":
            self.i += 1
            inner = self._not()
            return lambda r: inner(r) is not True
        if self._peek() == "(":
            self.i += 1
            inner = self._or()
            self._take(")")
            return inner
        return self._comparison()

    def _operand(self):
        kind = self._peek()
        if kind == "str":
            v = self._take("str")
            return lambda r: v
        if kind == "param":
            spec = self._take("param")
            try:
                v = parameter(self.body, spec)
            except LookupError:
                raise IndexError_(5010, "no value for %s" % spec)
            return lambda r: v
        if kind in ("TRUE", "FALSE"):
            v = self._take(kind) == "TRUE"
            return lambda r: v
        name = self._take("ident")
        if self._peek() == "." and name.lower() == self.alias:
            self.i += 1
            name = self._take("ident")
        return lambda r: r.get(name, _MISSING)

    def _comparison(self):
        left = self._operand()
        kind = self._peek()
        if kind == "IS":
            self.i += 1
            negate = self._peek() == "NOT"
            if negate:
                self.i += 1
            what = self._peek()
            if what not in ("MISSING", "NULL"):
                raise IndexError_(3000, "syntax error - IS takes MISSING or NULL")
            self.i += 1
            if what == "MISSING":
                return lambda r: (left(r) is _MISSING) != negate
            return lambda r: (left(r) is None) != negate
        op = self._take("op")
        right = self._operand()
        if op in ("=", "=="):
            return lambda r: (left(r) is not _MISSING and left(r) == right(r))
        return lambda r: (left(r) is not _MISSING and left(r) != right(r))


class Indexes(object):
    """Every bucket's index definitions; shared by the query nodes."""

    def __init__(self, state):
        self.state = state
        self.by_bucket = {}       # bucket -> {name: definition dict}
        self.build_delay = 0.0    # seconds a BUILD INDEX takes

    # -- the statements -------------------------------------------------------------------
    def run(self, statement, body, check_bucket):
        """Rows for an index statement, or None if ``statement`` is none of them.
        ``check_bucket(name)`` raises the keyspace / access error for a bucket."""
        m = _LIST.match(statement)
        if m:
            raw_field, alias = _ident(m, 1), _ident(m, 3)
            from_alias = _ident(m, 5)
            if alias is not None and (from_alias or "").lower() != alias.lower():
                raise IndexError_(3000, "syntax error - select %s.* needs the alias %s"
                                  % (alias, alias))
            cond = _Where(m.group(7), body, from_alias).parse() if m.group(7) else None
            rows = [r for r in self._list(None) if cond is None or cond(r) is True]
            if raw_field is not None:
                return [r[raw_field] for r in rows if raw_field in r]
            return rows
        m = _CREATE_PRIMARY.match(statement)
        if m:
            ks = _ident(m, 3)
            check_bucket(ks)
            return self._create(ks, _ident(m, 1) or PRIMARY_NAME, [], None, True,
                                m.group(5), m.group(6))
        m = _CREATE.match(statement)
        if m:
            ks = _ident(m, 3)
            check_bucket(ks)
            inner, tail = _parenthesized(m.group(5))
            t = _CREATE_TAIL.match(tail)
            if t is None:
                raise IndexError_(3000, "syntax error - after the index keys: %r" % tail.strip())
            keys = _split_top(inner)
            if not keys:
                raise IndexError_(3000, "syntax error - CREATE INDEX needs at least one key")
            return self._create(ks, _ident(m, 1), keys, t.group(1), False, t.group(2),
                                t.group(3))
        m = _DROP_PRIMARY.match(statement)
        if m:
            ks = _ident(m, 1)
            check_bucket(ks)
            return self._drop(ks, PRIMARY_NAME, primary=True)
        m = _DROP.match(statement)
        if m:
            ks = _ident(m, 1)
            check_bucket(ks)
            return self._drop(ks, _ident(m, 3))
        m = _BUILD.match(statement)
        if m:
            ks = _ident(m, 1)
            check_bucket(ks)
            inner, tail = _parenthesized(m.group(3))
            if _BUILD_TAIL.match(tail) is None:
                raise IndexError_(3000, "syntax error - after BUILD INDEX: %r" % tail.strip())
            return self._build(ks, [_unquote(n) for n in _split_top(inner)])
        return None

    def _settle(self):
        now = time.monotonic()
        for defs in self.by_bucket.values():
            for d in defs.values():
                ready = d.get("_online_at")
                if ready is not None and now >= ready:
                    d["state"] = "online"
                    del d["_online_at"]

    def _list(self, keyspace):
        self._settle()
        rows = []
        for ks in sorted(self.by_bucket):
            if keyspace is not None and ks != keyspace:
                continue
            defs = self.by_bucket[ks].values()
            for d in sorted(defs, key=lambda d: (not d.get("is_primary", False), d["name"])):
                rows.append(dict((k, v) for k, v in d.items() if not k.startswith("_")))
        return rows

    def _create(self, ks, name, keys, condition, primary, using, with_):
        if using and using.lower() != "gsi":
            raise IndexError_(3000, "the mock's query service makes GSI indexes only")
        opts = {}
        if with_:
            try:
                opts = json.loads(with_.replace("'", '"'))
            except ValueError:
                raise IndexError_(3000, "syntax error - WITH takes a JSON object")
            if not isinstance(opts, dict):
                raise IndexError_(3000, "syntax error - WITH takes a JSON object")
        defs = self.by_bucket.setdefault(ks, {})
        if name in defs:
            raise IndexError_(4300, "The index %s already exists." % (name,))
        d = {"datastore_id": "http://127.0.0.1:8091", "id": uuid.uuid4().hex[:16],
             "keyspace_id": ks, "name": name, "namespace_id": "default",
             "state": "deferred" if opts.get("defer_build") else "online", "using": "gsi"}
        d["index_key"] = keys          # [] for a primary index, as the service lists it
        if primary:
            d["is_primary"] = True
        if condition:
            d["condition"] = condition.strip()
        defs[name] = d
        return []

    def _drop(self, ks, name, primary=False):
        defs = self.by_bucket.get(ks, {})
        d = defs.get(name)
        if d is None or (primary and not d.get("is_primary")):
            raise IndexError_(12004, "Index Not Found - cause: GSI index %s not found." % (name,))
        del defs[name]
        return []

    def _build(self, ks, names):
        if not names:
            raise IndexError_(3000, "syntax error - BUILD INDEX needs index names")
        defs = self.by_bucket.get(ks, {})
        for n in names:
            if n not in defs:
                raise IndexError_(12004, "Index Not Found - cause: GSI index %s not found." % n)
        self._settle()
        for n in names:
            if defs[n]["state"] not in ("deferred", "pending"):
                raise IndexError_(5000, "GSI CreateIndex() - cause: Build Already In "
                                  "Progress or Index %s is already built." % n)
        for n in names:
            defs[n]["state"] = "building"
            defs[n]["_online_at"] = time.monotonic() + self.build_delay
        return []

    # -- for tests ------------------------------------------------------------------------
    def describe(self, bucket=None):
        self._settle()
        return self._list(bucket)

    def clear(self):
        self.by_bucket = {}
