"""Items: results that carry their own key, value and CAS (couchbase 2.x).

Pass an ``ItemSequence`` or ``ItemOptionDict`` to a ``*_multi`` call (or the
``*_items`` names); each operation writes its outcome back onto its Item
(``value``, ``cas``, ``flags``, ``rc``).  Iterating a collection yields
``(item, options)`` pairs, options being a dict or None, as in 2.x.
"""
from couchbase_ffi.result import ValueResult


class Item(ValueResult):
    """A key with a value, CAS and flags that operations update in place."""
    __slots__ = ("__dict__",)  # users may add attributes, as with 2.x Items

    def __init__(self, key=None, value=None):
        ValueResult.__init__(self, key, 0, 0, value, 0)

    def as_itcoll(self, **options):
        """A collection holding only this item (with ``options`` if given)."""
        if options:
            return ItemOptionDict({self: options})
        return ItemSequence([self])


class ItemCollection(object):
    """Base of the item collections: iterating yields ``(item, options)``."""

    def __len__(self):
        raise NotImplementedError()

    def __iter__(self):
        raise NotImplementedError()

    def dict_items(self):
        return iter(self)


class ItemOptionDict(ItemCollection):
    """item -> options, e.g. ``{"ttl": 10, "format": FMT_UTF8, "ignore_cas": True}``
    (append_items/prepend_items take the data to add as ``fragment``)."""

    def __init__(self, d=None):
        self._d = {} if d is None else d

    @property
    def dict(self):
        return self._d

    def add(self, itm, **options):
        """Add (or replace) an item with its options."""
        self._d[itm] = options or None

    def create_and_add(self, key, value=None, cas=0, **options):
        """Make an Item, add it with ``options`` and return it."""
        itm = Item(key, value)
        itm.cas = cas
        self.add(itm, **options)
        return itm

    def __iter__(self):
        return iter(self._d.items())

    def __len__(self):
        return len(self._d)


class ItemSequence(ItemCollection):
    """Items without options (a single Item is accepted too)."""

    def __init__(self, obj):
        self._seq = [obj] if isinstance(obj, Item) else obj

    @property
    def sequence(self):
        return self._seq

    def __iter__(self):
        for itm in self._seq:
            yield itm, None

    def __len__(self):
        return len(self._seq)
