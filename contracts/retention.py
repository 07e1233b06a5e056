"""Retention of contracts and personal data: what is kept, for how long, and why.

Periods are counted from the end of the contract's season (the day after its last possible
delivery, when both parties' obligations end):

- **10 years for the farm.** A signed contract is a supporting document of the farm's
  accounts, kept ten years (Code de commerce, art. L123-22). The farm's legal copy is the
  signed PDF (`ContractDocument`) with the evidence trail of its signatures: both stay intact
  until then. After 10 years the subscription, its items, absences, signatures, one-time codes
  and PDF are deleted; the evidence events about it are redacted (their digest stays, so the
  chain still verifies). A contract template with no subscription left goes with its deliveries
  and products.
- **5 years for the member.** Personal claims are time-barred after five years (Code civil,
  art. 2224); beyond that the platform has no reason to tie the member's identity to the
  contract (RGPD art. 5.1.e, storage limitation). The database rows then lose the member:
  `Subscription.member` → None, `member_name` → « Adhérent·e n°<id> », the member's signature
  loses its signer, name, IP address and browser, one-time codes are deleted, substitutes'
  names and notes on absences are emptied. The signed PDF, kept for the farm, still names
  both parties: it is the legal copy, not a working record. Subscriptions that were never
  signed by both parties (waiting list, pending, cancelled before signature) bind nobody and
  are deleted at that point.
  When the member's account has been anonymised (erasure request or inactivity), the
  subscriptions of ended seasons are detached at once: nobody can log in to see them anymore.
- **3 years of inactivity.** Accounts with no login for three years (`last_login`, or
  `date_joined` when they never logged in), no subscription whose season ended less than three
  years ago, no role (AMAP team, farm, network, staff) and nothing under legal hold are
  anonymised (CNIL: customer data kept three years after the last contact).
- **Legal holds.** `Contract.legal_hold` or `Subscription.legal_hold` (a dispute, a court
  order) stop every deletion and anonymisation of what they cover (RGPD art. 17.3.e): the
  contract and all its subscriptions, or the subscription with every version of it.

`retention_plan()` says what would happen; `retention_apply()` does it in one transaction and
records the run's counts (no personal data) as a `retention.applied` evidence event.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import CharField, Exists, OuterRef, Q, Value
from django.db.models.functions import Cast, Coalesce, Concat
from django.utils import timezone

from accounts.privacy import personal_data

from .evidence import evidence_append, evidence_redact_many
from .models import (
    Absence,
    Contract,
    ContractDocument,
    EvidenceEvent,
    Signature,
    SignatureChallenge,
    Subscription,
    SubscriptionItem,
)

MEMBER_YEARS = 5
FARMER_YEARS = 10
INACTIVE_YEARS = 3

ANONYMOUS_DOMAIN = "invalid.example"
RUN_EVENT_KIND = "retention.applied"
# Signed by both parties at some point: a contract that binds the farm (a signed one later
# cancelled or superseded still did).
CONCLUDED = Q(status__in=[Subscription.Status.SIGNED, Subscription.Status.SUPERSEDED]) | Q(signed_at__isnull=False)


MEMBER_LABEL_PREFIX = "Adhérent·e n°"  # stored data, in French like the rest of the contract


def member_label(subscription_id: int) -> str:
    """What a detached subscription shows instead of the member's name."""
    return f"{MEMBER_LABEL_PREFIX}{subscription_id}"


def anonymous_email(user_id: int) -> str:
    return f"anonyme-{user_id}@{ANONYMOUS_DOMAIN}"


def is_anonymised(user) -> bool:
    return user.email.endswith("@" + ANONYMOUS_DOMAIN) and not user.is_active


def years_before(day: dt.date | dt.datetime, years: int):
    """The same date `years` earlier (29 February → 28 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def years_after(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def member_retention_end(season_end: dt.date) -> dt.date:
    """Last day the member's identity stays on a signed contract."""
    return years_after(season_end, MEMBER_YEARS)


def farmer_retention_end(season_end: dt.date) -> dt.date:
    """Last day the signed contract is kept at all."""
    return years_after(season_end, FARMER_YEARS)


