"""The sections of « Mon espace » (the account dashboard), filled in by the apps above accounts.

accounts imports no other app: each app registers its own sections in its `AppConfig.ready()`
(`register_section(...)`), with the template that draws it and a function giving that
template its context for the signed-in person. The page shows them by `position`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.template.loader import render_to_string


@dataclass(frozen=True)
class Section:
    name: str
    position: int
    template_name: str
    context: Callable[..., dict] | None = None


_sections: dict[str, Section] = {}


def register_section(
    *, name: str, position: int, template_name: str, context: Callable[..., dict] | None = None
) -> None:
    """Add (or replace, by `name`) a dashboard section; `context(user=...)` returns its template's context."""
    _sections[name] = Section(name=name, position=position, template_name=template_name, context=context)


def sections() -> list[Section]:
    return sorted(_sections.values(), key=lambda section: (section.position, section.name))


def sections_render(*, request) -> list[str]:
    """Each section's HTML for the signed-in person, in order."""
    return [
        render_to_string(
            section.template_name,
            section.context(user=request.user) if section.context else {},
            request=request,
        )
        for section in sections()
    ]
