"""Delivery weekdays as bit masks (ISO days 1..7 as bits 0..6), shared by the engine, the tours and training."""

from __future__ import annotations

ALL_DAYS = 0b1111111

WEEKDAY_NAMES = {1: "lundi", 2: "mardi", 3: "mercredi", 4: "jeudi", 5: "vendredi", 6: "samedi", 7: "dimanche"}


def weekdays_to_mask(days) -> int:
    mask = 0
    for day in days or ():
        if 1 <= int(day) <= 7:
            mask |= 1 << (int(day) - 1)
    return mask


def mask_to_weekdays(mask: int) -> list[int]:
    return [day for day in range(1, 8) if mask & (1 << (day - 1))]
