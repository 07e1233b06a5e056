"""`limit`/`offset` pages that refuse what they cannot read (400 naming the parameter), for every app's API.

DRF's LimitOffsetPagination silently replaces `limit=false` or `offset=null` with its defaults; the
schema declares integers with bounds, so anything else is bad input.
"""

from __future__ import annotations

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination

MAX_OFFSET = 1_000_000


class StrictLimitOffsetPagination(LimitOffsetPagination):
    default_limit = 20
    max_limit = 100

    def _read(self, request, name: str, *, minimum: int, maximum: int) -> int | None:
        raw = request.query_params.get(name)
        if raw is None:
            return None
        if not raw.isdigit() or not minimum <= int(raw) <= maximum:
            raise ValidationError({name: [f"un entier entre {minimum} et {maximum}"]})
        return int(raw)

    def get_limit(self, request):
        # Above the maximum, a page is capped rather than refused (clients ask for "everything").
        limit = self._read(request, self.limit_query_param, minimum=1, maximum=2**31 - 1)
        return self.default_limit if limit is None else min(limit, self.max_limit)

    def get_offset(self, request):
        return self._read(request, self.offset_query_param, minimum=0, maximum=MAX_OFFSET) or 0

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.limit_query_param: {"minimum": 1, "maximum": 2**31 - 1},
            self.offset_query_param: {"minimum": 0, "maximum": MAX_OFFSET},
        }
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
            if parameter["name"] == self.limit_query_param:
                parameter["description"] = (
                    f"Nombre de résultats par page (au plus {self.max_limit} : au-delà, plafonné)."
                )
        return parameters
