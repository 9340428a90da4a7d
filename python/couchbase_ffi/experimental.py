"""2.x's ``couchbase.experimental``: the switch 2.x required before importing its
unstable APIs (``acouchbase`` among them).  Here nothing is gated on it:
``enable()`` is remembered and ``enabled_or_raise()`` raises only if it was not
called, for code that checks it itself."""

_USE_EXPERIMENTAL_APIS = False


def enable():
    """Allow the experimental APIs (a no-op here: none is gated)."""
    global _USE_EXPERIMENTAL_APIS
    _USE_EXPERIMENTAL_APIS = True


def enabled():
    return _USE_EXPERIMENTAL_APIS


def enabled_or_raise():
    """ImportError unless enable() was called (2.x's check)."""
    if not _USE_EXPERIMENTAL_APIS:
        raise ImportError("Your application has requested use of an unstable couchbase "
                          "client API. Call couchbase.experimental.enable() first.")
