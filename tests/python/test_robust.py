"""Timeouts the C core honours whatever the servers (or the resolver) do, seen
from the Bucket: the REST timeout reaches the core; a host name that does not
resolve is a typed error, promptly."""
import time

import pytest

from couchbase_ffi import exceptions as E
from couchbase_ffi._lowlevel import lib
from couchbase_ffi.bucket import Bucket


def test_http_timeout_reaches_the_core(memcached):
    b = Bucket(memcached.connstr + "?http_timeout=3")
    try:
        assert lib.cbffi_client_get_timeout(b._c, lib.CBFFI_TIMEOUT_HTTP) == 3000000
        assert b._cntl(0x0F, value_type="timeout") == 3.0
        b._cntl(0x0F, 1.5, value_type="timeout")
        assert lib.cbffi_client_get_timeout(b._c, lib.CBFFI_TIMEOUT_HTTP) == 1500000
    finally:
        b.close()
    b = Bucket(memcached.connstr)
    try:
        assert b._cntl(0x0F, value_type="timeout") == 75.0  # libcouchbase's default
    finally:
        b.close()


@pytest.mark.parametrize("where", ["memcached://no-such-host.invalid",
                                   "couchbase://no-such-host.invalid/default"])
def test_a_name_that_does_not_resolve_is_a_typed_error(where):
    # (.invalid never resolves; the lookup runs off the loop, bounded by the
    # connect timeout even if the resolver hangs)
    t0 = time.monotonic()
    with pytest.raises(E.UnknownHostError):
        b = Bucket(where + "?connect_timeout=1.5")
        try:
            b.get("k")
        finally:
            b.close()
    assert time.monotonic() - t0 < 3.5
