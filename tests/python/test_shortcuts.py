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
