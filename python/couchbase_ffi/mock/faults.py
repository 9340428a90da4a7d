"""Fault injection: what the next matching requests on a node suffer.

A fault has a kind (``delay``, ``drop``, ``garbage``, ``truncate``, ``status``), an optional
node (None = every node), an opcode filter and a count (None = until cleared).  The opcode
filter ``None`` means "data commands": everything except the session and background commands
in ``SESSION_OPCODES`` (HELLO, SASL, SELECT_BUCKET, GET_ERROR_MAP, GET_CLUSTER_CONFIG, NOOP,
QUIT), so that a client's handshake and config polling do not use up a count meant for its
next operation.  Pass ``opcodes="all"`` to match those too.
"""
from couchbase_ffi.mock.protocol import Op, opcode_of

SESSION_OPCODES = frozenset([
    Op.HELLO, Op.SASL_LIST_MECHS, Op.SASL_AUTH, Op.SASL_STEP, Op.SELECT_BUCKET,
    Op.GET_ERROR_MAP, Op.GET_CLUSTER_CONFIG, Op.NOOP, Op.QUIT, Op.QUITQ,
])

KINDS = ("delay", "drop", "garbage", "truncate", "status")


def opcode_filter(opcodes):
    """None -> None (data commands); "all" -> "all"; else a frozenset of opcode numbers."""
    if opcodes is None or opcodes == "all":
        return opcodes
    if isinstance(opcodes, (int, str)):
        opcodes = [opcodes]
    return frozenset(opcode_of(o) for o in opcodes)


class Fault(object):
    __slots__ = ("kind", "node", "opcodes", "count", "seconds", "status")

    def __init__(self, kind, node=None, opcodes=None, count=None, seconds=0.0, status=0):
        if kind not in KINDS:
            raise ValueError("unknown fault kind %r" % (kind,))
        if count is not None and int(count) < 1:
            raise ValueError("count must be >= 1 or None")
        self.kind = kind
        self.node = node
        self.opcodes = opcode_filter(opcodes)
        self.count = None if count is None else int(count)
        self.seconds = float(seconds)
        self.status = int(status)

    def matches(self, node, opcode):
        if self.node is not None and self.node != node:
            return False
        if self.opcodes is None:
            return opcode not in SESSION_OPCODES
        return self.opcodes == "all" or opcode in self.opcodes

    def describe(self):
        return {"kind": self.kind, "node": self.node, "count": self.count,
                "opcodes": (self.opcodes if self.opcodes in (None, "all") else sorted(self.opcodes)),
                "seconds": self.seconds, "status": self.status}


class Faults(object):
    """The active faults, oldest first.  Used on the loop thread only."""

    def __init__(self):
        self.items = []

    def add(self, fault):
        self.items.append(fault)
        return fault

    def clear(self):
        self.items = []

    def take(self, node, opcode):
        """The faults that fire for this request: (delay seconds, action fault or None).

        Every matching delay adds up; of the other kinds the oldest matching one wins.
        Counts of the faults that fired go down; spent faults are removed.
        """
        if not self.items:
            return 0.0, None
        delay = 0.0
        action = None
        fired = []
        for f in self.items:
            if not f.matches(node, opcode):
                continue
            if f.kind == "delay":
                delay += f.seconds
                fired.append(f)
            elif action is None:
                action = f
                fired.append(f)
        for f in fired:
            if f.count is not None:
                f.count -= 1
        self.items = [f for f in self.items if f.count is None or f.count > 0]
        return delay, action
