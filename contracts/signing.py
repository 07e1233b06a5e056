"""Simple electronic signature of a subscription's contract: charter, one-time code, evidence.

Flow (the member signs first, then the farmer, both on the same frozen PDF):
1. `signature_request_code(user=, subscription=, role=, charter_accepted=True)` checks the signer
   and the status, renders the PDF (member) or takes the frozen one (farmer), e-mails a 6-digit
   code valid 15 minutes and keeps only its salted HMAC;
2. `signature_confirm(user=, subscription=, role=, code=, ip_address=, user_agent=)` checks the
   code (5 attempts, once), freezes the PDF at the member's signature (refusing if the
   contract changed since the code was sent), records the `Signature` with its consent text,
   moves the status on (PENDING → MEMBER_SIGNED → SIGNED) and, once SIGNED, marks the version
   it amends SUPERSEDED. Every step is appended to the evidence trail.
"""

from __future__ import annotations

import datetime as dt
import secrets
from smtplib import SMTPException

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_ipv46_address
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _

from accounts.permissions import can_sign_as_farmer

from .documents import charter_current, contract_pdf, document_freeze, sha256_hex
from .evidence import evidence_append
from .models import Charter, ContractDocument, Signature, SignatureChallenge, Subscription

__all__ = [
    "CODE_TTL",
    "CONSENT_VERSION",
    "MAX_ATTEMPTS",
    "charter_current",
    "consent_text",
    "signature_confirm",
    "signature_request_code",
]

CODE_DIGITS = 6
CODE_TTL = dt.timedelta(minutes=15)
MAX_ATTEMPTS = 5
# At most this many codes per signer and subscription within CODE_TTL (no e-mail flooding).
MAX_CODES_PER_TTL = 5
# Version of the consent sentence below: change it whenever its wording changes.
CONSENT_VERSION = "consentement-2026-1"
_HMAC_SALT = "contracts.signing.code"

Role = Signature.Role


def consent_text(*, subscription: Subscription, charter: Charter, document_sha256: str) -> str:
    """The sentence the signer agrees to, shown before confirming and stored with the signature."""
    return _(
        "J'ai lu et j'accepte la Charte des AMAP (version %(charter)s) et le contrat « %(title)s » "
        "n° %(reference)s dont l'empreinte SHA-256 est %(sha)s ; je le signe électroniquement."
    ) % {
        "charter": charter.version,
        "title": subscription.contract.title,
        "reference": f"{subscription.pk}-v{subscription.version}",
        "sha": document_sha256,
    }


# --------------------------------------------------------------------------------------------
# Checks shared by both steps


def _clean_role(role) -> str:
    if role not in Role.values:
        raise ValidationError({"role": [_("Qualité de signataire inconnue : adhérent·e ou paysan·ne.")]})
    return role


def _check_signer(user, subscription: Subscription, role: str) -> None:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        raise PermissionDenied(_("Connectez-vous pour signer."))
    if role == Role.MEMBER:
        if subscription.member_id is None or subscription.member_id != user.pk:
            raise PermissionDenied(_("Seul·e l'adhérent·e de cette souscription peut la signer."))
    elif not can_sign_as_farmer(user, subscription):
        raise PermissionDenied(_("Seul·e un·e gestionnaire de la ferme peut signer pour le ou la paysan·ne."))


def _check_status(subscription: Subscription, role: str) -> None:
    status = subscription.status
    Status = Subscription.Status
    if status in (Status.WAITING, Status.CANCELLED, Status.SUPERSEDED):
        raise ValidationError(
            {
                "subscription": [
                    _("Cette souscription ne peut pas être signée (%(status)s).")
                    % {"status": subscription.get_status_display()}
                ]
            }
        )
    if role == Role.MEMBER and status != Status.PENDING:
        raise ValidationError({"subscription": [_("L'adhérent·e a déjà signé ce contrat.")]})
    if role == Role.FARMER:
        if status == Status.PENDING:
            raise ValidationError(
                {"subscription": [_("L'adhérent·e doit signer en premier ; le ou la paysan·ne signe ensuite.")]}
            )
        if status == Status.SIGNED:
            raise ValidationError({"subscription": [_("Ce contrat est déjà signé par les deux parties.")]})


