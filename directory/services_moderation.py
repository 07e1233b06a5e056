"""Writes of a network's directory care: the moderation queue, claims of a listing, reverting history.

- An AMAP declared, or an entry edited, by someone who neither runs it nor coordinates its
  territory waits as a `ChangeRequest`: nothing is public before a coordinator approves it.
- « C'est mon AMAP » / « C'est ma ferme »: a 6-digit code e-mailed to the listed address (valid
  15 minutes, 5 attempts, only its salted HMAC kept), or a request a coordinator grants.
- Every change to an AMAP, farm, partnership or network is recorded by django-simple-history;
  « Rétablir cette version » saves the old values again, itself recorded.
"""

from __future__ import annotations

import datetime
import secrets
from types import SimpleNamespace

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from accounts import permissions

from . import contacts
from .models import Amap, AmapManager, ChangeRequest, ClaimChallenge, Farm, Partnership
from .selectors.network import is_coordinator, pending_requests

CODE_DIGITS = 6
CODE_TTL = datetime.timedelta(minutes=15)
MAX_ATTEMPTS = 5
MAX_CODES_PER_TTL = 3
_HMAC_SALT = "directory.claim.code"


def _site_url(path: str) -> str:
    return getattr(settings, "SITE_URL", "http://127.0.0.1:8000").rstrip("/") + path


def _mail(subject: str, body: str, emails) -> int:
    sent = 0
    for email in sorted(set(emails)):  # one e-mail per person: nobody sees another address
        sent += send_mail(f"[AMAP Atlas] {subject}", body, settings.DEFAULT_FROM_EMAIL, [email], fail_silently=True)
    return sent


def place_stub(*, commune, point):
    """A not-yet-created entry, for territory checks (`accounts.permissions.coordinates_entry`)."""
    return SimpleNamespace(commune=commune, location=point, public_location=None, entry=None)


# --------------------------------------------------------------------------- moderation queue


def change_request_submit(
    *, user, kind: str, entry_type: str, data: dict, entry=None, candidate=None, message: str = ""
) -> ChangeRequest:
    """Queue a declaration, an edit or a claim for the coordinators of the territory; tell them."""
    if not getattr(user, "is_authenticated", False):
        raise PermissionDenied(_("Connectez-vous."))
    name = (data.get("name") or [""])[0] if isinstance(data.get("name"), list) else data.get("name", "")
    commune = candidate.commune if candidate is not None else getattr(entry, "commune", None)
    point = candidate.point if candidate is not None else None
    if point is None and entry is not None:
        point = permissions.entry_point(entry)
    request = ChangeRequest.objects.create(
        kind=kind,
        entry_type=entry_type,
        amap=entry if isinstance(entry, Amap) else None,
        farm=entry if isinstance(entry, Farm) else None,
        name=(name or str(entry or ""))[:200],
        data=data,
        message=(message or "").strip()[:2000],
        commune=commune,
        location=point,
        author=user,
    )
    networks = contacts.entry_coordinator_networks(request)
    emails = contacts.coordinator_emails(networks)
    url = _site_url(reverse("directory:change_request_detail", args=[request.pk]))
    transaction.on_commit(
        lambda: _mail(
            _("À vérifier : %(what)s") % {"what": request},
            _("Une demande attend votre vérification dans le territoire de votre réseau :\n\n%(what)s\n\n%(url)s")
            % {"what": request, "url": url},
            emails,
        )
    )
    return request


def change_request_networks(request: ChangeRequest):
    return contacts.entry_coordinator_networks(request)


def pending_for_network(network) -> list[ChangeRequest]:
    """The pending requests whose place lies in the network's territory (or whose entry belongs to it)."""
    return list(pending_requests(network=network).select_related("commune", "amap", "farm", "author"))


def _check_moderator(user, request: ChangeRequest) -> None:
    if not permissions.coordinates_entry(user, request):
        raise PermissionDenied(_("Seuls les coordinateur·rices du territoire traitent cette demande."))
    if request.status != ChangeRequest.Status.PENDING:
        raise ValidationError(_("Cette demande a déjà été traitée."))


