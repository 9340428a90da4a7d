"""Streamed answers of the mock's query and view services.

The real services send their rows as they produce them, in a chunked HTTP
body.  A registered answer (``query_register`` / ``view_register``) with any
of these options is sent that way too, so that tests can watch a client
stream (docs/mock.md, "Streamed answers"):

- ``row_delay``: seconds between rows; each row goes out in its own chunk.
- ``repeat``: the registered rows sent that many times over (a result of many
  MB without a registration of many MB).
- ``cut_after`` / ``cut``: after that many rows, ``"stall"`` (nothing more;
  the connection stays open: the client's timeout), ``"close"`` (the
  connection closes mid-body) or ``"garbage"`` (bytes that are not JSON, then
  the rest of the body and a proper end of the chunked encoding: the transport
  is fine, the JSON is not).
- ``chunked``: stream without any of the above.

Without a delay, rows are sent in chunks of about 64 KiB.  Each chunk is
drained before the next, so a client that stops reading holds the service
back (TCP flow control), as a real one would be.  The request's log entry
gets ``rows_sent`` (rows written so far), ``complete`` (the whole body
went out) and ``aborted`` (the client closed the connection first) as the
answer goes.
"""
import asyncio
import json

CUTS = ("stall", "close", "garbage")
_CHUNK = 64 * 1024
_MARK = "\x00rows\x00"
_REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized",
            403: "Forbidden", 404: "Object Not Found", 500: "Internal Server Error"}


class RowStream(object):
    """How an answer's rows are sent (all defaults: not streamed)."""
    __slots__ = ("row_delay", "repeat", "cut_after", "cut", "chunked")

    def __init__(self, row_delay=0.0, repeat=None, cut_after=None, cut=None, chunked=False):
        if isinstance(row_delay, str):
            row_delay = float(row_delay)
        if row_delay is None or row_delay < 0:
            raise ValueError("row_delay must be >= 0")
        if repeat is not None and int(repeat) < 0:
            raise ValueError("repeat must be >= 0")
        if cut is not None and cut not in CUTS:
            raise ValueError("cut must be one of %s" % (", ".join(CUTS),))
        if (cut is None) != (cut_after is None):
            raise ValueError("cut and cut_after go together")
        if cut_after is not None and int(cut_after) < 0:
            raise ValueError("cut_after must be >= 0")
        self.row_delay = float(row_delay)
        self.repeat = None if repeat is None else int(repeat)
        self.cut_after = None if cut_after is None else int(cut_after)
        self.cut = cut
        self.chunked = bool(chunked)

    @property
    def active(self):
        return bool(self.chunked or self.row_delay or self.repeat is not None or
                    self.cut is not None)

    def count(self, rows):
        return len(rows) * (1 if self.repeat is None else self.repeat)

    def rows(self, rows):
        for _ in range(1 if self.repeat is None else self.repeat):
            for r in rows:
                yield r

    def describe(self):
        return {"row_delay": self.row_delay, "repeat": self.repeat,
                "cut_after": self.cut_after, "cut": self.cut, "chunked": self.chunked}


def split_around(doc, key, separators):
    """(head, tail): json.dumps(doc) as bytes before and after the elements of doc[key]
    (the rows array's ``[`` ends the head, its ``]`` starts the tail)."""
    d = dict(doc)
    d[key] = [_MARK]        # same place in the key order
    text = json.dumps(d, separators=separators)
    mark = json.dumps(_MARK)
    i = text.index(mark)
    return text[:i].encode("utf-8"), text[i + len(mark):].encode("utf-8")


def _chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b""


async def send(writer, code, head, tail, rows, how, keep, progress, separators=(",", ":")):
    """Send head, the rows (comma-separated JSON values), tail as a chunked body, as
    ``how`` says.  Returns True when the connection must close after it."""
    progress["aborted"] = False
    try:
        return await _send(writer, code, head, tail, rows, how, keep, progress, separators)
    except (ConnectionError, OSError):
        progress["aborted"] = True
        raise


async def _send(writer, code, head, tail, rows, how, keep, progress, separators):
    lines = ["HTTP/1.1 %d %s" % (code, _REASONS.get(code, "Error")),
             "Content-Type: application/json", "Transfer-Encoding: chunked",
             "Server: Couchbase Server (couchbase_ffi.mock)", "Cache-Control: no-cache"]
    if not keep:
        lines.append("Connection: close")
    progress["rows_sent"] = 0
    progress["complete"] = False
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + _chunk(head))
    await writer.drain()
    pieces, size, sent = [], 0, 0
    for row in how.rows(rows):
        if how.cut is not None and sent + len(pieces) == how.cut_after:
            break
        if how.row_delay and sent + len(pieces):
            await asyncio.sleep(how.row_delay)
        piece = ("," if sent + len(pieces) else "") + json.dumps(row, separators=separators)
        pieces.append(piece.encode("utf-8"))
        size += len(pieces[-1])
        if how.row_delay or size >= _CHUNK:
            writer.write(_chunk(b"".join(pieces)))
            await writer.drain()
            sent += len(pieces)
            progress["rows_sent"] = sent
            pieces, size = [], 0
    if pieces:
        writer.write(_chunk(b"".join(pieces)))
        await writer.drain()
        sent += len(pieces)
        progress["rows_sent"] = sent
    if how.cut == "stall":
        await asyncio.Event().wait()     # silent until the client gives up
    if how.cut == "close":
        return True
    if how.cut == "garbage":
        writer.write(_chunk(b",{\"broken\": tru\x00e} this is not JSON"))
    writer.write(_chunk(tail) + b"0\r\n\r\n")
    await writer.drain()
    progress["complete"] = True
    return not keep