def _locked(subscription: Subscription) -> Subscription:
    return Subscription.objects.select_for_update(of=("self",)).select_related("contract").get(pk=subscription.pk)


def _charter_for(subscription: Subscription, role: str) -> Charter:
    """The member accepts the charter in force; the farmer, the one named in the PDF the member signed."""
    if role == Role.MEMBER:
        return charter_current()
    member_signature = subscription.signatures.filter(role=Role.MEMBER).select_related("charter").first()
    return member_signature.charter if member_signature is not None else charter_current()


def _code_hash(*, salt: str, code: str, challenge_key: str) -> str:
    digest = salted_hmac(_HMAC_SALT, f"{salt}:{challenge_key}:{code}", algorithm="sha256").hexdigest()
    return f"{salt}${digest}"


def _challenge_key(subscription: Subscription, user, role: str) -> str:
    return f"{subscription.pk}:{user.pk}:{role}"


def _display_name(user) -> str:
    return (str(user) or user.email)[:200]


# --------------------------------------------------------------------------------------------
# Step 1: the code


def signature_request_code(
    *, user, subscription: Subscription, role: str, charter_accepted: bool
) -> SignatureChallenge:
    """Check the signer, fix what is to be signed, e-mail a one-time code; returns the challenge."""
    role = _clean_role(role)
    if not charter_accepted:
        raise ValidationError({"charter": [_("Vous devez accepter la Charte des AMAP avant de signer.")]})
    with transaction.atomic():
        subscription = _locked(subscription)
        _check_signer(user, subscription, role)
        _check_status(subscription, role)
        charter = _charter_for(subscription, role)
        now = timezone.now()
        recent = SignatureChallenge.objects.filter(
            subscription=subscription, user=user, role=role, created_at__gte=now - CODE_TTL
        ).count()
        if recent >= MAX_CODES_PER_TTL:
            raise ValidationError({"code": [_("Trop de codes demandés : réessayez dans un quart d'heure.")]})
        if role == Role.MEMBER:
            # The PDF is frozen when the member confirms; until then the subscription may still change,
            # so the code is bound to this rendering's digest and refused if it no longer matches.
            document_sha256 = sha256_hex(contract_pdf(subscription=subscription))
        else:
            document = ContractDocument.objects.filter(subscription=subscription).only("sha256").first()
            if document is None:
                raise ValidationError({"document": [_("Le contrat signé par l'adhérent·e est introuvable.")]})
            document_sha256 = document.sha256

        now = timezone.now()  # after rendering, which takes a moment: the code lasts CODE_TTL from here
        # Any earlier code for this signer stops working.
        SignatureChallenge.objects.filter(
            subscription=subscription, user=user, role=role, used_at__isnull=True, expires_at__gt=now
        ).update(expires_at=now)
        code = "".join(secrets.choice("0123456789") for _digit in range(CODE_DIGITS))
        salt = secrets.token_hex(16)
        challenge = SignatureChallenge.objects.create(
            subscription=subscription,
            user=user,
            role=role,
            code_hash=_code_hash(salt=salt, code=code, challenge_key=_challenge_key(subscription, user, role)),
            document_sha256=document_sha256,
            expires_at=now + CODE_TTL,
        )
        _send_code(user=user, subscription=subscription, code=code, document_sha256=document_sha256)

        common = {
            "role": role,
            "signer_id": user.pk,
            "signer_name": _display_name(user),
            "document_sha256": document_sha256,
        }
        ids = {"contract_id": subscription.contract_id, "subscription_id": subscription.pk, "actor_id": user.pk}
        evidence_append(
            kind="charter.accepted",
            payload={**common, "charter_version": charter.version, "charter_sha256": charter.text_sha256},
            **ids,
        )
        evidence_append(
            kind="signature.code_sent",
            payload={**common, "challenge_id": challenge.pk, "email": user.email, "expires_at": challenge.expires_at},
            **ids,
        )
    return challenge


