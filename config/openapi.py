"""drf-spectacular post-processing: the error answers every operation really gives, declared once.

Every route may answer 400 (bad input, control characters in any field: `{"field": ["reason"]}`);
routes that need a permission or take a write answer 403; routes with an identifier in the path
answer 404. Times go out as "09:00:00", which JSON Schema's `format: time` (RFC 3339, with an
offset) refuses: they are declared by pattern instead.
"""

from __future__ import annotations

import re

from django.urls import Resolver404, resolve
from rest_framework.permissions import AllowAny

FIELD_ERRORS = {
    "type": "object",
    "description": "Chaque champ ou paramètre fautif avec ses raisons, en français.",
    "additionalProperties": {
        "oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}, {"type": "object"}]
    },
    "example": {"near": ["la latitude doit être comprise entre -90 et 90 (reçu 91.0)"]},
}
DETAIL = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
TIME = {"type": "string", "pattern": r"^\d{2}:\d{2}(:\d{2}(\.\d+)?)?$", "example": "18:30:00"}
_PATH_PARAMETER = re.compile(r"\{[^}]+\}")


def _response(description: str, ref: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}


def _needs_permission(path: str, method: str) -> bool:
    if method.upper() not in ("GET", "HEAD", "OPTIONS"):
        return True
    try:
        match = resolve(_PATH_PARAMETER.sub("1", path))
    except Resolver404:
        return True
    view = getattr(match.func, "cls", None)
    if view is None:
        return True
    action = getattr(match.func, "actions", {}).get(method.lower())
    handler = getattr(view, action, None) if action else None
    classes = (getattr(handler, "kwargs", None) or {}).get("permission_classes") or view.permission_classes
    return any(cls is not AllowAny for cls in classes)


def _times_by_pattern(node):
    if isinstance(node, dict):
        if node.get("type") == "string" and node.get("format") == "time":
            node.pop("format")
            node.setdefault("pattern", TIME["pattern"])
        for value in node.values():
            _times_by_pattern(value)
    elif isinstance(node, list):
        for value in node:
            _times_by_pattern(value)


def declare_error_responses(result, generator, request, public):
    """POSTPROCESSING_HOOKS entry: 400/403/404 where they happen, shared error bodies, times by pattern."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("FieldErrors", FIELD_ERRORS)
    schemas.setdefault("ErrorDetail", DETAIL)
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            responses.setdefault("400", _response("Entrée invalide.", "#/components/schemas/FieldErrors"))
            if _needs_permission(path, method):
                responses.setdefault(
                    "403", _response("Non connecté ou non autorisé.", "#/components/schemas/ErrorDetail")
                )
            if "{" in path:
                # A malformed identifier misses every API route: Django's own (HTML) page answers.
                not_found = _response("Introuvable.", "#/components/schemas/ErrorDetail")
                not_found["content"]["text/html"] = {"schema": {"type": "string"}}
                responses.setdefault("404", not_found)
    _times_by_pattern(result)
    return result
