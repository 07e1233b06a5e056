"""The two roundings every coverage figure goes through (kilometres, and counts per 100,000)."""

from __future__ import annotations

import math


def km(metres: float) -> float | None:
    """Metres as kilometres to 10 m; None for an infinite distance (no AMAP at all)."""
    return round(float(metres) / 1000.0, 2) if math.isfinite(metres) else None


def per_100k(count: int, population: int) -> float | None:
    return round(count * 100_000 / population, 2) if population else None
