"""The history of a network's AMAPs: created and closed each year, and the coverage on 31 December."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import numpy as np
from django.utils import timezone
from django.utils.translation import gettext_lazy

from directory.models import Amap
from geo import coverage as geo_coverage

HISTORY_RULE = gettext_lazy(
    "Une AMAP compte à une date donnée à partir de sa date de création et jusqu'à sa date de fermeture ; "
    "les AMAP sans date de création, et celles arrêtées sans date de fermeture, ne sont pas comptées."
)


def coverage_history(*, all_amaps: list[dict], units: geo_coverage.Units, radius_km: float) -> dict:
    """AMAPs created and closed per year, and the coverage on 31 December of each year."""
    dated = []
    undated = 0
    for amap in all_amaps:
        if amap["status"] == Amap.Status.CREATING:
            continue
        if amap["founded_on"] is None:
            undated += 1
            continue
        if amap["closed_on"] is None and amap["status"] != Amap.Status.ACTIVE:
            undated += 1  # stopped, but when?
            continue
        dated.append(amap)
    today = timezone.localdate()
    created = Counter(a["founded_on"].year for a in dated)
    closed = Counter(a["closed_on"].year for a in dated if a["closed_on"])
    years = []
    if dated:
        first = min(a["founded_on"].year for a in dated)
        dates = [dt.date(y, 12, 31) if y < today.year else today for y in range(first, today.year + 1)]
        points = geo_coverage.coverage_history(
            units=units,
            lon=np.array([a["lon"] for a in dated]),
            lat=np.array([a["lat"] for a in dated]),
            opened=[a["founded_on"] for a in dated],
            closed=[a["closed_on"] for a in dated],
            dates=dates,
            radius_km=radius_km,
        )
        for point in points:
            years.append(
                {
                    "year": point.date.year,
                    "date": point.date.isoformat(),
                    "created": created.get(point.date.year, 0),
                    "closed": closed.get(point.date.year, 0),
                    "active": point.points,
                    "covered_population": point.covered_population,
                    "share": round(point.share, 6),
                }
            )
    return {"years": years, "dated_amaps": len(dated), "undated_amaps": undated, "rule": str(HISTORY_RULE)}
