"""Where the apps above contracts add to its pages and feeds, without contracts importing them.

contracts imports no app above it (docs/ARCHITECTURE.md): an app that wants a block on the
distribution sheet or events in a member's calendar feed registers a function here in its
`AppConfig.ready()`, the way apps fill accounts' dashboard (accounts/dashboard.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.template.loader import render_to_string


@dataclass(frozen=True)
class SheetSection:
    name: str
    position: int
    template_name: str
    context: Callable[..., dict]


_sheet_sections: dict[str, SheetSection] = {}
_feed_sources: dict[str, Callable[..., list]] = {}


def register_delivery_sheet_section(
    *, name: str, position: int, template_name: str, context: Callable[..., dict]
) -> None:
    """Add (or replace, by `name`) a block of the distribution sheet; `context(delivery=...)` feeds its template."""
    _sheet_sections[name] = SheetSection(name=name, position=position, template_name=template_name, context=context)


def delivery_sheet_sections_render(*, request, delivery) -> list[str]:
    """Each registered block's HTML for this delivery, in order."""
    sections = sorted(_sheet_sections.values(), key=lambda section: (section.position, section.name))
    return [
        render_to_string(section.template_name, section.context(delivery=delivery), request=request)
        for section in sections
    ]


def register_member_feed_source(*, name: str, components: Callable[..., list]) -> None:
    """Add (or replace) a source of the member's calendar feed: `components(user=...)` returns
    icalendar `Event` components (each with its own stable UID)."""
    _feed_sources[name] = components


def member_feed_components(*, user) -> list:
    found = []
    for name in sorted(_feed_sources):
        found += list(_feed_sources[name](user=user))
    return found