@dataclass
class Plan:
    """What a retention run does (or would do): ids per action, and what legal holds keep."""

    now: dt.datetime
    detach: list[int] = field(default_factory=list)  # signed subscriptions losing their member
    purge_subscriptions: list[int] = field(default_factory=list)  # signed, the farm's 10 years are over
    purge_unsigned: list[int] = field(default_factory=list)  # never signed, the member's 5 years are over
    purge_contracts: list[int] = field(default_factory=list)
    anonymise_users: list[int] = field(default_factory=list)
    held_subscriptions: list[int] = field(default_factory=list)  # due for an action, kept by a legal hold
    held_contracts: list[int] = field(default_factory=list)
    redact_events: int = 0
    committed: bool = False

    ACTIONS = (
        "detach",
        "purge_subscriptions",
        "purge_unsigned",
        "purge_contracts",
        "anonymise_users",
        "held_subscriptions",
        "held_contracts",
    )

    def counts(self) -> dict[str, int]:
        counts = {name: len(getattr(self, name)) for name in self.ACTIONS}
        counts["redact_events"] = self.redact_events
        return counts

    @property
    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in self.ACTIONS if not name.startswith("held_"))

    def describe(self) -> list[str]:
        """The plan in French, one line per action (for the command and the admin)."""
        today = timezone.localdate(self.now)
        return [
            f"Date de référence : {today:%d/%m/%Y}",
            f"Souscriptions signées dont l'adhérent·e est anonymisé·e (plus de {MEMBER_YEARS} ans "
            f"ou compte anonymisé) : {len(self.detach)}",
            f"Souscriptions jamais signées supprimées : {len(self.purge_unsigned)}",
            f"Souscriptions signées supprimées (plus de {FARMER_YEARS} ans) : {len(self.purge_subscriptions)}",
            f"Contrats supprimés avec leurs distributions et produits : {len(self.purge_contracts)}",
            f"Comptes inactifs depuis plus de {INACTIVE_YEARS} ans anonymisés : {len(self.anonymise_users)}",
            f"Événements du journal de preuves caviardés : {self.redact_events}",
            f"Conservés pour litige : {len(self.held_subscriptions)} souscription(s), "
            f"{len(self.held_contracts)} contrat(s)",
        ]


# --------------------------------------------------------------------------------------------
# Planning (reads only)


def _chains(rows: list[dict]) -> dict[int, int]:
    """Map each subscription id to the root of its version chain (amendments share a root)."""
    parent = {row["pk"]: row["previous_id"] for row in rows}
    roots: dict[int, int] = {}
    for pk in parent:
        node, seen = pk, []
        while parent.get(node) is not None and node not in roots:
            seen.append(node)
            node = parent[node]
        root = roots.get(node, node)
        for visited in [*seen, pk]:
            roots[visited] = root
    return roots


def _held_chains(contract_ids: set[int]) -> tuple[set[int], dict[int, int]]:
    """Chain roots (of these contracts' subscriptions) that a legal hold covers, and each id's root."""
    rows = list(
        Subscription.objects.filter(contract_id__in=contract_ids).values(
            "pk", "previous_id", "legal_hold", "contract__legal_hold"
        )
    )
    roots = _chains(rows)
    return {roots[row["pk"]] for row in rows if row["legal_hold"] or row["contract__legal_hold"]}, roots


def _inactive_users(*, now: dt.datetime, today: dt.date):
    User = get_user_model()
    login_cutoff = years_before(now, INACTIVE_YEARS)
    season_cutoff = years_before(today, INACTIVE_YEARS)
    recent_subscription = Subscription.objects.filter(member=OuterRef("pk")).filter(
        Q(contract__season_end__gte=season_cutoff) | Q(legal_hold=True) | Q(contract__legal_hold=True)
    )
    recent_referent = Contract.objects.filter(referent=OuterRef("pk")).filter(
        Q(season_end__gte=season_cutoff) | Q(legal_hold=True)
    )
    return (
        User.objects.annotate(last_seen=Coalesce("last_login", "date_joined"))
        .filter(last_seen__lt=login_cutoff, is_staff=False, is_superuser=False)
        .exclude(email__endswith="@" + ANONYMOUS_DOMAIN, is_active=False)
        .exclude(amap_roles__isnull=False)
        .exclude(managed_farms__isnull=False)
        .exclude(administered_networks__isnull=False)
        .exclude(Exists(recent_subscription))
        .exclude(Exists(recent_referent))
        .order_by("pk")
    )


