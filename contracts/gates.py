"""Conditions an app above contracts may put on subscribing, without contracts naming it.

A contract with `requires_membership` asks « is this person a member in good standing of the
AMAP? ». contracts cannot answer (adhésions live in `members`, which imports contracts), so the
app that knows registers a check in its `AppConfig.ready()`:

    register_membership_check(check)   # check(user=..., contract=...) -> str | None (the reason, in French)

With no check registered, a contract that requires membership refuses every subscription: a
condition nobody can verify is not met.
"""

from __future__ import annotations

from collections.abc import Callable

from django.utils.translation import gettext as _

MembershipCheck = Callable[..., "str | None"]

_checks: dict[str, MembershipCheck] = {}


def register_membership_check(name: str, check: MembershipCheck) -> None:
    """Add (or replace, by `name`) a check run before subscribing to a contract that requires membership."""
    _checks[name] = check


def membership_refusals(*, user, contract) -> list[str]:
    """Why `user` may not subscribe to `contract` yet (empty when they may)."""
    if not getattr(contract, "requires_membership", False):
        return []
    if not _checks:
        return [_("Ce contrat demande une adhésion à jour à l'AMAP, qui ne peut pas être vérifiée.")]
    return [reason for check in _checks.values() if (reason := check(user=user, contract=contract))]
