"""A university year for a student AMAP: its holidays and exams, typed one period a line."""

from __future__ import annotations

import datetime as dt
import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .forms import DATE_INPUT

_BREAK_RE = re.compile(
    r"^\s*(\d{1,2}/\d{1,2}/\d{4}|\d{4}-\d{2}-\d{2})\s*(?:[-–—]|au)?\s*(\d{1,2}/\d{1,2}/\d{4}|\d{4}-\d{2}-\d{2})\s*(.*)$"
)


def _read_date(raw: str) -> dt.date:
    if "/" in raw:
        day, month, year = (int(part) for part in raw.split("/"))
        return dt.date(year, month, day)
    return dt.date.fromisoformat(raw)


class AcademicCalendarForm(forms.Form):
    """A university year for a student AMAP, with its holidays and exams (no delivery then)."""

    name = forms.CharField(label=_("Nom"), max_length=200, help_text=_("Par exemple « Université de Bordeaux »."))
    year_start = forms.IntegerField(label=_("Année de rentrée"), min_value=2000, max_value=2100)
    starts_on = forms.DateField(label=_("Début de l'année universitaire"), widget=DATE_INPUT)
    ends_on = forms.DateField(label=_("Fin de l'année universitaire"), widget=DATE_INPUT)
    breaks = forms.CharField(
        label=_("Vacances et examens"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_("Une période par ligne : « 19/12/2026 04/01/2027 Vacances de Noël » (dates incluses)."),
    )

    def clean_breaks(self) -> list[tuple[dt.date, dt.date, str]]:
        rows = []
        for number, line in enumerate(self.cleaned_data["breaks"].splitlines(), start=1):
            if not line.strip():
                continue
            match = _BREAK_RE.match(line)
            if not match:
                raise ValidationError(
                    _("Ligne %(n)s : deux dates attendues (JJ/MM/AAAA JJ/MM/AAAA), puis un libellé."),
                    params={"n": number},
                )
            try:
                first, last = _read_date(match.group(1)), _read_date(match.group(2))
            except ValueError:
                raise ValidationError(
                    _("Ligne %(n)s : une des dates n'existe pas au calendrier."), params={"n": number}
                ) from None
            if last < first:
                raise ValidationError(_("Ligne %(n)s : la fin précède le début."), params={"n": number})
            rows.append((first, last, match.group(3).strip()[:200]))
        return rows

    def clean(self):
        data = super().clean()
        start, end = data.get("starts_on"), data.get("ends_on")
        if start and end and end <= start:
            self.add_error("ends_on", _("La fin de l'année doit suivre son début."))
        return data
