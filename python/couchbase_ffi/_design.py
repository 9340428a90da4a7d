"""Bucket.query and the design-document methods (design_create / _get / _publish /
_delete), on libcbffi's cbffi_view_request.  Design documents live on the capi
port as ``/<bucket>/_design/<name>``; development ones are named ``dev_<name>``."""
import json
import time
from urllib.parse import quote

from couchbase_ffi import exceptions as E
from couchbase_ffi.result import HttpResult
from couchbase_ffi.views import iterator as _it

_POLL = 0.05


def mk_devmode(name, use_devmode):
    if name.startswith("_design/"):
        name = name[len("_design/"):]
    if use_devmode and not name.startswith("dev_"):
        return "dev_" + name
    return name


def _check(bucket, what):
    if bucket._memcached:
        raise E.NotSupportedError("views (Bucket.%s) need a couchbase:// cluster; "
                                  "memcached:// has no view service" % (what,))


def query(bucket, design, view, use_devmode=False, **kwargs):
    _check(bucket, "query")
    if not isinstance(design, str) or not isinstance(view, str) or not design or not view:
        raise E.ArgumentError.pyexc("design and view names are non-empty strings",
                                    (design, view))
    itercls = kwargs.pop("itercls", None)
    if itercls is None:
        itercls = getattr(bucket, "_view_class", _it.View)
    return itercls(bucket, mk_devmode(design, use_devmode), view, **kwargs)


def _ddoc_request(bucket, method, name, body=b""):
    if not isinstance(name, str) or not name:
        raise E.ArgumentError.pyexc("a design document name is a non-empty string", name)
    path = "/_design/" + quote(name, safe="")
    rc, status, data, detail = _it.run_sync(bucket, method, path, body)
    if rc != 0:
        raise _it._http_failure(rc, status, data, detail)
    try:
        value = json.loads(data.decode("utf-8")) if data else None
    except (ValueError, UnicodeDecodeError):
        value = data
    return HttpResult(key=name, rc=0, value=value, http_status=status, url=path)


def _exists(bucket, name):
    try:
        _ddoc_request(bucket, "GET", name)
        return True
    except E.HTTPError as e:
        if getattr(e, "http_status", 0) == 404:
            return False
        raise


def _wait(bucket, name, present, syncwait):
    if not syncwait:
        return
    until = time.monotonic() + float(syncwait)
    while _exists(bucket, name) != present:
        if time.monotonic() >= until:
            raise E.TimeoutError.pyexc("wait time for the design action on %r exceeded"
                                       % (name,))
        time.sleep(_POLL)


def design_create(bucket, name, ddoc, use_devmode=True, syncwait=0):
    _check(bucket, "design_create")
    name = mk_devmode(name, use_devmode)
    if isinstance(ddoc, (bytes, str)):
        body = ddoc.encode("utf-8") if isinstance(ddoc, str) else ddoc
        try:
            json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise E.ValueFormatError.pyexc("the design document is not JSON", ddoc, e)
    elif isinstance(ddoc, dict):
        try:
            body = json.dumps(ddoc).encode("utf-8")
        except (TypeError, ValueError) as e:
            raise E.ValueFormatError.pyexc("the design document cannot be encoded as JSON",
                                           ddoc, e)
    else:
        raise E.ArgumentError.pyexc("a design document is a dict or its JSON", ddoc)
    res = _ddoc_request(bucket, "PUT", name, body)
    _wait(bucket, name, True, syncwait)
    return res


def design_get(bucket, name, use_devmode=True):
    _check(bucket, "design_get")
    return _ddoc_request(bucket, "GET", mk_devmode(name, use_devmode))


def design_publish(bucket, name, syncwait=0):
    _check(bucket, "design_publish")
    dev = mk_devmode(name, True)
    prod = dev[len("dev_"):]
    doc = design_get(bucket, dev, use_devmode=False).value
    if isinstance(doc, dict):
        doc = dict((k, v) for k, v in doc.items() if k not in ("_id", "_rev"))
    res = design_create(bucket, prod, doc, use_devmode=False, syncwait=syncwait)
    design_delete(bucket, dev, use_devmode=False, syncwait=syncwait)
    return res


def design_delete(bucket, name, use_devmode=True, syncwait=0):
    _check(bucket, "design_delete")
    name = mk_devmode(name, use_devmode)
    res = _ddoc_request(bucket, "DELETE", name)
    _wait(bucket, name, False, syncwait)
    return res
