"""Writes on contracts: templates and their calendars, subscriptions, waiting lists,
amendments, absences, deliveries.

One module per entity: `contracts` (templates), `subscriptions` (subscriptions, waiting list,
amendments), `deliveries` (absences, delivery marks); `common` holds what they share. Callers
import from `contracts.services`, which re-exports the public names.

Every service checks the acting user's right on the object (`accounts.permissions`) and raises
`PermissionDenied`; bad values raise `ValidationError({field: [message in French]})`.
Meaningful events go to the hash-chained evidence trail (`contracts.evidence`). E-mails leave
once the transaction commits.

Rules worth knowing:
- a subscription's items (`SubscriptionItem`) are laid out for the deliveries still to come
  (not cancelled, from today on); `quantities` are what the member takes per delivery, `shares`
  what they hold of the contract's capacity (independent numbers, both chosen by the member);
- pattern « alternate » takes the first delivery to come, then every other one;
- capacity: shares of `HOLDING_STATUSES` subscriptions, minus amendments in progress (they keep
  the shares of the version they replace); the contract row is locked while counting, so
  concurrent sign-ups never oversell it; beyond the capacity, the subscription waits;
- the waiting list is served in order, skipping entries that ask for more shares than are free,
  and only while the contract is open;
- signed subscriptions are never edited nor cancelled here: an amendment (new version) changes
  the quantities from a date on, possibly to nothing.
"""

from ..models import MAX_INSTALMENTS, MAX_PRODUCT_QUANTITY, MAX_SEASON_DAYS
from .common import LIVE_STATUSES
from .contracts import (
    academic_calendar_create,
    contract_close,
    contract_create,
    contract_publish,
    contract_update,
)
from .deliveries import POSTPONE_GRACE_DAYS, absence_cancel, absence_declare, delivery_mark
from .subscriptions import (
    free_shares,
    subscription_amend,
    subscription_cancel,
    subscription_create,
    subscription_set_quantities,
    waiting_list_promote,
)

__all__ = [
    "academic_calendar_create",
    "LIVE_STATUSES",
    "MAX_INSTALMENTS",
    "MAX_PRODUCT_QUANTITY",
    "MAX_SEASON_DAYS",
    "POSTPONE_GRACE_DAYS",
    "absence_cancel",
    "absence_declare",
    "contract_close",
    "contract_create",
    "contract_publish",
    "contract_update",
    "delivery_mark",
    "free_shares",
    "subscription_amend",
    "subscription_cancel",
    "subscription_create",
    "subscription_set_quantities",
    "waiting_list_promote",
]
