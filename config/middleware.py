"""Site-wide request checks: control characters answered with a 400, and the CSP with the tile server.

Control characters (NUL and the other C0 codes) are bad input: a 400 naming the field, never a crash.

PostgreSQL refuses NUL in text (psycopg raises DataError, a 500), and no person types the
other C0 codes. Query strings and headers may hold none of them; form fields and JSON strings
may hold tab, line feed and carriage return (a textarea sends them), nothing else.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from csp.middleware import CSPMiddleware
from django.conf import settings
from django.http import JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.utils.translation import gettext as _

_ANY_C0 = re.compile(r"[\x00-\x1f]")
_C0_BUT_WHITESPACE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _first_bad_field(request) -> str | None:
    if _ANY_C0.search(request.path):
        return "URL"
    for name, values in request.GET.lists():
        if _ANY_C0.search(name):
            return name.translate({c: None for c in range(32)}) or "?"
        if any(_ANY_C0.search(value) for value in values):
            return name
    for key, value in request.META.items():
        if key.startswith("HTTP_") and isinstance(value, str) and _ANY_C0.search(value):
            return key[5:].replace("_", "-").title()
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    content_type = request.content_type or ""
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            fields = request.POST
        except (MultiPartParserError, ValueError):
            return None  # the view answers a malformed body
        for name, values in fields.lists():
            if _ANY_C0.search(name):
                return name.translate({c: None for c in range(32)}) or "?"
            if any(_C0_BUT_WHITESPACE.search(value) for value in values):
                return name
    elif content_type == "application/json" or content_type.endswith("+json"):
        try:
            data = json.loads(request.body or b"null")
        except (ValueError, UnicodeDecodeError):
            return None  # the view answers a malformed body
        return _bad_json_field(data, None)
    return None


def _bad_json_field(data, field: str | None) -> str | None:
    """The top-level key whose value (at any depth) holds a forbidden control character."""
    if isinstance(data, str):
        return (field or "non_field_errors") if _C0_BUT_WHITESPACE.search(data) else None
    if isinstance(data, list):
        for item in data:
            if bad := _bad_json_field(item, field):
                return bad
    elif isinstance(data, dict):
        for key, value in data.items():
            here = field or key
            if _ANY_C0.search(key):
                return field or key.translate({c: None for c in range(32)}) or "non_field_errors"
            if bad := _bad_json_field(value, here):
                return bad
    return None


class ControlCharactersMiddleware:
    """Answers 400 (JSON for /api/, a French page elsewhere) when any input holds a control character."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        field = _first_bad_field(request)
        if field is None:
            return self.get_response(request)
        message = _("caractère de contrôle interdit (un caractère invisible, souvent venu d'un copier-coller)")
        # Data routes (the API, *.geojson, *.csv, tiles) answer JSON; pages answer a page.
        if request.path.startswith("/api/") or "." in request.path.rsplit("/", 1)[-1]:
            return JsonResponse({field: [message]}, status=400)
        return render(request, "400.html", {"field": field, "message": message}, status=400)


def tile_source(url: str) -> str | None:
    """The CSP source of a tile URL template: `https://{s}.tile.example/{z}/…` → `https://*.tile.example`."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc.replace('{s}', '*')}"


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, with the basemap's tile server allowed as an image source.

    Read from MAP_TILE_URL at each response (not frozen in the settings module), so a change of
    tile server (or a test's) never leaves the maps without a background.
    """

    def get_policy_parts(self, request, response, report_only=False):
        parts = super().get_policy_parts(request, response, report_only)
        if report_only:
            return parts
        update = dict(parts.update or {})
        if source := tile_source(settings.MAP_TILE_URL):
            update["img-src"] = [*update.get("img-src", []), source]
        if request.path.startswith("/admin/") and not parts.nonce:
            # GeoDjango's admin map widget writes an inline script from a form template rendered
            # without the request, so it cannot carry a nonce. Staff-only pages; elsewhere inline
            # scripts need the nonce (and browsers ignore 'unsafe-inline' once a nonce is listed).
            update["script-src"] = [*update.get("script-src", []), "'unsafe-inline'"]
        parts.update = update
        return parts
