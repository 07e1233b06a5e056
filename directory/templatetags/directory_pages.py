"""Small display helpers for the directory pages (French formats)."""

from django import template
from django.utils.translation import gettext as _

from directory.models import Farm, Weekday
from geo.formatting import format_distance

register = template.Library()


@register.filter
def distance(metres) -> str:
    """Metres (a number or a Distance) as the site writes every distance: "190 m", "1,2 km", "12 km"."""
    return format_distance(metres)


@register.filter
def weekdays(numbers) -> str:
    """ISO weekday numbers as French day names: [2, 5] → "mardi, vendredi"."""
    labels = [str(Weekday(n).label) for n in sorted(numbers or []) if n in Weekday.values]
    return ", ".join(labels)


@register.filter
def farm_labels(codes) -> str:
    """Farm label codes as their names: ["ab"] → "Agriculture biologique"."""
    known = dict(Farm.Label.choices)
    return ", ".join(str(known.get(code, code)) for code in codes or [])


@register.simple_tag
def delivery_hours(amap) -> str:
    """ "18h30 – 20h00", "à partir de 18h30", or "" when the hours are unknown."""
    start, end = amap.delivery_start, amap.delivery_end
    if start and end:
        return _("%(start)s – %(end)s") % {"start": _hhmm(start), "end": _hhmm(end)}
    if start:
        return _("à partir de %(start)s") % {"start": _hhmm(start)}
    if end:
        return _("jusqu'à %(end)s") % {"end": _hhmm(end)}
    return ""


def _hhmm(value) -> str:
    return f"{value.hour}h{value.minute:02d}"


@register.simple_tag(takes_context=True)
def page_query(context, param: str, number: int) -> str:
    """The current query string with `param` set to `number` (other lists keep their page)."""
    query = context["request"].GET.copy()
    query[param] = str(number)
    return "?" + query.urlencode()
