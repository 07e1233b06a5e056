"""Who an AMAP's message can go to: a registry other apps add audiences to.

    register_audience(Audience(key="volunteers", label=..., recipients=fn, service=True, choices=fn))

`recipients(amap=..., param=...)` returns `Recipient`s (one per e-mail); `choices(amap=...)`
lists the values `param` may take (a contract, a week…) or None when the audience takes none.
`service=True` marks messages about the running of the AMAP (distributions, contracts): they
are not marketing and go to everyone in the audience; news honours each member's opt-out.
events adds « the week's volunteers » in its `AppConfig.ready()`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from contracts.models import Contract, Subscription


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str = ""
    user_id: int | None = None
    membership_id: int | None = None


@dataclass(frozen=True)
class Audience:
    key: str
    label: str
    recipients: Callable[..., list[Recipient]]
    service: bool = False  # True: always a service message, whatever the author chooses
    choices: Callable[..., list[tuple[str, str]]] | None = None


_audiences: dict[str, Audience] = {}


def register_audience(audience: Audience) -> None:
    _audiences[audience.key] = audience


def audiences() -> list[Audience]:
    return list(_audiences.values())


def audience(key: str) -> Audience | None:
    return _audiences.get(key)


def _members(amap, *, status: str) -> list[Recipient]:
    from .models import Membership

    rows = Membership.objects.filter(amap=amap, status=status).select_related("user")
    return [Recipient(m.email, m.full_name, m.user_id, m.pk) for m in rows]


def everyone(*, amap, param: str = "") -> list[Recipient]:
    from .models import Membership

    return _members(amap, status=Membership.Status.ACTIVE)


def waiting_list(*, amap, param: str = "") -> list[Recipient]:
    from .models import Membership

    return _members(amap, status=Membership.Status.WAITING)


def contract_choices(*, amap) -> list[tuple[str, str]]:
    contracts = Contract.objects.filter(amap=amap).exclude(status=Contract.Status.DRAFT).order_by("title", "pk")
    return [(str(c.pk), c.title) for c in contracts]


def contract_subscribers(*, amap, param: str = "") -> list[Recipient]:
    from .models import Membership
    from .selectors import LIVE_SUBSCRIPTION

    if not str(param).isdigit():
        return []
    subscriptions = Subscription.objects.filter(
        contract__amap=amap, contract_id=int(param), status__in=LIVE_SUBSCRIPTION, member__isnull=False
    ).select_related("member")
    memberships = dict(Membership.objects.filter(amap=amap, user__isnull=False).values_list("user_id", "pk"))
    return [Recipient(s.member.email, s.member_name, s.member_id, memberships.get(s.member_id)) for s in subscriptions]


def register_builtin() -> None:
    register_audience(Audience("all", _("tous les membres"), everyone))
    register_audience(
        Audience(
            "contract",
            _("les souscripteurs d'un contrat"),
            contract_subscribers,
            service=True,
            choices=contract_choices,
        )
    )
    register_audience(Audience("waiting_list", _("la liste d'attente"), waiting_list))
