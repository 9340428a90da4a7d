"""Items, the *_items calls, append/prepend_multi and durability() on memcached."""
import pytest

from couchbase_ffi import Item, ItemOptionDict, ItemSequence, FMT_UTF8, FMT_BYTES
from couchbase_ffi import exceptions as E


def test_items_store_and_get_write_back(bucket):
    items = [Item("it%d" % i, {"n": i}) for i in range(10)]
    res = bucket.upsert_multi(ItemSequence(items))
    assert res.all_ok
    assert all(it.cas and it.rc == 0 for it in items)
    fresh = [Item(it.key) for it in items]
    bucket.get_multi(ItemSequence(fresh))
    assert [f.value for f in fresh] == [{"n": i} for i in range(10)]
    assert [f.cas for f in fresh] == [it.cas for it in items]


def test_item_cas_is_checked_unless_ignored(bucket):
    it = Item("itcas", 1)
    bucket.upsert_items(ItemSequence([it]))
    bucket.upsert("itcas", 2)  # someone else writes: the item's CAS is stale
    it.value = 3
    with pytest.raises(E.KeyExistsError):
        bucket.replace_items(ItemSequence([it]))
    d = ItemOptionDict()
    d.add(it, ignore_cas=True, format=FMT_UTF8)
    it.value = "three"
    bucket.replace_items(d)
    assert bucket.get("itcas").value == "three"


def test_item_option_dict_per_item_format(bucket):
    d = ItemOptionDict()
    a = d.create_and_add("opt-a", "text", format=FMT_UTF8)
    b = d.create_and_add("opt-b", b"raw", format=FMT_BYTES)
    bucket.upsert_multi(d)
    assert bucket.get("opt-a").flags == FMT_UTF8 and bucket.get("opt-b").value == b"raw"
    assert a.cas and b.cas


def test_get_items_missing_key_sets_rc(bucket):
    missing = Item("item-missing")
    with pytest.raises(E.NotFoundError):
        bucket.get_items(ItemSequence([missing]))
    assert missing.rc == E.NotFoundError.rc
    bucket.get_multi(ItemSequence([missing]), quiet=True)


def test_append_prepend_multi(bucket):
    bucket.upsert_multi({"ap1": b"1", "ap2": b"2"}, format=FMT_BYTES)
    bucket.append_multi({"ap1": b"-a", "ap2": b"-b"})
    bucket.prepend_multi({"ap1": b"x-"})
    assert bucket.get("ap1").value == b"x-1-a" and bucket.get("ap2").value == b"2-b"


def test_durability_context_on_memcached(bucket):
    with pytest.raises(E.NotSupportedError):
        with bucket.durability(persist_to=1):
            pass
    with bucket.durability(persist_to=0, replicate_to=0):
        assert bucket.upsert("dur", 1).success


def test_pipeline_batches_and_fills_results(bucket):
    from couchbase_ffi.bucket import Pipeline
    with bucket.pipeline() as pipe:
        w = bucket.upsert("p1", {"a": 1})
        c = bucket.counter("pctr", initial=7)
        g = bucket.get("p1")
        assert isinstance(pipe, Pipeline) and g.value is None  # not yet sent
    assert w.success and w.cas and g.value == {"a": 1} and g.cas == w.cas
    assert c.value == 7
    assert [r.key for r in pipe.results] == ["p1", "pctr", "p1"]
    assert bucket.get("p1").value == {"a": 1}  # usable again after the block


def test_pipeline_raises_first_failure_at_the_end(bucket):
    bucket.remove("pmiss", quiet=True)
    with pytest.raises(E.NotFoundError):
        with bucket.pipeline():
            ok = bucket.upsert("pok", 1)
            bucket.get("pmiss")
    assert ok.success
    with bucket.pipeline():
        q = bucket.get("pmiss", quiet=True)
    assert not q.success
    with bucket.pipeline() as pipe:
        mres = bucket.get_multi(["pok", "pmiss"], quiet=True)  # allowed, as in 2.x
        assert len(mres) == 2 and mres["pok"].value is None
    assert pipe.results == [mres] and mres["pok"].value == 1 and not mres.all_ok
    with pytest.raises(E.PipelineError):
        with bucket.pipeline():
            with bucket.pipeline():
                pass


def test_collections_iterate_as_2x(bucket):
    a, b = Item("iter-a", 1), Item("iter-b", 2)
    assert list(ItemSequence([a, b])) == [(a, None), (b, None)]
    assert list(ItemSequence(a)) == [(a, None)]  # a single Item is accepted
    d = ItemOptionDict()
    d.add(a, ttl=5)
    d.add(b)
    assert dict(d.dict_items()) == {a: {"ttl": 5}, b: None} and len(d) == 2
    res = bucket.upsert_multi(a.as_itcoll())
    assert res["iter-a"] is a and a.success and a.cas


def test_append_items_updates_item_values(bucket):
    d = ItemOptionDict()
    it = d.create_and_add("frag", "base", format=FMT_UTF8)
    bucket.upsert_multi(d)
    frags = ItemOptionDict()
    frags.add(it, fragment="+more")
    bucket.append_items(frags)
    assert it.value == "base+more" == bucket.get("frag").value
    frags.add(it, fragment="pre-")
    bucket.prepend_items(frags)
    assert it.value == "pre-base+more" == bucket.get("frag").value


def test_item_insert_and_remove_items(bucket):
    bucket.remove_multi(["ins-a", "ins-b"], quiet=True)
    items = [Item("ins-a", [1]), Item("ins-b", [2])]
    assert bucket.insert_items(ItemSequence(items)).all_ok
    with pytest.raises(E.KeyExistsError) as ei:
        bucket.insert_multi(ItemSequence(items))
    assert set(ei.value.all_results) == {"ins-a", "ins-b"}
    assert bucket.remove_items(ItemSequence(items)).all_ok  # each removal checks the item's CAS
