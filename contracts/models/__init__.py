"""Contracts between an AMAP's members and a farm: templates, calendars, subscriptions,
signatures with their evidence, deliveries.

Vocabulary:
- `Contract` is the contract *template* a référent sets up for one AMAP ↔ farm partnership
  and one season (calendar, products and prices, capacity, payment schedule);
- `Subscription` is one member's contract under that template: their quantities, their
  signatures, their PDF. Signed subscriptions are immutable: an amendment is a new
  `Subscription` version pointing to the one it replaces;
- `Delivery` is one date of the contract's calendar; `SubscriptionItem` says what a
  subscription takes on that date. Every figure (totals, instalments, summaries,
  distribution sheets) is a sum of items, so they always agree.

One module per subject: `base` (limits, field messages), `academic` (university calendars),
`contracts` (templates, their products and calendar exceptions), `subscriptions` (deliveries,
subscriptions, items, absences), `signatures` (charter, signed PDF, signatures, evidence trail).
Callers import from `contracts.models`, which re-exports the public names.
"""

from __future__ import annotations

from .academic import AcademicBreak, AcademicCalendar
from .base import (
    MAX_CAPACITY_SHARES,
    MAX_INSTALMENTS,
    MAX_PRODUCT_QUANTITY,
    MAX_SEASON_DAYS,
    MAX_TEXT_LENGTH,
    HouseMessagesMixin,
)
from .contracts import CalendarException, Contract, ContractProduct, ContractQuerySet, PaymentMethod
from .files import PreparedFile
from .signatures import Charter, ContractDocument, EvidenceEvent, Signature, SignatureChallenge
from .subscriptions import Absence, Delivery, Subscription, SubscriptionItem, SubscriptionQuerySet

__all__ = [
    "Absence",
    "AcademicBreak",
    "AcademicCalendar",
    "CalendarException",
    "Charter",
    "Contract",
    "ContractDocument",
    "ContractProduct",
    "ContractQuerySet",
    "Delivery",
    "EvidenceEvent",
    "HouseMessagesMixin",
    "MAX_CAPACITY_SHARES",
    "MAX_INSTALMENTS",
    "MAX_PRODUCT_QUANTITY",
    "MAX_SEASON_DAYS",
    "MAX_TEXT_LENGTH",
    "PaymentMethod",
    "PreparedFile",
    "Signature",
    "SignatureChallenge",
    "Subscription",
    "SubscriptionItem",
    "SubscriptionQuerySet",
]