@transaction.atomic
def change_request_approve(*, user, request: ChangeRequest, cleaned: dict | None = None, candidate=None):
    """Apply the request (with the coordinator's corrections, `cleaned`); tell its author."""
    from .services_manage import amap_write, farm_write

    request = ChangeRequest.objects.select_for_update().get(pk=request.pk)
    _check_moderator(user, request)
    entry = request.entry
    if request.kind == ChangeRequest.Kind.CLAIM:
        entry_grant_admin(entry=entry, person=request.author)
    elif request.entry_type == "amap":
        entry = amap_write(amap=entry, data=cleaned, candidate=candidate)
        if request.kind == ChangeRequest.Kind.CREATE:
            AmapManager.objects.get_or_create(
                amap=entry, user=request.author, defaults={"role": AmapManager.Role.ADMIN}
            )
    else:
        entry = farm_write(farm=entry, data=cleaned, candidate=candidate)
        if request.kind == ChangeRequest.Kind.CREATE:
            entry.managers.add(request.author)
    request.status = ChangeRequest.Status.APPROVED
    request.amap = entry if isinstance(entry, Amap) else None
    request.farm = entry if isinstance(entry, Farm) else None
    request.decided_by, request.decided_at = user, timezone.now()
    request.save()
    detail = "directory:amap_detail" if isinstance(entry, Amap) else "directory:farm_detail"
    url = _site_url(reverse(detail, args=[entry.pk]))
    author_email = request.author.email
    transaction.on_commit(
        lambda: _mail(
            _("Demande acceptée : %(what)s") % {"what": request},
            _("Votre demande « %(what)s » a été acceptée par le réseau. La fiche : %(url)s")
            % {"what": request, "url": url},
            [author_email],
        )
    )
    return entry


@transaction.atomic
def change_request_refuse(*, user, request: ChangeRequest, reason: str) -> ChangeRequest:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": [_("Dites pourquoi la demande est refusée : son auteur·rice le lira.")]})
    request = ChangeRequest.objects.select_for_update().get(pk=request.pk)
    _check_moderator(user, request)
    request.status = ChangeRequest.Status.REFUSED
    request.reason = reason[:2000]
    request.decided_by, request.decided_at = user, timezone.now()
    request.save()
    author_email = request.author.email
    transaction.on_commit(
        lambda: _mail(
            _("Demande refusée : %(what)s") % {"what": request},
            _("Votre demande « %(what)s » n'a pas été acceptée par le réseau. Motif :\n\n%(reason)s")
            % {"what": request, "reason": reason},
            [author_email],
        )
    )
    return request


# --------------------------------------------------------------------------- claims


def entry_grant_admin(*, entry, person) -> None:
    """Make `person` the entry's admin: an AMAP admin, a farm manager."""
    if isinstance(entry, Amap):
        AmapManager.objects.update_or_create(amap=entry, user=person, defaults={"role": AmapManager.Role.ADMIN})
    else:
        entry.managers.add(person)


def _code_hash(*, salt: str, code: str, key: str) -> str:
    return f"{salt}${salted_hmac(_HMAC_SALT, f'{salt}:{key}:{code}', algorithm='sha256').hexdigest()}"


def _claim_key(entry, user) -> str:
    return f"{'amap' if isinstance(entry, Amap) else 'farm'}:{entry.pk}:{user.pk}"


def _challenges(entry, user):
    field = "amap" if isinstance(entry, Amap) else "farm"
    return ClaimChallenge.objects.filter(**{field: entry}, user=user)


@transaction.atomic
def claim_send_code(*, user, entry) -> ClaimChallenge:
    """E-mail a 6-digit code to the entry's listed address (never shown to the claimant)."""
    if not getattr(user, "is_authenticated", False):
        raise PermissionDenied(_("Connectez-vous pour revendiquer une fiche."))
    address = contacts.entry_address(entry)
    if not address:
        raise ValidationError(
            _("Cette fiche n'a pas d'adresse e-mail : demandez au réseau de votre territoire de vous la confier.")
        )
    now = timezone.now()
    if _challenges(entry, user).filter(created_at__gte=now - CODE_TTL).count() >= MAX_CODES_PER_TTL:
        raise ValidationError(_("Trop de codes demandés : réessayez dans un quart d'heure."))
    code = "".join(secrets.choice("0123456789") for _digit in range(CODE_DIGITS))
    salt = secrets.token_hex(16)
    challenge = ClaimChallenge.objects.create(
        amap=entry if isinstance(entry, Amap) else None,
        farm=entry if isinstance(entry, Farm) else None,
        user=user,
        code_hash=_code_hash(salt=salt, code=code, key=_claim_key(entry, user)),
        expires_at=now + CODE_TTL,
    )
    who = user.display_name or _("Une personne inscrite sur AMAP Atlas")
    body = _(
        "%(who)s indique gérer « %(entry)s » et demande à tenir sa fiche sur AMAP Atlas.\n\n"
        "Si c'est bien vous (ou quelqu'un de votre équipe), donnez-lui ce code, valable 15 minutes : %(code)s\n\n"
        "Sinon, ignorez ce message : rien ne change."
    ) % {"who": who, "entry": entry, "code": code}
    transaction.on_commit(lambda: _mail(_("Code pour revendiquer « %(entry)s »") % {"entry": entry}, body, [address]))
    return challenge


