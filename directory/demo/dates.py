"""Founding dates of demo AMAPs and partnerships: few in the early 2000s, most between 2007 and 2013."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import numpy as np

FIRST_YEAR, LAST_YEAR = 2001, 2025
LAST_DAY = dt.date(LAST_YEAR, 12, 31)
YEARS = np.arange(FIRST_YEAR, LAST_YEAR + 1)
# Few AMAPs in the early 2000s, most between 2007 and 2013, steady since.
YEAR_WEIGHTS = np.array([1, 2, 3, 5, 7, 9, 12, 14, 14, 13, 12, 11, 10, 9, 8, 7, 7, 6, 6, 6, 7, 6, 5, 5, 4], float)
YEAR_WEIGHTS /= YEAR_WEIGHTS.sum()


_ORDINAL_FIRST = dt.date(FIRST_YEAR, 1, 1).toordinal()
ORDINAL_LAST = LAST_DAY.toordinal()


def years_first_day(years: np.ndarray) -> np.ndarray:
    return np.array([dt.date(int(y), 1, 1).toordinal() for y in range(FIRST_YEAR, LAST_YEAR + 2)])[years - FIRST_YEAR]


def dates_from_ordinals(ordinals: Iterable[int]) -> list[dt.date | None]:
    return [dt.date.fromordinal(int(o)) if o > 0 else None for o in ordinals]
