"""Views (``couchbase.views``): :mod:`.iterator` (View, ViewRow) and :mod:`.params`
(Query and the parameter constants).  See docs/python.md, "Views"."""