def claim_confirm(*, user, entry, code: str) -> None:
    """Check the code (5 attempts, 15 minutes, once); the claimant becomes the entry's admin."""
    if not getattr(user, "is_authenticated", False):
        raise PermissionDenied(_("Connectez-vous pour revendiquer une fiche."))
    code = (code or "").strip().replace(" ", "")
    # The attempt is counted even when the code is wrong: the error is raised after the commit.
    with transaction.atomic():
        challenge = _challenges(entry, user).select_for_update().filter(used_at__isnull=True).first()
        if challenge is None or challenge.expires_at <= timezone.now():
            raise ValidationError({"code": [_("Ce code a expiré : demandez-en un nouveau.")]})
        if challenge.attempts >= MAX_ATTEMPTS:
            raise ValidationError({"code": [_("Trop d'essais : demandez un nouveau code.")]})
        challenge.attempts += 1
        salt = challenge.code_hash.split("$", 1)[0]
        expected = _code_hash(salt=salt, code=code, key=_claim_key(entry, user))
        right = len(code) == CODE_DIGITS and code.isdigit() and constant_time_compare(expected, challenge.code_hash)
        if right:
            challenge.used_at = timezone.now()
        challenge.save(update_fields=["attempts", "used_at"])
        if right:
            entry_grant_admin(entry=entry, person=user)
    if not right:
        left = MAX_ATTEMPTS - challenge.attempts
        raise ValidationError({"code": [_("Code incorrect (essais restants : %(n)s).") % {"n": left}]})


# --------------------------------------------------------------------------- history


PRIVATE_HISTORY_FIELDS = frozenset({"location", "public_location", "private_email"})


def history_rows(entry, *, limit: int = 100) -> list[dict]:
    """The entry's recorded versions, newest first, each with who, when and which fields changed."""
    records = list(entry.history.select_related("history_user").order_by("-history_date", "-history_id")[:limit])
    rows = []
    for index, record in enumerate(records):
        previous = records[index + 1] if index + 1 < len(records) else None
        changes = []
        if previous is not None:
            for change in record.diff_against(previous).changes:
                field = entry._meta.get_field(change.field)
                private = change.field in PRIVATE_HISTORY_FIELDS
                changes.append(
                    {
                        "field": str(field.verbose_name),
                        "old": "" if private else change.old,
                        "new": _("(valeur privée modifiée)") if private else change.new,
                    }
                )
        rows.append({"record": record, "changes": changes, "is_current": index == 0})
    return rows


def partnership_history(entry, *, limit: int = 100) -> list:
    """The recorded versions of an AMAP's or a farm's partnerships (created, changed, deleted), newest first."""
    if isinstance(entry, Amap):
        records = Partnership.history.filter(amap_id=entry.pk)
    elif isinstance(entry, Farm):
        records = Partnership.history.filter(farm_id=entry.pk)
    else:
        return []
    # The other side may have been deleted since: the nullable historical keys join it LEFT OUTER.
    records = records.select_related("history_user", "product", "amap", "farm")
    return list(records.order_by("-history_date", "-history_id")[:limit])


@transaction.atomic
def history_revert(*, user, entry, history_id: int):
    """Save the values of an earlier version again (recorded as a new version, with its reason)."""
    if not may_see_history(user, entry):
        raise PermissionDenied(_("Vous ne pouvez pas modifier cette fiche."))
    record = entry.history.filter(history_id=history_id).first()
    if record is None:
        raise ValidationError(_("Cette version n'existe pas."))
    restored = record.instance
    restored._state.adding = False  # the same row, saved again (not a new one)
    restored._change_reason = _("Rétablissement de la version du %(when)s") % {
        "when": date_format(timezone.localtime(record.history_date), "j F Y H:i")
    }
    restored.full_clean(exclude=["products", "managers", "networks", "commune", "admins", "regions", "departments"])
    restored.save()
    return restored


def may_see_history(user, entry) -> bool:
    """A network's history: its coordinators; an entry's: its admins and its territory's coordinators."""
    if hasattr(entry, "admins"):
        return is_coordinator(user, entry)
    return permissions.can_see_entry_history(user, entry)
