"""Whole public pages for anonymous visitors, kept in the cache under the public data's version.

Only what every anonymous visitor gets alike is kept and replayed: a GET or HEAD carrying no cookie
but the CSRF one (so no session: nobody logged in, no messages waiting), answered 200 by the view
without touching the session, the CSRF token or the messages, with no cookie, `Vary` or private
`Cache-Control` of its own. Anyone else goes through the view as usual, and what the view answers
them is never kept.

The key holds the view, the public data's version (`selectors.public_version`: it changes at the
commit of any change to AMAPs, farms, networks, partnerships, products or contracts, bulk writes
included), today's date (partnerships and open contracts follow the calendar), the language, the
scheme and host (absolute links), the path and the query string with its parameters sorted.

Each page carries a Content-Security-Policy nonce of its own: a kept page remembers the nonce it was
drawn with and each replay puts the request's fresh nonce in its place (the CSP middleware then
announces that one). A page without a nonce gets an `ETag`, and a revalidation that names it gets a
bodiless 304.

Measured (benchmarks/bench_load.py, `make demo` directory): the search page costs ~25 ms of CPU to
draw and ~1 ms to replay, an AMAP page ~20 ms and ~1 ms.
"""

from __future__ import annotations

import functools
import hashlib

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse, HttpResponseNotModified
from django.utils import timezone, translation
from django.utils.cache import patch_vary_headers
from django.utils.http import urlencode

from .selectors import public_version

KEY_PREFIX = "page:1"  # bump when the shape of an entry changes
# Response attributes other middleware reads (CSP decorators, the embed's framing exemption).
_RESPONSE_ATTRIBUTES = ("_csp_config", "_csp_update", "_csp_replace", "_csp_exempt", "xframe_options_exempt")
HIT_HEADER = "X-Page-Cache"


def anonymous_page_cache(view):
    """Keep `view`'s pages for anonymous visitors `settings.PAGE_CACHE_SECONDS` (0: never)."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        seconds = settings.PAGE_CACHE_SECONDS
        if not seconds or not _anonymous_read(request):
            return view(request, *args, **kwargs)
        version = public_version()  # before the view's own reads: never newer than the data
        if version is None:
            return view(request, *args, **kwargs)
        key = _key(request, view, version)
        entry = cache.get(key)
        if entry is not None:
            return _replay(request, entry)
        response = view(request, *args, **kwargs)
        if _keepable(request, response):
            entry = _entry(request, response)
            cache.set(key, entry, seconds)
            _mark(response, entry, hit=False)
        return response

    return wrapped


def _anonymous_read(request) -> bool:
    if request.method not in ("GET", "HEAD"):
        return False
    if not set(request.COOKIES) <= {settings.CSRF_COOKIE_NAME}:
        return False  # a session (logged in, or messages, or a choice made), or a language cookie
    user = getattr(request, "user", None)
    return user is None or not user.is_authenticated


def _key(request, view, version: int) -> str:
    query = urlencode(sorted((name, value) for name, values in request.GET.lists() for value in values))
    parts = (
        f"{view.__module__}.{view.__qualname__}",
        str(version),
        timezone.localdate().isoformat(),
        translation.get_language() or "",
        request.scheme,
        request.get_host(),
        request.path,
        query,
    )
    digest = hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()
    return f"{KEY_PREFIX}:{digest}"


def _keepable(request, response) -> bool:
    if response.status_code != 200 or response.streaming or response.cookies:
        return False
    if request.META.get("CSRF_COOKIE_NEEDS_UPDATE"):
        return False  # the page holds a CSRF token: it belongs to this visitor
    session = getattr(request, "session", None)
    if session is not None and session.modified:
        return False
    messages = getattr(request, "_messages", None)
    if messages is not None and getattr(messages, "added_new", False):
        return False
    if response.has_header("Vary") or response.has_header("Set-Cookie"):
        return False
    cache_control = response.get("Cache-Control", "")
    return not any(word in cache_control for word in ("private", "no-store", "no-cache"))


def _entry(request, response) -> dict:
    nonce = getattr(request, "_csp_nonce", None)
    content = response.content
    if not (isinstance(nonce, str) and nonce.encode() in content):
        nonce = None
    return {
        "status": response.status_code,
        "content": content,
        "headers": list(response.items()),
        "attributes": {name: getattr(response, name) for name in _RESPONSE_ATTRIBUTES if hasattr(response, name)},
        "nonce": nonce,
        # A page with a nonce is new at each response: no revalidation for it.
        "etag": None if nonce else f'"{hashlib.blake2b(content, digest_size=16).hexdigest()}"',
    }


def _replay(request, entry: dict) -> HttpResponse:
    etag = entry["etag"]
    if etag and etag in _etags(request.headers.get("If-None-Match", "")):
        response = HttpResponseNotModified()
    else:
        content = entry["content"]
        if entry["nonce"]:
            content = content.replace(entry["nonce"].encode(), str(request.csp_nonce).encode())
        response = HttpResponse(content, status=entry["status"])
        for name, value in entry["headers"]:
            response[name] = value
    for name, value in entry["attributes"].items():
        setattr(response, name, value)
    _mark(response, entry, hit=True)
    # What the view's templates did by reading `request.user`: a shared cache must not hand this
    # anonymous page to someone with a session.
    patch_vary_headers(response, ("Cookie",))
    return response


def _mark(response, entry: dict, *, hit: bool) -> None:
    response[HIT_HEADER] = "hit" if hit else "miss"
    if entry["etag"]:
        response["ETag"] = entry["etag"]


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
