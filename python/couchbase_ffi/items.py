"""Items: values that carry their own key, CAS and per-item options (couchbase 2.x).

Pass an ``ItemOptionDict`` or ``ItemSequence`` to the ``*_multi`` calls (or
the ``*_items`` aliases); results are written back onto the items
(``item.value``, ``item.cas``, ``item.flags``, ``item.rc``).
"""
from couchbase_ffi.result import ValueResult


class Item(ValueResult):
    """A key with a value, CAS and flags that operations update in place."""
    __slots__ = ()

    def __init__(self, key=None, value=None):
        ValueResult.__init__(self, key, 0, 0, value, 0)

    def as_itcoll(self, **options):
        if options:
            return ItemOptionDict({self: options})
        return ItemSequence([self])


class ItemCollection(object):
    """Base of item collections."""

    def _items_and_options(self):
        raise NotImplementedError

    def _as_pairs(self):
        return [(item.key, (item, opts)) for item, opts in self._items_and_options()]


class ItemSequence(ItemCollection):
    """Items without per-item options."""

    def __init__(self, items):
        self._items = list(items)

    def _items_and_options(self):
        return [(item, {}) for item in self._items]

    def __len__(self):
        return len(self._items)

    def __iter__(self):
        return iter(self._items)


class ItemOptionDict(ItemCollection):
    """item -> options (e.g. ``{"ttl": 10, "format": FMT_UTF8, "ignore_cas": True}``)."""

    def __init__(self, d=None):
        self._d = dict(d or {})

    def add(self, item, **options):
        self._d[item] = options

    def create_and_add(self, key, value=None, **options):
        item = Item(key, value)
        self.add(item, **options)
        return item

    @property
    def dict(self):
        return self._d

    def _items_and_options(self):
        return list(self._d.items())

    def __len__(self):
        return len(self._d)

    def __iter__(self):
        return iter(self._d)
