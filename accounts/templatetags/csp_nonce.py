"""`{{ map.header|with_nonce:request.csp_nonce }}`: lets the inline scripts of generated HTML run under the CSP."""

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

register = template.Library()

_SCRIPT_TAG = re.compile(r"<script(?![^>]*\bnonce=)(?=[\s>])", re.IGNORECASE)


@register.filter
def with_nonce(html: str, nonce) -> str:
    """Adds the nonce to every `<script>` tag of trusted, server-built HTML (Folium's map header).

    Never apply it to user content: it would let that content's scripts run.
    """
    if not html:
        return ""
    # Only server-built HTML comes here (the docstring's rule); the nonce itself is escaped.
    return mark_safe(_SCRIPT_TAG.sub(f'<script nonce="{escape(str(nonce))}"', str(html)))  # noqa: S308