def retention_plan(*, now: dt.datetime | None = None) -> Plan:
    """What a retention run would do at `now` (default: now). Reads only."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    member_cutoff = years_before(today, MEMBER_YEARS)  # seasons ended before this day: member side over
    farmer_cutoff = years_before(today, FARMER_YEARS)
    plan = Plan(now=now)

    plan.anonymise_users = list(_inactive_users(now=now, today=today).values_list("pk", flat=True))
    anonymous_members = Q(member__email__endswith="@" + ANONYMOUS_DOMAIN, member__is_active=False) | Q(
        member_id__in=plan.anonymise_users
    )

    # Candidates by age alone; legal holds are applied on whole version chains below.
    member_over = Q(contract__season_end__lt=member_cutoff) | (Q(contract__season_end__lt=today) & anonymous_members)
    subscriptions = Subscription.objects.order_by()
    detach = set(
        subscriptions.filter(CONCLUDED)
        .filter(member_over, member_anonymised_at__isnull=True, contract__season_end__gte=farmer_cutoff)
        .values_list("pk", flat=True)
    )
    purge_signed = set(
        subscriptions.filter(CONCLUDED).filter(contract__season_end__lt=farmer_cutoff).values_list("pk", flat=True)
    )
    purge_unsigned = set(subscriptions.exclude(CONCLUDED).filter(member_over).values_list("pk", flat=True))
    contract_candidates = set(
        Contract.objects.filter(season_end__lt=farmer_cutoff).order_by().values_list("pk", flat=True)
    )

    touched = detach | purge_signed | purge_unsigned
    touched_contracts = set(
        Subscription.objects.filter(pk__in=touched).order_by().values_list("contract_id", flat=True)
    )
    held_roots, roots = _held_chains(touched_contracts | contract_candidates)
    held = {pk for pk in touched if roots.get(pk, pk) in held_roots}
    plan.held_subscriptions = sorted(held)
    detach -= held
    purge_signed -= held
    purge_unsigned -= held

    # A kept subscription may point to an older version (`previous` protects it): keep that one too.
    purged = purge_signed | purge_unsigned
    while True:
        referenced = set(
            Subscription.objects.filter(previous_id__in=purged)
            .exclude(pk__in=purged)
            .values_list("previous_id", flat=True)
        )
        if not referenced:
            break
        purged -= referenced
    purge_signed &= purged
    purge_unsigned &= purged

    # Contracts: season over for the farm, no hold, no subscription left, no kept amendment.
    held_contracts = set(
        Contract.objects.filter(pk__in=contract_candidates, legal_hold=True).values_list("pk", flat=True)
    )
    with_subscriptions_left = set(
        Subscription.objects.filter(contract_id__in=contract_candidates)
        .exclude(pk__in=purged)
        .values_list("contract_id", flat=True)
    )
    contracts = contract_candidates - held_contracts - with_subscriptions_left
    while True:
        referenced = set(
            Contract.objects.filter(previous_id__in=contracts)
            .exclude(pk__in=contracts)
            .values_list("previous_id", flat=True)
        )
        if not referenced:
            break
        contracts -= referenced

    plan.detach = sorted(detach)
    plan.purge_subscriptions = sorted(purge_signed)
    plan.purge_unsigned = sorted(purge_unsigned)
    plan.purge_contracts = sorted(contracts)
    plan.held_contracts = sorted(
        Contract.objects.filter(pk__in=contract_candidates | touched_contracts, legal_hold=True).values_list(
            "pk", flat=True
        )
    )
    plan.redact_events = _events_about(subscription_ids=purged, contract_ids=contracts).count()
    return plan


def _events_about(*, subscription_ids, contract_ids):
    from .evidence import REDACTED_KIND

    return (
        EvidenceEvent.objects.filter(Q(subscription_id__in=subscription_ids) | Q(contract_id__in=contract_ids))
        .filter(redacted_at__isnull=True)
        .exclude(kind=REDACTED_KIND)
        .order_by("pk")
    )


# --------------------------------------------------------------------------------------------
# Writes


def _label_sql(id_field: str):
    """`member_label()` computed by the database, for bulk updates."""
    return Concat(Value(MEMBER_LABEL_PREFIX), Cast(id_field, output_field=CharField()))


def subscriptions_detach(*, ids, now: dt.datetime) -> int:
    """Take the member's identity off these subscriptions (the signed PDF keeps the legal copy)."""
    ids = list(ids)
    if not ids:
        return 0
    Signature.objects.filter(subscription_id__in=ids, role=Signature.Role.MEMBER).update(
        signer=None, signer_name=_label_sql("subscription_id"), ip_address=None, user_agent=""
    )
    Subscription.objects.filter(pk__in=ids).update(member=None, member_name=_label_sql("pk"), member_anonymised_at=now)
    SignatureChallenge.objects.filter(subscription_id__in=ids, role=Signature.Role.MEMBER).delete()
    Absence.objects.filter(subscription_id__in=ids).update(substitute_name="", note="")
    return len(ids)


