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
