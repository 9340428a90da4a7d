"""cbffi_get_wait / cbffi_store_wait (cbffi.h, "Shortcuts for bindings"):
schedule, wait and harvest one result in a single call, with the same results
as the calls they stand for."""
from couchbase_ffi._lowlevel import ffi, lib


def client(memcached):
    out = ffi.new("cbffi_client **")
    assert lib.cbffi_client_create(out, memcached.connstr.encode(), ffi.NULL, ffi.NULL,
                                   ffi.NULL, 0) == 0
    return ffi.gc(out[0], lib.cbffi_client_destroy)


def test_store_then_get_in_one_call_each(memcached):
    c = client(memcached)
    res = ffi.new("cbffi_result[1]")
    rc = lib.cbffi_store_wait(c, lib.CBFFI_OP_SET, b"sc:k", 4, b"value", 5, 0x1234, 0, 0, res)
    assert rc == 0 and res[0].rc == 0 and res[0].final == 1 and res[0].op == lib.CBFFI_OP_SET
    cas = res[0].cas
    assert cas
    assert lib.cbffi_get_wait(c, b"sc:k", 4, lib.CBFFI_GET_PLAIN, 0, res) == 0
    assert ffi.unpack(res[0].value, res[0].nvalue) == b"value"
    assert res[0].flags == 0x1234 and res[0].cas == cas and res[0].op == lib.CBFFI_OP_GET
    # a CAS mismatch and a miss are results, not refusals
    rc = lib.cbffi_store_wait(c, lib.CBFFI_OP_SET, b"sc:k", 4, b"v", 1, 0, 0, cas + 1, res)
    assert rc == lib.CBFFI_KEY_EEXISTS and res[0].final == 1
    assert lib.cbffi_get_wait(c, b"sc:none", 7, lib.CBFFI_GET_PLAIN, 0, res) == \
        lib.CBFFI_KEY_ENOENT
    assert res[0].final == 1
    assert lib.cbffi_pending(c) == 0 and lib.cbffi_ready(c) == 0


def test_refused_schedule_is_not_a_result(memcached):
    c = client(memcached)
    res = ffi.new("cbffi_result[1]")
    assert lib.cbffi_get_wait(c, b"", 0, lib.CBFFI_GET_PLAIN, 0, res) == lib.CBFFI_EMPTY_KEY
    assert res[0].rc == lib.CBFFI_EMPTY_KEY and res[0].final == 0
    assert lib.cbffi_store_wait(c, 99, b"k", 1, b"v", 1, 0, 0, 0, res) == lib.CBFFI_EINVAL
    assert res[0].final == 0 and b"store" in ffi.string(lib.cbffi_client_last_error(c))
    assert lib.cbffi_pending(c) == 0 and lib.cbffi_ready(c) == 0


def test_a_busy_client_is_refused_and_left_alone(memcached):
    c = client(memcached)
    res = ffi.new("cbffi_result[4]")
    assert lib.cbffi_store(c, lib.CBFFI_OP_SET, b"sc:b", 4, b"1", 1, 0, 0, 0, 7) == 0
    # one operation pending: the shortcut cannot tell its result from ours
    assert lib.cbffi_get_wait(c, b"sc:b", 4, lib.CBFFI_GET_PLAIN, 0, res) == lib.CBFFI_EINVAL
    assert res[0].final == 0 and lib.cbffi_pending(c) == 1
    lib.cbffi_wait(c, ffi.NULL, 0)
    # its result ready but not harvested: refused too
    assert lib.cbffi_store_wait(c, lib.CBFFI_OP_SET, b"sc:b", 4, b"2", 1, 0, 0, 0, res) == \
        lib.CBFFI_EINVAL
    assert lib.cbffi_harvest(c, res, 4) == 1 and res[0].cookie == 7 and res[0].rc == 0
    assert lib.cbffi_get_wait(c, b"sc:b", 4, lib.CBFFI_GET_PLAIN, 0, res) == 0
    assert ffi.unpack(res[0].value, res[0].nvalue) == b"1"


def harvest_all(c):
    res = ffi.new("cbffi_result[64]")
    lib.cbffi_wait(c, ffi.NULL, 0)
    out = {}
    while True:
        n = lib.cbffi_harvest(c, res, 64)
        if not n:
            return out
        for j in range(n):
            r = res[j]
            out[r.cookie] = (r.rc, ffi.unpack(r.value, r.nvalue) if r.nvalue else b"", r.flags,
                             r.op)


def test_store_multi_and_get_multi_schedule_like_one_call_each(memcached):
    c = client(memcached)
    nsched = ffi.new("size_t *")
    keys, values = [b"sm:a", b"sm:bb", b"sm:ccc"], [b"1", b"", b"three"]
    rc = lib.cbffi_store_multi(c, lib.CBFFI_OP_SET, b"".join(keys),
                               ffi.new("uint32_t[]", [len(k) for k in keys]), b"".join(values),
                               ffi.new("uint32_t[]", [len(v) for v in values]),
                               ffi.new("uint32_t[]", [7, 8, 9]), 3, 0, 100, nsched)
    assert rc == 0 and nsched[0] == 3 and lib.cbffi_pending(c) == 3
    got = harvest_all(c)
    assert sorted(got) == [100, 101, 102] and all(v[0] == 0 for v in got.values())
    names = keys + [b"sm:missing"]
    rc = lib.cbffi_get_multi(c, b"".join(names), ffi.new("uint32_t[]", [len(k) for k in names]),
                             4, lib.CBFFI_GET_PLAIN, 0, 5, nsched)
    assert rc == 0 and nsched[0] == 4
    got = harvest_all(c)
    assert got[5] == (0, b"1", 7, lib.CBFFI_OP_GET) and got[6] == (0, b"", 8, lib.CBFFI_OP_GET)
    assert got[7] == (0, b"three", 9, lib.CBFFI_OP_GET)
    assert got[8][0] == lib.CBFFI_KEY_ENOENT


def test_multi_stops_at_the_first_refused_key(memcached):
    c = client(memcached)
    nsched = ffi.new("size_t *")
    keys = [b"sm:x", b"", b"sm:y"]  # the empty key is refused
    lens = ffi.new("uint32_t[]", [len(k) for k in keys])
    rc = lib.cbffi_get_multi(c, b"".join(keys), lens, 3, lib.CBFFI_GET_PLAIN, 0, 0, nsched)
    assert rc == lib.CBFFI_EMPTY_KEY and nsched[0] == 1 and lib.cbffi_pending(c) == 1
    assert sorted(harvest_all(c)) == [0]
    rc = lib.cbffi_store_multi(c, lib.CBFFI_OP_SET, b"".join(keys), lens, b"vvv",
                               ffi.new("uint32_t[]", [1, 1, 1]), ffi.NULL, 3, 0, 10, nsched)
    assert rc == lib.CBFFI_EMPTY_KEY and nsched[0] == 1
    assert sorted(harvest_all(c)) == [10]
    # with nscheduled NULL, and nothing to schedule
    assert lib.cbffi_get_multi(c, ffi.NULL, ffi.NULL, 0, lib.CBFFI_GET_PLAIN, 0, 0,
                               ffi.NULL) == 0
    assert lib.cbffi_pending(c) == 0