def _send_code(*, user, subscription: Subscription, code: str, document_sha256: str) -> None:
    contract = subscription.contract
    minutes = int(CODE_TTL.total_seconds() // 60)
    subject = _("Votre code de signature : contrat « %(title)s »") % {"title": contract.title}
    body = _(
        "Bonjour,\n\n"
        "Voici votre code pour signer électroniquement le contrat « %(title)s » "
        "(%(amap)s / %(farm)s, contrat n° %(reference)s) :\n\n"
        "    %(code)s\n\n"
        "Ce code est valable %(minutes)s minutes et ne sert qu'une fois.\n"
        "Empreinte SHA-256 du document que vous signez (début) : %(sha)s…\n"
        "Vous la retrouvez en entier sur la page de signature.\n\n"
        "Si vous n'avez pas demandé ce code, ne le communiquez à personne et ignorez ce message.\n\n"
        "— AMAP Atlas"
    ) % {
        "title": contract.title,
        "amap": contract.amap.name,
        "farm": contract.farm.name,
        "reference": f"{subscription.pk}-v{subscription.version}",
        "code": code,
        "minutes": minutes,
        "sha": document_sha256[:16],
    }
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
    except (SMTPException, OSError) as error:
        raise ValidationError(
            {"email": [_("Le code n'a pas pu être envoyé par e-mail ; réessayez dans quelques minutes.")]}
        ) from error


# --------------------------------------------------------------------------------------------
# Step 2: the signature


def _clean_ip(ip_address: str | None) -> str | None:
    if not ip_address:
        return None
    try:
        validate_ipv46_address(ip_address)
    except ValidationError:
        return None
    return ip_address


def signature_confirm(
    *,
    user,
    subscription: Subscription,
    role: str,
    code: str,
    ip_address: str | None,
    user_agent: str,
) -> Signature:
    """Check the e-mailed code and record the signature; raises ValidationError({"code": …}) if refused.

    A wrong code counts as an attempt even though the call raises (the count is committed first).
    """
    role = _clean_role(role)
    # _confirm returns its refusal instead of raising it, so that the attempt it counted is committed.
    outcome = _confirm(
        user=user, subscription=subscription, role=role, code=code, ip_address=ip_address, user_agent=user_agent
    )
    if isinstance(outcome, ValidationError):
        raise outcome
    return outcome


def _confirm(*, user, subscription, role, code, ip_address, user_agent) -> Signature | ValidationError:
    code = "".join(str(code or "").split())
    with transaction.atomic():
        subscription = _locked(subscription)
        _check_signer(user, subscription, role)
        _check_status(subscription, role)
        now = timezone.now()
        challenge = (
            SignatureChallenge.objects.select_for_update()
            .filter(subscription=subscription, user=user, role=role, used_at__isnull=True)
            .order_by("-created_at", "-pk")
            .first()
        )
        if challenge is None:
            return ValidationError({"code": [_("Aucun code en cours : demandez un nouveau code.")]})
        if challenge.expires_at <= now:
            return ValidationError({"code": [_("Ce code a expiré : demandez un nouveau code.")]})
        if challenge.attempts >= MAX_ATTEMPTS:
            return ValidationError({"code": [_("Trop d'essais avec ce code : demandez un nouveau code.")]})
        challenge.attempts += 1
        salt = challenge.code_hash.split("$", 1)[0]
        expected = _code_hash(salt=salt, code=code, challenge_key=_challenge_key(subscription, user, role))
        if not (len(code) == CODE_DIGITS and code.isdigit() and constant_time_compare(expected, challenge.code_hash)):
            challenge.save(update_fields=["attempts"])
            left = MAX_ATTEMPTS - challenge.attempts
            evidence_append(
                kind="signature.code_refused",
                payload={
                    "role": role,
                    "signer_id": user.pk,
                    "challenge_id": challenge.pk,
                    "attempts": challenge.attempts,
                },
                contract_id=subscription.contract_id,
                subscription_id=subscription.pk,
                actor_id=user.pk,
            )
            if left <= 0:
                return ValidationError({"code": [_("Code incorrect. Plus aucun essai : demandez un nouveau code.")]})
            return ValidationError({"code": [_("Code incorrect. Il vous reste %(left)s essai(s).") % {"left": left}]})

        if role == Role.MEMBER:
            pdf = contract_pdf(subscription=subscription)
            if sha256_hex(pdf) != challenge.document_sha256:
                challenge.used_at = now
                challenge.save(update_fields=["attempts", "used_at"])
                return ValidationError(
                    {
                        "code": [
                            _("Le contrat a changé depuis l'envoi du code : relisez-le et demandez un nouveau code.")
                        ]
                    }
                )
            document = document_freeze(subscription=subscription, pdf=pdf)
            evidence_append(
                kind="document.frozen",
                payload={"document_id": document.pk, "sha256": document.sha256, "size": len(pdf)},
                contract_id=subscription.contract_id,
                subscription_id=subscription.pk,
                actor_id=user.pk,
            )
        else:
            document = ContractDocument.objects.get(subscription=subscription)
            if document.sha256 != challenge.document_sha256:  # cannot happen: frozen documents never change
                return ValidationError({"code": [_("Le contrat a changé depuis l'envoi du code.")]})

        challenge.used_at = now
        challenge.save(update_fields=["attempts", "used_at"])
        charter = _charter_for(subscription, role)
        signature = Signature.objects.create(
            subscription=subscription,
            role=role,
            signer=user,
            signer_name=subscription.member_name if role == Role.MEMBER else _display_name(user),
            document_sha256=document.sha256,
            charter=charter,
            consent_text=consent_text(subscription=subscription, charter=charter, document_sha256=document.sha256),
            consent_version=CONSENT_VERSION,
            signed_at=now,
            ip_address=_clean_ip(ip_address),
            user_agent=(user_agent or "")[:500],
        )
        ids = {"contract_id": subscription.contract_id, "subscription_id": subscription.pk, "actor_id": user.pk}
        evidence_append(
            kind="signature.signed",
            payload={
                "signature_id": signature.pk,
                "role": role,
                "signer_id": user.pk,
                "signer_name": signature.signer_name,
                "document_sha256": document.sha256,
                "charter_version": charter.version,
                "charter_sha256": charter.text_sha256,
                "consent_version": CONSENT_VERSION,
                "consent_text": signature.consent_text,
                "ip_address": signature.ip_address,
                "user_agent": signature.user_agent,
                "signed_at": now,
            },
            **ids,
        )

        if role == Role.MEMBER:
            subscription.status = Subscription.Status.MEMBER_SIGNED
            subscription.save(update_fields=["status", "updated_at"])
            _tell_farmers_a_countersignature_waits(subscription)
        else:
            subscription.status = Subscription.Status.SIGNED
            subscription.signed_at = now
            subscription.save(update_fields=["status", "signed_at", "updated_at"])
            if subscription.previous_id is not None:
                _supersede(subscription, actor=user)
        evidence_append(
            kind="subscription.status",
            payload={"status": subscription.status, "version": subscription.version},
            **ids,
        )
    return signature


def _tell_farmers_a_countersignature_waits(subscription: Subscription) -> None:
    """E-mail the farm's managers once the transaction commits: a signature waits for theirs."""
    contract = subscription.contract
    managers = contract.farm.managers.filter(is_active=True)
    recipients = sorted({address for address in managers.values_list("email", flat=True) if address})
    if not recipients:
        return
    subject = _("À contresigner : %(member)s — %(title)s") % {
        "member": subscription.member_name,
        "title": contract.title,
    }
    body = _(
        "Bonjour,\n\n"
        "%(member)s vient de signer son contrat « %(title)s » (%(amap)s).\n"
        "Il attend votre contre-signature : ses livraisons restent « en attente de contre-signature » "
        "jusque-là.\n\n"
        "Vos contrats à contresigner : %(url)s\n\n"
        "— AMAP Atlas"
    ) % {
        "member": subscription.member_name,
        "title": contract.title,
        "amap": contract.amap.name,
        "url": settings.SITE_URL.rstrip("/") + reverse("contracts:countersign_list"),
    }

    def send():
        for address in recipients:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address], fail_silently=True)

    transaction.on_commit(send)


def _supersede(subscription: Subscription, *, actor) -> None:
    previous = Subscription.objects.select_for_update().get(pk=subscription.previous_id)
    if previous.status in (Subscription.Status.SUPERSEDED, Subscription.Status.CANCELLED):
        return
    previous.status = Subscription.Status.SUPERSEDED
    previous.save(update_fields=["status", "updated_at"])
    evidence_append(
        kind="subscription.superseded",
        payload={"status": previous.status, "version": previous.version, "replaced_by": subscription.pk},
        contract_id=previous.contract_id,
        subscription_id=previous.pk,
        actor_id=actor.pk,
    )