def subscriptions_purge(*, ids, reason: str) -> int:
    """Delete these subscriptions with everything hanging on them; redact the evidence about them.

    Returns the number of evidence events redacted. The caller makes sure no kept subscription
    points to one of them as its `previous` version.
    """
    ids = list(ids)
    if not ids:
        return 0
    SubscriptionItem.objects.filter(subscription_id__in=ids).delete()
    Absence.objects.filter(subscription_id__in=ids).delete()
    SignatureChallenge.objects.filter(subscription_id__in=ids).delete()
    Signature.objects.filter(subscription_id__in=ids).delete()
    ContractDocument.objects.filter(subscription_id__in=ids).delete()
    # Versions purged together: unlink them first (`previous` is PROTECT).
    Subscription.objects.filter(pk__in=ids, previous__isnull=False).update(previous=None)
    Subscription.objects.filter(pk__in=ids).delete()
    return evidence_redact_many(events=_events_about(subscription_ids=ids, contract_ids=[]), reason=reason)


def contracts_purge(*, ids, reason: str) -> int:
    """Delete contract templates that have no subscription left (deliveries, products, exceptions go too)."""
    ids = list(ids)
    if not ids:
        return 0
    Contract.objects.filter(pk__in=ids, previous__isnull=False).update(previous=None)
    Contract.objects.filter(pk__in=ids).delete()
    return evidence_redact_many(events=_events_about(subscription_ids=[], contract_ids=ids), reason=reason)


def users_anonymise(*, ids) -> int:
    """Anonymise accounts: no e-mail, no name, no password, inactive; their alerts and codes go."""
    User = get_user_model()
    count = 0
    for user in User.objects.filter(pk__in=list(ids)).order_by("pk"):
        user_anonymise(user=user)
        count += 1
    return count


def user_anonymise(*, user) -> None:
    user.email = anonymous_email(user.pk)
    user.display_name = ""
    user.first_name = ""
    user.last_name = ""
    user.is_active = False
    user.set_unusable_password()
    user.save(update_fields=["email", "display_name", "first_name", "last_name", "is_active", "password"])
    user.groups.clear()
    user.user_permissions.clear()
    SignatureChallenge.objects.filter(user=user).delete()
    # What other apps registered as going with the account (alerts: a place, an e-mail digest).
    for entry in personal_data():
        if entry.erase is not None:
            entry.erase(user)


@transaction.atomic
def retention_apply(*, now: dt.datetime | None = None, commit: bool) -> Plan:
    """Run the plan in one transaction; with `commit=False` everything is rolled back (a rehearsal)."""
    plan = retention_plan(now=now)
    reason = "durée de conservation écoulée"
    # Accounts first: their subscriptions of ended seasons are in `plan.detach` already.
    users_anonymise(ids=plan.anonymise_users)
    subscriptions_detach(ids=plan.detach, now=plan.now)
    redacted = subscriptions_purge(ids=plan.purge_unsigned + plan.purge_subscriptions, reason=reason)
    redacted += contracts_purge(ids=plan.purge_contracts, reason=reason)
    plan.redact_events = redacted
    evidence_append(
        kind=RUN_EVENT_KIND,
        payload={
            "reference_date": timezone.localdate(plan.now),
            "periods": {"member": MEMBER_YEARS, "farmer": FARMER_YEARS, "inactive": INACTIVE_YEARS},
            "counts": plan.counts(),
        },
    )
    if commit:
        plan.committed = True
    else:
        transaction.set_rollback(True)
    return plan


__all__ = [
    "Plan",
    "retention_plan",
    "retention_apply",
    "subscriptions_detach",
    "subscriptions_purge",
    "contracts_purge",
    "user_anonymise",
    "users_anonymise",
    "member_retention_end",
    "farmer_retention_end",
]
