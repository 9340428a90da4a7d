"""The performance contract: a synchronous get or store crosses into C once
(cbffi_get_now / cbffi_set_now, or cbffi_get_wait / cbffi_store_wait with a ttl,
cas or other store operation: schedule, wait and harvest); the other single-key
operations twice (schedule, then cbffi_wait which also harvests); a
get or store multi operation twice (cbffi_get_multi / cbffi_store_multi schedule
every key, then one wait that also harvests, into columns); a
pipeline once per operation plus one wait."""
import pytest

from couchbase_ffi import bucket as bucket_module
from couchbase_ffi import FMT_BYTES


class CountingLib(object):
    def __init__(self, lib):
        self._lib = lib
        self.calls = []

    def __getattr__(self, name):
        attr = getattr(self._lib, name)
        if not callable(attr):
            return attr

        def counted(*args):
            self.calls.append(name)
            return attr(*args)
        return counted


@pytest.fixture
def counting(monkeypatch):
    lib = CountingLib(bucket_module.lib)
    monkeypatch.setattr(bucket_module, "lib", lib)
    # the functions bucket.py binds once at import (_get_now = lib.cbffi_get_now ...)
    for alias, fn in list(vars(bucket_module).items()):
        name = getattr(fn, "__name__", "")
        if name.startswith("cbffi_") and fn is getattr(lib._lib, name, None):
            monkeypatch.setattr(bucket_module, alias, getattr(lib, name))
    return lib


def test_single_key_operations_cross_into_c_once_or_twice(bucket, counting):
    bucket.upsert("budget", b"v", format=FMT_BYTES)
    bucket.get("budget")
    bucket.get("budget-missing", quiet=True)
    bucket.upsert("budget", {"json": True})
    bucket.counter("budget-ctr", initial=1)
    bucket.remove("budget-ctr")
    assert counting.calls == ["cbffi_set_now", "cbffi_get_now", "cbffi_get_now",
                              "cbffi_set_now",
                              "cbffi_counter", "cbffi_wait", "cbffi_remove", "cbffi_wait"]


def test_multi_schedules_everything_then_waits_once(bucket, counting):
    keys = ["budget%d" % i for i in range(50)]
    bucket.upsert_multi(dict.fromkeys(keys, 1))
    del counting.calls[:]
    bucket.get_multi(keys)
    assert counting.calls == ["cbffi_get_multi", "cbffi_wait_columns"]
    del counting.calls[:]
    bucket.upsert_multi(dict.fromkeys(keys, 2))
    assert counting.calls == ["cbffi_store_multi", "cbffi_wait_columns"]


def test_pipeline_waits_once_at_the_end(bucket, counting):
    with bucket.pipeline():
        bucket.upsert("budget-p", 1)
        bucket.get("budget-p")
    assert counting.calls == ["cbffi_store", "cbffi_get", "cbffi_wait"]
